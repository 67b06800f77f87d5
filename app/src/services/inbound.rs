//! The WhatsApp webhook (SPEC 5.10, 4.3): verify the signature over the raw
//! body, then process every entry, change, message and status in it.

use std::collections::{BTreeSet, HashMap};

use parley_domain::contact::{self, ObserveInbound};
use parley_domain::conversation::{self, RecordInbound};
use parley_domain::event::{Direction, MessageReceived, NumberRegistered, Preview, Referral};
use parley_domain::{content, ids, message};
use parley_whatsapp::{InboundMessage, WebhookItem};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

/// What one webhook delivery changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookOutcome {
    pub messages: usize,
    pub duplicates: usize,
    pub statuses: usize,
    pub ignored: usize,
}

enum ItemOutcome {
    Message(Received),
    Status,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    New,
    Duplicate,
}

impl App {
    pub async fn handle_webhook(&self, body: &[u8], signature: Option<&str>) -> Result<WebhookOutcome, AppError> {
        let payload = parley_whatsapp::parse(body)
            .map_err(|e| AppError::validation("body", format!("not a WhatsApp webhook: {e}")))?;
        let items = payload.items();

        // Every number named in the body must be known, and the body must carry
        // the signature of each one's app secret, before anything is recorded.
        let named: BTreeSet<&str> = items.iter().filter_map(item_number).collect();
        let mut numbers: HashMap<String, NumberRegistered> = HashMap::new();
        for id in named {
            if let Some(n) = self.number(id).await? {
                numbers.insert(id.to_owned(), n);
            }
        }
        // Fields of the business account (template status, account updates)
        // name no number: such an item acts for the account's first number.
        let by_account = self.account_numbers(&items).await?;
        for n in by_account.values() {
            numbers.insert(n.phone_number_id.clone(), n.clone());
        }
        if numbers.is_empty() {
            return Err(AppError::BadSignature);
        }
        for n in numbers.values() {
            parley_whatsapp::verify(n.app_secret.as_bytes(), body, signature).map_err(|_| AppError::BadSignature)?;
        }

        // Items are independent decisions on (mostly) different streams: run them
        // side by side so their appends share commits. Every decision is
        // insensitive to the order it runs in (windows and statuses take the
        // maximum, keywords compare message times), and concurrent writers to one
        // stream are serialised by optimistic concurrency.
        let work = items.iter().map(|item| {
            let number = match item {
                WebhookItem::Other { phone_number_id: None, waba_id, .. } => by_account.get(waba_id.as_str()),
                _ => item_number(item).and_then(|id| numbers.get(id)),
            };
            async move {
                match (item, number) {
                    (WebhookItem::Message { contact_name, message, .. }, Some(number)) => {
                        self.receive_inbound(number, contact_name.as_deref(), message).await.map(ItemOutcome::Message)
                    }
                    (WebhookItem::Status { status, .. }, Some(number)) => {
                        self.apply_status(&number.tenant_id, status).await.map(|_| ItemOutcome::Status)
                    }
                    (WebhookItem::Other { field, value, .. }, Some(number)) => self
                        .apply_field(number, field, value)
                        .await
                        .map(|applied| if applied { ItemOutcome::Status } else { ItemOutcome::Ignored }),
                    _ => Ok(ItemOutcome::Ignored),
                }
            }
        });
        let mut outcome = WebhookOutcome::default();
        for result in futures::future::join_all(work).await {
            match result? {
                ItemOutcome::Message(Received::New) => outcome.messages += 1,
                ItemOutcome::Message(Received::Duplicate) => outcome.duplicates += 1,
                ItemOutcome::Status => outcome.statuses += 1,
                ItemOutcome::Ignored => outcome.ignored += 1,
            }
        }
        Ok(outcome)
    }

    /// Records one inbound message.
    ///
    /// The message's stream (named by its wamid) is the dedup record. The
    /// conversation, contact and message are appended together, so that they
    /// usually share one durable commit. Conversation and contact decisions are
    /// idempotent per message, and a redelivered message runs them again: if a
    /// crash (or an error answered to WhatsApp) left the message recorded but
    /// its conversation not, the redelivery completes it; otherwise they
    /// decide nothing and the duplicate changes nothing.
    pub async fn receive_inbound(
        &self,
        number: &NumberRegistered,
        profile_name: Option<&str>,
        msg: &InboundMessage,
    ) -> Result<Received, AppError> {
        let tenant = number.tenant_id.as_str();
        let message_id = ids::inbound_message_id(tenant, &msg.wamid);
        let message_stream = ids::message_stream(tenant, message_id);
        let known = self.messages.load(&message_stream).await?.state.exists();
        let now = self.clock.now();
        let meta = Meta::new(format!("whatsapp:{}", msg.from));
        let conversation_id = ids::conversation_id(tenant, &number.phone_number_id, &msg.from);
        let text = msg.text();
        let preview = Preview {
            message_id,
            direction: Direction::Inbound,
            kind: msg.kind.clone(),
            text: text
                .map(|t| t.chars().take(content::PREVIEW_MAX_CHARS).collect())
                .or_else(|| content::preview_text(&msg.kind, &msg.content)),
            at: msg.timestamp,
        };
        let record = RecordInbound {
            conversation_id,
            number_id: number.phone_number_id.clone(),
            wa_id: msg.from.clone(),
            message_id,
            sent_at: msg.timestamp,
            preview,
            contact_name: profile_name.map(str::to_owned),
            referral: msg.referral.as_ref().map(Referral::from_webhook),
        };
        let conversation_target = Target {
            tenant_id: tenant,
            stream_id: ids::conversation_stream(tenant, conversation_id),
            wa_id: Some(&msg.from),
        };
        let contact_target =
            Target { tenant_id: tenant, stream_id: ids::contact_stream(tenant, &msg.from), wa_id: Some(&msg.from) };
        let keywords = self.tenant_keywords(tenant).await?;
        let observe = ObserveInbound {
            wa_id: &msg.from,
            profile_name,
            message_id,
            sent_at: msg.timestamp,
            text,
            keywords: &keywords,
        };
        let conversation = self.conversations.execute(&conversation_target, &meta, |s| {
            Ok::<_, AppError>(conversation::record_inbound(s, record.clone(), now))
        });
        let contact =
            self.contacts.execute(&contact_target, &meta, |s| Ok::<_, AppError>(contact::observe_inbound(s, &observe)));
        if known {
            let (conversation, contact) = tokio::join!(conversation, contact);
            conversation?;
            contact?;
            // A redelivery completes a reaction a crash left unapplied; applied, it changes nothing.
            self.apply_inbound_reaction(tenant, message_id, msg).await?;
            return Ok(Received::Duplicate);
        }

        let received = MessageReceived {
            message_id,
            conversation_id,
            number_id: number.phone_number_id.clone(),
            wa_id: msg.from.clone(),
            wamid: msg.wamid.clone(),
            kind: msg.kind.clone(),
            content: msg.content.clone(),
            context: msg.context.clone(),
            referral: msg.referral.clone(),
            sent_at: msg.timestamp,
            received_at: now,
        };
        let message_target = Target { tenant_id: tenant, stream_id: message_stream, wa_id: Some(&msg.from) };
        let message =
            self.messages.execute(&message_target, &meta, |s| Ok::<_, AppError>(message::receive(s, received.clone())));
        let (conversation, contact, message) = tokio::join!(conversation, contact, message);
        conversation?;
        contact?;
        let received = if message?.events.is_empty() { Received::Duplicate } else { Received::New };
        self.apply_inbound_reaction(tenant, message_id, msg).await?;
        Ok(received)
    }

    /// A customer's reaction: sets (or, with an empty emoji, removes) the
    /// customer's reaction on the message it names. A reaction to a message
    /// Parley does not hold, or of another contact, is kept as a message only.
    async fn apply_inbound_reaction(
        &self,
        tenant: &str,
        message_id: Uuid,
        msg: &InboundMessage,
    ) -> Result<(), AppError> {
        if msg.kind != "reaction" {
            return Ok(());
        }
        let (Some(target_wamid), Some(emoji)) =
            (msg.content.get("message_id").and_then(Value::as_str), msg.content.get("emoji").and_then(Value::as_str))
        else {
            return Ok(());
        };
        let Some(target) = self.message_by_wamid(tenant, target_wamid).await? else {
            tracing::info!(wamid = %target_wamid, "reaction to a message Parley does not hold");
            return Ok(());
        };
        let meta = Meta::new(format!("whatsapp:{}", msg.from));
        self.set_reaction(tenant, target, &msg.from, Direction::Inbound, emoji, message_id, msg.timestamp, &meta).await
    }

    /// The id of the tenant's message with this wamid: an outbound one by its
    /// wamid link, an inbound one by the id its wamid names.
    pub(crate) async fn message_by_wamid(&self, tenant: &str, wamid: &str) -> Result<Option<Uuid>, AppError> {
        let link = self.wamids.load(&ids::unmatched_status_stream(tenant, wamid)).await?;
        if let Some(id) = link.state.message_id {
            return Ok(Some(id));
        }
        let inbound = ids::inbound_message_id(tenant, wamid);
        let exists = self.messages.load(&ids::message_stream(tenant, inbound)).await?.state.exists();
        Ok(exists.then_some(inbound))
    }

    /// Records one side's reaction on `target`, a message with contact `wa_id`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn set_reaction(
        &self,
        tenant: &str,
        target: Uuid,
        wa_id: &str,
        direction: Direction,
        emoji: &str,
        reaction_message_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
        meta: &Meta,
    ) -> Result<(), AppError> {
        let stream_id = ids::message_stream(tenant, target);
        let target_wa_id = self.messages.load(&stream_id).await?.state.wa_id.clone();
        if target_wa_id != wa_id {
            tracing::warn!(%target, "reaction to another contact's message ignored");
            return Ok(());
        }
        let t = Target { tenant_id: tenant, stream_id, wa_id: Some(wa_id) };
        self.messages
            .execute(&t, meta, |m| Ok::<_, AppError>(message::react(m, direction, emoji, reaction_message_id, at)))
            .await?;
        Ok(())
    }
}

fn item_number(item: &WebhookItem) -> Option<&str> {
    match item {
        WebhookItem::Message { phone_number_id, .. } | WebhookItem::Status { phone_number_id, .. } => {
            Some(phone_number_id.as_str())
        }
        WebhookItem::Other { phone_number_id, .. } => phone_number_id.as_deref(),
    }
}
