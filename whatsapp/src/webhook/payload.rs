//! The webhook body as Meta sends it: `object`, `entry[]`, `changes[]` and,
//! for the `messages` field, the typed `value` with its metadata, contacts,
//! messages and statuses.
//!
//! Meta adds fields over time, so unknown fields are accepted everywhere;
//! where they may matter later (the change value, each message and status)
//! they are kept in an `extra` map instead of being dropped. Every other
//! field (`message_template_status_update`, `user_preferences`, ...) keeps
//! its `value` as raw JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `field` of changes that carry messages and statuses.
pub const FIELD_MESSAGES: &str = "messages";
/// The `field` of template approval changes.
pub const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";
/// The `field` of marketing stop/resume changes.
pub const FIELD_USER_PREFERENCES: &str = "user_preferences";
/// The `field` of a business number's quality and messaging limit changes.
pub const FIELD_QUALITY_UPDATE: &str = "phone_number_quality_update";
/// The `field` of changes to the business account's standing.
pub const FIELD_ACCOUNT_UPDATE: &str = "account_update";
/// The `object` of every WhatsApp Business webhook.
pub const OBJECT_WHATSAPP: &str = "whatsapp_business_account";

/// A whole webhook POST body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// `whatsapp_business_account` for WhatsApp webhooks.
    pub object: String,
    /// One entry per business account; one POST may carry several.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// One `entry[]`: the changes of one WhatsApp Business Account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The WhatsApp Business Account (WABA) id.
    pub id: String,
    /// The changes reported for that account.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One `changes[]` item: a subscribed field and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawChange")]
pub struct Change {
    /// The subscribed field, such as `messages` or `user_preferences`.
    pub field: String,
    /// The value, typed for `messages` and raw otherwise.
    pub value: ChangeValue,
}

/// The `value` of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChangeValue {
    /// The value of a `messages` change.
    Messages(Box<MessagesValue>),
    /// The value of any other field, as received.
    Other(Value),
}

/// The shape a change has on the wire, before its value is typed by field.
#[derive(Deserialize)]
struct RawChange {
    field: String,
    #[serde(default)]
    value: Value,
}

impl TryFrom<RawChange> for Change {
    type Error = serde_json::Error;

    fn try_from(raw: RawChange) -> Result<Self, Self::Error> {
        let value = if raw.field == FIELD_MESSAGES {
            ChangeValue::Messages(Box::new(serde_json::from_value(raw.value)?))
        } else {
            ChangeValue::Other(raw.value)
        };
        Ok(Change { field: raw.field, value })
    }
}

/// The value of a `messages` change: what one business number received or
/// what happened to what it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesValue {
    /// Always `whatsapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// The business number the change is about.
    pub metadata: Metadata,
    /// Profiles of the customers who sent `messages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Messages customers sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageObject>,
    /// Status updates of messages the business sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<StatusObject>,
    /// Fields this crate does not know (for example system `errors`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `value.metadata`: which business number a change concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The number as people dial it, digits only.
    pub display_phone_number: String,
    /// The Graph API id of the number; Parley finds the tenant with it.
    pub phone_number_id: String,
}

/// `value.contacts[]`: a customer who wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The customer's profile, when shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The customer's WhatsApp id.
    pub wa_id: String,
}

/// `contacts[].profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The name the customer set in WhatsApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `value.messages[]`: one message from a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageObject {
    /// The sender's WhatsApp id.
    pub from: String,
    /// The message's `wamid`.
    pub id: String,
    /// When WhatsApp received it.
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The message type; the content sits under the key of that name.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message this one replies to or was forwarded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The ad that brought the customer, for click-to-WhatsApp messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Value>,
    /// Why the message could not be read (for `unsupported` messages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
    /// The content object (under the key named by `kind`) and any other field.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `value.statuses[]`: what happened to one message the business sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusObject {
    /// The `wamid` of the message sent.
    pub id: String,
    /// `sent`, `delivered`, `read`, `played` or `failed`; kept as text so a
    /// status added by Meta later does not make the whole body unreadable.
    pub status: String,
    /// When the status happened.
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The customer's WhatsApp id.
    pub recipient_id: String,
    /// The string the sender put on the send request, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// How the message is billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// The conversation object Meta still sends on some statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Value>,
    /// Why the message failed, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `statuses[].pricing`: how Meta bills a message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pricing {
    /// Whether the message is charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    /// `PMP` (per message) since July 2025.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<String>,
    /// marketing, utility, authentication, authentication_international,
    /// marketing_lite, service or referral_conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `regular`, `free_customer_service` or `free_entry_point` (JSON `type`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
}

/// One WhatsApp error as it appears in webhooks (`errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WireErrorDetail", into = "WireErrorDetail")]
pub struct ErrorDetail {
    /// The WhatsApp error code (see [`crate::errors::ErrorKind::from_code`]).
    pub code: i64,
    /// Short title.
    pub title: Option<String>,
    /// Message text.
    pub message: Option<String>,
    /// `error_data.details`: the most specific explanation.
    pub details: Option<String>,
}

/// The nested shape [`ErrorDetail`] has on the wire.
#[derive(Clone, Serialize, Deserialize)]
struct WireErrorDetail {
    code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_data: Option<WireErrorData>,
}

#[derive(Clone, Serialize, Deserialize)]
struct WireErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<String>,
}

impl From<WireErrorDetail> for ErrorDetail {
    fn from(wire: WireErrorDetail) -> Self {
        ErrorDetail {
            code: wire.code,
            title: wire.title,
            message: wire.message,
            details: wire.error_data.and_then(|data| data.details),
        }
    }
}

impl From<ErrorDetail> for WireErrorDetail {
    fn from(detail: ErrorDetail) -> Self {
        WireErrorDetail {
            code: detail.code,
            title: detail.title,
            message: detail.message,
            error_data: detail.details.map(|details| WireErrorData { details: Some(details) }),
        }
    }
}

impl MessagesValue {
    /// The profile name of the customer with WhatsApp id `wa_id`.
    ///
    /// Meta lists one contact per sender; the id it lists can differ in
    /// format from `from` (some countries' numbers gain or lose a digit), so
    /// a lone contact is taken as the sender when no id matches exactly.
    pub fn contact_name(&self, wa_id: &str) -> Option<&str> {
        let contact =
            self.contacts.iter().find(|contact| contact.wa_id == wa_id).or(match self.contacts.as_slice() {
                [only] => Some(only),
                _ => None,
            })?;
        contact.profile.as_ref()?.name.as_deref()
    }
}

impl MessageObject {
    /// The content object under the key named by the message type.
    pub fn content(&self) -> Option<&Value> {
        self.rest.get(&self.kind)
    }
}
