//! Typed readings of the non-message webhook fields Parley acts on:
//! template approval changes, marketing stop/resume preferences, and the
//! health of business numbers (quality and account updates).
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

/// The value of a `phone_number_quality_update` change. It names the number
/// by its display number only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberQualityUpdate {
    /// The number as people dial it.
    pub display_phone_number: String,
    /// FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ONBOARDING, ...
    pub event: String,
    /// The messaging limit now, e.g. `TIER_1K`, `TIER_UNLIMITED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_limit: Option<String>,
    /// The messaging limit before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_limit: Option<String>,
}

impl NumberQualityUpdate {
    /// Reads the raw value of a `phone_number_quality_update` change.
    pub fn from_value(value: &Value) -> Result<Self, WebhookError> {
        Ok(Self::deserialize(value)?)
    }
}

/// The value of an `account_update` change: something happened to the
/// business account or one of its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// ACCOUNT_VIOLATION, ACCOUNT_RESTRICTION, DISABLED_UPDATE,
    /// ACCOUNT_DELETED, VERIFIED_ACCOUNT, ...
    pub event: String,
    /// The number concerned, when the update is about one number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// For ACCOUNT_RESTRICTION: what is restricted and until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restriction_info: Vec<Value>,
    /// For DISABLED_UPDATE: `waba_ban_state` and `waba_ban_date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_info: Option<Value>,
    /// For ACCOUNT_VIOLATION: `violation_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_info: Option<Value>,
}

impl AccountUpdate {
    /// Reads the raw value of an `account_update` change.
    pub fn from_value(value: &Value) -> Result<Self, WebhookError> {
        Ok(Self::deserialize(value)?)
    }

    /// The standing the update puts the number(s) in (CONNECTED, FLAGGED,
    /// RESTRICTED or DISABLED) with the details given; `None` for updates
    /// that change no standing (verification, partner installs, ...).
    pub fn standing(&self) -> Option<(&'static str, Option<String>)> {
        match self.event.as_str() {
            "ACCOUNT_VIOLATION" => Some((
                "FLAGGED",
                self.violation_info
                    .as_ref()
                    .and_then(|v| v.get("violation_type"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )),
            "ACCOUNT_RESTRICTION" => {
                let types: Vec<&str> = self
                    .restriction_info
                    .iter()
                    .filter_map(|r| r.get("restriction_type").and_then(Value::as_str))
                    .collect();
                Some(("RESTRICTED", (!types.is_empty()).then(|| types.join(","))))
            }
            "DISABLED_UPDATE" => {
                // `waba_ban_state` comes as a string or a list of them.
                let states: Vec<&str> = match self.ban_info.as_ref().and_then(|b| b.get("waba_ban_state")) {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let detail = Some(states.join(",")).filter(|s| !s.is_empty());
                if states.contains(&"DISABLE") {
                    Some(("DISABLED", detail))
                } else if states.contains(&"REINSTATE") {
                    Some(("CONNECTED", detail))
                } else if states.contains(&"SCHEDULE_FOR_DISABLE") {
                    Some(("FLAGGED", detail))
                } else {
                    None
                }
            }
            "ACCOUNT_DELETED" | "ACCOUNT_OFFBOARDED" => Some(("DISABLED", None)),
            "ACCOUNT_RECONNECTED" => Some(("CONNECTED", None)),
            _ => None,
        }
    }
}
