//! From domain events to stored envelopes and back, with personal data sealed.
//!
//! Message content, previews and contact names are sealed with the contact's
//! data key; number credentials with the tenant's. The stored JSON keeps its
//! shape: a sealed field holds `{"$sealed": {"k", "n", "c"}}` where the plain
//! value was. When a key is destroyed (GDPR erasure) the field reads back as
//! null, and nothing about the event schema changes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parley_domain::Event;
use parley_events::{EventCodec, NewEvent, RecordedEvent, Upcasters};
use parley_vault::{KeyScope, Sealed, Vault, VaultError};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;

/// Marks a sealed value inside event data and read models.
pub const SEALED_KEY: &str = "$sealed";

/// Who caused an event, for the envelope.
#[derive(Debug, Clone)]
pub struct Meta {
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
}

impl Meta {
    pub fn new(actor: impl Into<String>) -> Self {
        Meta { correlation_id: Uuid::now_v7(), causation_id: None, actor: actor.into() }
    }
}

/// Whose key seals an event's personal fields.
enum Subject {
    Contact,
    Numbers,
}

/// The JSON pointers of personal or secret fields, per event type.
fn sealed_fields(event_type: &str) -> (&'static [&'static str], Subject) {
    match event_type {
        "NumberRegistered" => (&["/access_token", "/app_secret"], Subject::Numbers),
        "ContactCreated" | "ContactRenamed" => (&["/name"], Subject::Contact),
        "ContactUpdated" => (&["/attributes"], Subject::Contact),
        "MessageRendered" => (&["/text"], Subject::Contact),
        "InboundMessageRecorded" => (&["/preview/text", "/contact_name"], Subject::Contact),
        "OutboundMessageRecorded" => (&["/preview/text"], Subject::Contact),
        "MessageReceived" | "MessageQueued" => (&["/content", "/context", "/referral"], Subject::Contact),
        "MessageReactionSet" => (&["/emoji"], Subject::Contact),
        // The ad's identifiers stay readable for reporting; its text and the
        // click id, which ties the person to the click, are sealed.
        "EntryPointWindowOpened" => {
            (&["/referral/headline", "/referral/body", "/referral/ctwa_clid"], Subject::Contact)
        }
        _ => (&[], Subject::Contact),
    }
}

pub struct EventSealer {
    codec: EventCodec<Event>,
    vault: Arc<dyn Vault>,
}

impl EventSealer {
    pub fn new(vault: Arc<dyn Vault>) -> Self {
        EventSealer { codec: EventCodec::new(upcasters()), vault }
    }

    pub fn vault(&self) -> &Arc<dyn Vault> {
        &self.vault
    }

    /// Encodes `event` for `tenant_id`; `wa_id` names the contact whose key
    /// seals its personal fields (required for events that have some).
    pub async fn encode(
        &self,
        tenant_id: &str,
        wa_id: Option<&str>,
        event: &Event,
        meta: &Meta,
        now: DateTime<Utc>,
    ) -> Result<NewEvent, AppError> {
        let (event_type, schema_version, mut data) = self.codec.encode(event).map_err(AppError::internal)?;
        let (fields, subject) = sealed_fields(&event_type);
        if !fields.is_empty() {
            let scope = match subject {
                Subject::Numbers => KeyScope::new(tenant_id, "numbers"),
                Subject::Contact => {
                    let wa_id =
                        wa_id.ok_or_else(|| AppError::internal(format!("{event_type} needs a contact to seal")))?;
                    KeyScope::contact(tenant_id, wa_id)
                }
            };
            for pointer in fields {
                if let Some(slot) = data.pointer_mut(pointer) {
                    if !slot.is_null() {
                        *slot = self.seal_value(&scope, slot).await?;
                    }
                }
            }
        }
        Ok(NewEvent {
            event_id: Uuid::now_v7(),
            event_type,
            schema_version,
            occurred_at: now,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            actor: meta.actor.clone(),
            data,
        })
    }

    /// Decodes a stored event, opening its sealed fields (null where shredded).
    pub async fn decode(&self, recorded: &RecordedEvent) -> Result<Event, AppError> {
        let mut data = recorded.data.clone();
        let (fields, _) = sealed_fields(&recorded.event_type);
        for pointer in fields {
            if let Some(slot) = data.pointer_mut(pointer) {
                *slot = self.open_value(slot).await?;
            }
        }
        self.codec
            .decode(&recorded.event_type, recorded.schema_version, data)
            .map_err(|e| AppError::internal(format!("event {} of {}: {e}", recorded.version, recorded.stream_id)))
    }

    async fn seal_value(&self, scope: &KeyScope, value: &Value) -> Result<Value, AppError> {
        let plaintext = serde_json::to_vec(value)?;
        let sealed = self.vault.seal(scope, &plaintext).await?;
        Ok(serde_json::json!({ SEALED_KEY: sealed }))
    }

    /// Opens a value that may be sealed; plain values pass through. A
    /// destroyed key yields null.
    pub async fn open_value(&self, value: &Value) -> Result<Value, AppError> {
        let Some(sealed) = value.get(SEALED_KEY) else {
            return Ok(value.clone());
        };
        let sealed: Sealed = serde_json::from_value(sealed.clone())?;
        match self.vault.open(&sealed).await {
            Ok(plain) => Ok(serde_json::from_slice(&plain)?),
            Err(VaultError::Shredded) => Ok(Value::Null),
            Err(e) => Err(e.into()),
        }
    }
}

/// Upcasters for every event whose schema changed. None yet: version 1 of
/// every event is current.
fn upcasters() -> Upcasters {
    Upcasters::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_domain::event::{Direction, Preview};

    async fn sealer() -> (EventSealer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let vault = parley_vault::LocalVault::open(dir.path()).unwrap();
        (EventSealer::new(Arc::new(vault)), dir)
    }

    fn recorded(e: NewEvent, stream: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: e.event_id,
            stream_id: stream.into(),
            version: 1,
            tenant_id: "t1".into(),
            event_type: e.event_type,
            schema_version: e.schema_version,
            occurred_at: e.occurred_at,
            recorded_at: e.occurred_at,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            actor: e.actor,
            data: e.data,
            global_position: 1,
        }
    }

    #[tokio::test]
    async fn personal_fields_are_sealed_and_shredding_redacts_them() {
        let (sealer, _dir) = sealer().await;
        let now = Utc::now();
        let event = Event::InboundMessageRecorded {
            message_id: Uuid::nil(),
            at: now,
            window_closes_at: now,
            preview: Preview {
                message_id: Uuid::nil(),
                direction: Direction::Inbound,
                kind: "text".into(),
                text: Some("my secret".into()),
                at: now,
            },
            contact_name: Some("Sheena Nelson".into()),
        };
        let stored = sealer.encode("t1", Some("1650"), &event, &Meta::new("test"), now).await.unwrap();
        let raw = stored.data.to_string();
        assert!(!raw.contains("my secret") && !raw.contains("Sheena"), "{raw}");
        let rec = recorded(stored, "t1/conversation/x");
        assert_eq!(sealer.decode(&rec).await.unwrap(), event);

        sealer.vault().shred(&KeyScope::contact("t1", "1650")).await.unwrap();
        match sealer.decode(&rec).await.unwrap() {
            Event::InboundMessageRecorded { preview, contact_name, .. } => {
                assert_eq!(preview.text, None);
                assert_eq!(contact_name, None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_without_personal_data_need_no_contact() {
        let (sealer, _dir) = sealer().await;
        let e = Event::MessageRead { at: Utc::now() };
        let stored = sealer.encode("t1", None, &e, &Meta::new("test"), Utc::now()).await.unwrap();
        assert_eq!(sealer.decode(&recorded(stored, "t1/message/x")).await.unwrap(), e);
    }
}
