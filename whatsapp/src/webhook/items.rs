//! The flat view of a webhook body: one [`WebhookItem`] per message, status
//! or other change, whichever entry and change it came in.
//!
//! Meta batches freely (many entries, each with many changes, each with many
//! messages or statuses), so consumers iterate over items instead of walking
//! the nesting and risking to handle only the first of each.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::payload::{
    Change, ChangeValue, ErrorDetail, MessageObject, MessagesValue, Pricing, StatusObject, WebhookPayload,
};

/// One thing a webhook reported.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookItem {
    /// A customer sent a message to a business number.
    Message {
        /// The business number that received it.
        phone_number_id: String,
        /// That number as people dial it.
        display_phone_number: String,
        /// The business account (`entry[].id`).
        waba_id: String,
        /// The sender's profile name, when shared.
        contact_name: Option<String>,
        /// The message.
        message: InboundMessage,
    },
    /// A message the business sent changed status.
    Status {
        /// The business number that sent it.
        phone_number_id: String,
        /// The business account (`entry[].id`).
        waba_id: String,
        /// The status update.
        status: StatusUpdate,
    },
    /// Anything else: another field (template status, user preferences,
    /// quality or account updates), a `messages` change with neither
    /// messages nor statuses, or a status this crate does not know.
    Other {
        /// The business number, when the value names one in its metadata.
        phone_number_id: Option<String>,
        /// The business account (`entry[].id`).
        waba_id: String,
        /// The change's field.
        field: String,
        /// The raw value (for an unknown status: that status object).
        value: Value,
    },
}

/// A message from a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// WhatsApp's id for the message.
    pub wamid: String,
    /// The sender's WhatsApp id.
    pub from: String,
    /// When WhatsApp received it.
    pub timestamp: DateTime<Utc>,
    /// The message type: `text`, `image`, `interactive`, `button`,
    /// `reaction`, `location`, `contacts`, `unsupported`, ...
    pub kind: String,
    /// The object under the key named by `kind` (`{"body": ...}` for text);
    /// `Null` when the message has none.
    pub content: Value,
    /// What the message replies to or was forwarded from.
    pub context: Option<Value>,
    /// The ad that brought the customer.
    pub referral: Option<Value>,
    /// Why WhatsApp could not read the message.
    pub errors: Vec<ErrorDetail>,
}

impl InboundMessage {
    /// The text a person typed or tapped: the text body, a quick-reply
    /// button's text, or the title of an interactive button or list reply;
    /// `None` for every other message.
    pub fn text(&self) -> Option<&str> {
        match self.kind.as_str() {
            "text" => self.content.get("body")?.as_str(),
            "button" => self.content.get("text")?.as_str(),
            "interactive" => {
                // The reply object sits under the key named by its own type
                // (`button_reply` or `list_reply`).
                let reply_kind = self.content.get("type")?.as_str()?;
                self.content.get(reply_kind)?.get("title")?.as_str()
            }
            _ => None,
        }
    }
}

impl From<&MessageObject> for InboundMessage {
    fn from(message: &MessageObject) -> Self {
        InboundMessage {
            wamid: message.id.clone(),
            from: message.from.clone(),
            timestamp: message.timestamp,
            kind: message.kind.clone(),
            content: message.content().cloned().unwrap_or(Value::Null),
            context: message.context.clone(),
            referral: message.referral.clone(),
            errors: message.errors.clone(),
        }
    }
}

/// What happened to a message the business sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The message's `wamid`.
    pub wamid: String,
    /// The new status.
    pub status: StatusKind,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The customer's WhatsApp id.
    pub recipient_id: String,
    /// What the sender put on the send request, echoed back.
    pub biz_opaque_callback_data: Option<String>,
    /// How the message is billed.
    pub pricing: Option<Pricing>,
    /// The conversation object, when Meta sends one.
    pub conversation: Option<Value>,
    /// Why it failed, for [`StatusKind::Failed`].
    pub errors: Vec<ErrorDetail>,
}

/// The statuses a sent message goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// WhatsApp accepted it and sent it on.
    Sent,
    /// It reached the customer's phone.
    Delivered,
    /// The customer opened it.
    Read,
    /// The customer played a voice message.
    Played,
    /// It could not be delivered.
    Failed,
}

impl StatusKind {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Played => "played",
            StatusKind::Failed => "failed",
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown message status: {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for StatusKind {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sent" => Ok(StatusKind::Sent),
            "delivered" => Ok(StatusKind::Delivered),
            "read" => Ok(StatusKind::Read),
            "played" => Ok(StatusKind::Played),
            "failed" => Ok(StatusKind::Failed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

impl WebhookPayload {
    /// Every message, status and other change in the body, in the order they
    /// appear: entries, then changes, then a change's messages before its
    /// statuses.
    pub fn items(&self) -> Vec<WebhookItem> {
        let mut items = Vec::new();
        for entry in &self.entry {
            for change in &entry.changes {
                push_change_items(&entry.id, change, &mut items);
            }
        }
        items
    }
}

/// Appends the items of one change.
fn push_change_items(waba_id: &str, change: &Change, items: &mut Vec<WebhookItem>) {
    match &change.value {
        ChangeValue::Messages(value) => push_messages_items(waba_id, &change.field, value, items),
        ChangeValue::Other(value) => items.push(WebhookItem::Other {
            phone_number_id: value.pointer("/metadata/phone_number_id").and_then(Value::as_str).map(str::to_owned),
            waba_id: waba_id.to_owned(),
            field: change.field.clone(),
            value: value.clone(),
        }),
    }
}

/// Appends the items of a `messages` change.
fn push_messages_items(waba_id: &str, field: &str, value: &MessagesValue, items: &mut Vec<WebhookItem>) {
    let metadata = &value.metadata;
    let other = |value: Value| WebhookItem::Other {
        phone_number_id: Some(metadata.phone_number_id.clone()),
        waba_id: waba_id.to_owned(),
        field: field.to_owned(),
        value,
    };

    for message in &value.messages {
        items.push(WebhookItem::Message {
            phone_number_id: metadata.phone_number_id.clone(),
            display_phone_number: metadata.display_phone_number.clone(),
            waba_id: waba_id.to_owned(),
            contact_name: value.contact_name(&message.from).map(str::to_owned),
            message: InboundMessage::from(message),
        });
    }

    for status in &value.statuses {
        match status_update(status) {
            Ok(update) => items.push(WebhookItem::Status {
                phone_number_id: metadata.phone_number_id.clone(),
                waba_id: waba_id.to_owned(),
                status: update,
            }),
            Err(unknown) => {
                // A status Meta introduced after this code was written: pass
                // it on untyped rather than refuse the whole body, which Meta
                // would redeliver forever.
                tracing::warn!(wamid = %status.id, status = %unknown.0, "unknown WhatsApp status passed on untyped");
                items.push(other(to_json(status)));
            }
        }
    }

    if value.messages.is_empty() && value.statuses.is_empty() {
        items.push(other(to_json(value)));
    }
}

/// Types one status object.
fn status_update(status: &StatusObject) -> Result<StatusUpdate, UnknownStatus> {
    Ok(StatusUpdate {
        wamid: status.id.clone(),
        status: status.status.parse()?,
        timestamp: status.timestamp,
        recipient_id: status.recipient_id.clone(),
        biz_opaque_callback_data: status.biz_opaque_callback_data.clone(),
        pricing: status.pricing.clone(),
        conversation: status.conversation.clone(),
        errors: status.errors.clone(),
    })
}

/// Turns a wire object back into JSON. These types hold only strings, numbers
/// and JSON maps keyed by strings, which always serialise; the fallback keeps
/// the item rather than lose it.
fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|error| {
        tracing::warn!(%error, "webhook value could not be turned back into JSON");
        Value::Null
    })
}
