//! Typed readings of the non-message webhook fields Parley acts on:
//! template approval changes and marketing stop/resume preferences.
//!
//! [`super::WebhookItem::Other`] carries these values raw; these types read
//! them when the field says they are one of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WebhookError;

/// The value of a `message_template_status_update` change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// The new status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
    pub event: String,
    /// Meta's id of the template.
    pub message_template_id: i64,
    /// The template's name.
    pub message_template_name: String,
    /// The template's language code, such as `en_US`.
    pub message_template_language: String,
    /// Why it was rejected or paused; `NONE` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// MARKETING, UTILITY or AUTHENTICATION, when Meta says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_category: Option<String>,
}

impl TemplateStatusUpdate {
    /// Reads the raw value of a `message_template_status_update` change.
    pub fn from_value(value: &Value) -> Result<Self, WebhookError> {
        Ok(Self::deserialize(value)?)
    }
}

/// One item of a `user_preferences` change: a customer stopped or resumed
/// marketing messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPreference {
    /// The customer's WhatsApp id.
    pub wa_id: String,
    /// Meta's human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What the preference is about, `marketing_messages`.
    pub category: String,
    /// `stop` or `resume`.
    pub value: String,
    /// When the customer changed it (a JSON number on this field).
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
}

impl UserPreference {
    /// Reads the `user_preferences` list out of the raw value of a
    /// `user_preferences` change.
    pub fn list_from_value(value: &Value) -> Result<Vec<Self>, WebhookError> {
        match value.get("user_preferences") {
            Some(list) => Ok(Vec::<Self>::deserialize(list)?),
            None => Ok(Vec::new()),
        }
    }
}
