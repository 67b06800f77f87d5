//! The outbound send in the Cloud API's shape: the request body of
//! `POST /{version}/{phone_number_id}/messages` and its success answer.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The only `messaging_product` the Cloud API knows.
pub const MESSAGING_PRODUCT: &str = "whatsapp";

/// The keys of the send envelope, which no message type may be named after.
const ENVELOPE_KEYS: [&str; 6] =
    ["messaging_product", "recipient_type", "to", "type", "context", "biz_opaque_callback_data"];

/// One message to send.
///
/// Serialises to
/// `{"messaging_product":"whatsapp","recipient_type":"individual","to":..,"type":kind,<kind>:content,
/// "context":{"message_id":..}?,"biz_opaque_callback_data":..?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The customer's WhatsApp id (digits).
    pub to: String,
    /// The message type: `text`, `template`, `image`, `interactive`, ...
    pub kind: String,
    /// The object placed under the key named by `kind`, such as
    /// `{"body": "Hello"}` for text.
    pub content: Value,
    /// The `wamid` this message replies to.
    pub context_message_id: Option<String>,
    /// An opaque string WhatsApp echoes back in this message's status
    /// webhooks; Parley puts its own message id there.
    pub biz_opaque_callback_data: Option<String>,
}

impl SendRequest {
    /// A plain text message.
    pub fn text(to: impl Into<String>, body: impl Into<String>) -> Self {
        SendRequest {
            to: to.into(),
            kind: "text".to_owned(),
            content: serde_json::json!({ "body": body.into() }),
            context_message_id: None,
            biz_opaque_callback_data: None,
        }
    }

    /// Whether this is a template message (billed and priced differently).
    pub fn is_template(&self) -> bool {
        self.kind == "template"
    }
}

/// `context` on a send: the message replied to.
#[derive(Serialize, Deserialize)]
struct ContextRef {
    message_id: String,
}

impl Serialize for SendRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The content goes under a key named by the type; a type named like
        // an envelope key would write that key twice.
        if self.kind.is_empty() || ENVELOPE_KEYS.contains(&self.kind.as_str()) {
            return Err(serde::ser::Error::custom(format!("{:?} is not a message type", self.kind)));
        }
        let optional =
            usize::from(self.context_message_id.is_some()) + usize::from(self.biz_opaque_callback_data.is_some());
        let mut map = serializer.serialize_map(Some(5 + optional))?;
        map.serialize_entry("messaging_product", MESSAGING_PRODUCT)?;
        map.serialize_entry("recipient_type", "individual")?;
        map.serialize_entry("to", &self.to)?;
        map.serialize_entry("type", &self.kind)?;
        map.serialize_entry(&self.kind, &self.content)?;
        if let Some(message_id) = &self.context_message_id {
            map.serialize_entry("context", &ContextRef { message_id: message_id.clone() })?;
        }
        if let Some(data) = &self.biz_opaque_callback_data {
            map.serialize_entry("biz_opaque_callback_data", data)?;
        }
        map.end()
    }
}

/// The send body as read back (by the simulator, or by tests).
#[derive(Deserialize)]
struct WireSendRequest {
    to: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<ContextRef>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl<'de> Deserialize<'de> for SendRequest {
    /// Reads a send body. `messaging_product` and `recipient_type` are not
    /// kept: checking them is the receiver's business.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut wire = WireSendRequest::deserialize(deserializer)?;
        if wire.kind.is_empty() {
            return Err(serde::de::Error::custom("type must not be empty"));
        }
        let content = wire.rest.remove(&wire.kind).unwrap_or(Value::Null);
        Ok(SendRequest {
            to: wire.to,
            kind: wire.kind,
            content,
            context_message_id: wire.context.map(|context| context.message_id),
            biz_opaque_callback_data: wire.biz_opaque_callback_data,
        })
    }
}

/// What the Cloud API answers to an accepted send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// Always `whatsapp`.
    pub messaging_product: String,
    /// The recipients as given and as WhatsApp ids.
    #[serde(default)]
    pub contacts: Vec<SendResponseContact>,
    /// The accepted messages; one for a single send.
    #[serde(default)]
    pub messages: Vec<SendResponseMessage>,
}

/// `contacts[]` of a send response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponseContact {
    /// The `to` of the request.
    pub input: String,
    /// The recipient's WhatsApp id.
    pub wa_id: String,
}

/// `messages[]` of a send response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponseMessage {
    /// The new message's `wamid`.
    pub id: String,
    /// `accepted`, or for some template sends `held_for_quality_assessment`
    /// or `paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// A send WhatsApp accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAccepted {
    /// The id WhatsApp gave the message; statuses refer to it.
    pub wamid: String,
    /// `messages[0].message_status`, when present.
    pub message_status: Option<String>,
}

impl SendResponse {
    /// The accepted message, `None` when the response lists none.
    pub fn accepted(&self) -> Option<SendAccepted> {
        let message = self.messages.first()?;
        Some(SendAccepted { wamid: message.id.clone(), message_status: message.message_status.clone() })
    }
}

impl SendAccepted {
    /// Reads a success body (send_response.json's shape).
    pub fn from_response_body(body: &[u8]) -> Result<Self, serde_json::Error> {
        let response: SendResponse = serde_json::from_slice(body)?;
        response.accepted().ok_or_else(|| serde::de::Error::custom("the response lists no message"))
    }
}
