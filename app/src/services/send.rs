//! Sending a message (SPEC 5.2): the body follows the Cloud API's own send
//! shape; the 24h window and opt-out rules are checked before it is queued.

use parley_domain::conversation::{self, RecordOutbound};
use parley_domain::event::{Direction, MessageQueued, Preview};
use parley_domain::{content, ids, message, policy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

/// `POST /v1/messages`: `from` is the tenant's phone_number_id, `to` the
/// contact's wa_id, and the content sits under the key named by `type`, as in
/// the Cloud API.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Accepted for compatibility with Cloud API bodies; must be `whatsapp`.
    pub messaging_product: Option<String>,
    /// Accepted for compatibility with Cloud API bodies; must be `individual`.
    pub recipient_type: Option<String>,
    /// Reply to a message: `{"message_id": "<wamid>"}`.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub text: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub template: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub image: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub document: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub audio: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub video: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub sticker: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub interactive: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub reaction: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub location: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub contacts: Option<Value>,
}

impl SendMessage {
    /// The content under `type`, refusing bodies that carry other content too.
    fn content(&self) -> Result<Value, AppError> {
        let slots = [
            ("text", &self.text),
            ("template", &self.template),
            ("image", &self.image),
            ("document", &self.document),
            ("audio", &self.audio),
            ("video", &self.video),
            ("sticker", &self.sticker),
            ("interactive", &self.interactive),
            ("reaction", &self.reaction),
            ("location", &self.location),
            ("contacts", &self.contacts),
        ];
        if !slots.iter().any(|(k, _)| *k == self.kind) {
            return Err(AppError::validation("type", format!("`{}` is not a message type Parley sends", self.kind)));
        }
        if let Some((other, _)) = slots.iter().find(|(k, v)| *k != self.kind && v.is_some()) {
            return Err(AppError::validation(*other, format!("does not belong in a `{}` message", self.kind)));
        }
        slots
            .iter()
            .find(|(k, _)| *k == self.kind)
            .and_then(|(_, v)| (*v).clone())
            .ok_or_else(|| AppError::validation(self.kind.clone(), "is required for this type"))
    }
}

impl App {
    /// A reaction names a message of this contact that Parley holds.
    async fn check_reaction_target(&self, tenant: &str, wa_id: &str, body: &Value) -> Result<(), AppError> {
        let wamid = body.get("message_id").and_then(Value::as_str).unwrap_or_default();
        let target = match self.message_by_wamid(tenant, wamid).await? {
            Some(id) => Some(self.messages.load(&ids::message_stream(tenant, id)).await?.state),
            None => None,
        };
        match target {
            Some(m) if m.wa_id == wa_id => Ok(()),
            _ => Err(AppError::validation("reaction.message_id", "must name a message of this conversation")),
        }
    }
}

/// The 202 answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Queued {
    pub id: Uuid,
    pub status: String,
    pub conversation_id: Uuid,
}

pub fn valid_wa_id(s: &str) -> bool {
    (5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl App {
    pub async fn send_message(&self, caller: &Caller, cmd: SendMessage) -> Result<Queued, AppError> {
        caller.require(Role::Agent)?;
        if cmd.messaging_product.as_deref().is_some_and(|p| p != "whatsapp") {
            return Err(AppError::validation("messaging_product", "must be `whatsapp`"));
        }
        if cmd.recipient_type.as_deref().is_some_and(|p| p != "individual") {
            return Err(AppError::validation("recipient_type", "must be `individual`"));
        }
        if !valid_wa_id(&cmd.to) {
            return Err(AppError::validation("to", "must be the contact's WhatsApp id (digits only)"));
        }
        let reply_to = match &cmd.context {
            None => None,
            Some(c) => Some(
                c.get("message_id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty() && c.as_object().is_some_and(|o| o.len() == 1))
                    .ok_or_else(|| AppError::validation("context", "must be {\"message_id\": \"<wamid>\"}"))?
                    .to_owned(),
            ),
        };
        let body = cmd.content()?;
        content::validate_outbound(&cmd.kind, &body).map_err(|e| AppError::validation(e.field, e.message))?;
        let tenant = caller.tenant_id.as_str();
        self.check_outbound_media(tenant, &cmd.kind, &body).await?;
        let number = self.tenant_number(tenant, &cmd.from).await?;

        let conversation_id = ids::conversation_id(tenant, &number.phone_number_id, &cmd.to);
        let conversation_stream = ids::conversation_stream(tenant, conversation_id);
        let contact_stream = ids::contact_stream(tenant, &cmd.to);
        let (contact, conversation) =
            tokio::join!(self.contacts.load(&contact_stream), self.conversations.load(&conversation_stream),);
        let now = self.clock.now();
        let contact = contact?;
        policy::check_send(&cmd.kind, &contact.state, &conversation?.state, now)?;
        if cmd.kind == "reaction" {
            self.check_reaction_target(tenant, &cmd.to, &body).await?;
        }
        let rendered = self.check_template_rules(tenant, &cmd.kind, &body, &contact.state).await?;

        let message_id = Uuid::now_v7();
        let meta = Meta::new(caller.actor());
        let queued = MessageQueued {
            message_id,
            conversation_id,
            number_id: number.phone_number_id.clone(),
            wa_id: cmd.to.clone(),
            kind: cmd.kind.clone(),
            content: body.clone(),
            reply_to,
            queued_at: now,
        };
        let target =
            Target { tenant_id: tenant, stream_id: ids::message_stream(tenant, message_id), wa_id: Some(&cmd.to) };
        self.messages
            .execute(&target, &meta, |s| {
                let mut events = message::queue(s, queued.clone());
                if let (Some(text), false) = (&rendered, events.is_empty()) {
                    events.push(parley_domain::Event::MessageRendered { text: text.clone() });
                }
                Ok::<_, AppError>(events)
            })
            .await?;

        let record = RecordOutbound {
            conversation_id,
            number_id: number.phone_number_id.clone(),
            wa_id: cmd.to.clone(),
            preview: Preview {
                message_id,
                direction: Direction::Outbound,
                kind: cmd.kind.clone(),
                text: rendered.clone().or_else(|| content::preview_text(&cmd.kind, &body)),
                at: now,
            },
        };
        let target = Target { tenant_id: tenant, stream_id: conversation_stream, wa_id: Some(&cmd.to) };
        self.conversations
            .execute(&target, &meta, |s| Ok::<_, AppError>(conversation::record_outbound(s, record.clone(), now)))
            .await?;
        Ok(Queued { id: message_id, status: "queued".into(), conversation_id })
    }
}
