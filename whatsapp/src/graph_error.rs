//! The error body the Graph API answers with (`{"error": {...}}`), as in
//! send_error_*.json.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    /// The error.
    pub error: GraphError,
}

/// The error object of a Graph API answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    /// Human-readable message, such as `(#130429) Rate limit hit`.
    #[serde(default)]
    pub message: String,
    /// `OAuthException` and the like.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The error code (see [`crate::errors::ErrorKind::from_code`]).
    pub code: i64,
    /// A finer code some errors carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// WhatsApp specifics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<GraphErrorData>,
    /// Meta's trace id, for support requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

/// `error.error_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorData {
    /// `whatsapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// The most specific explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl GraphError {
    /// An error as the Cloud API writes it for WhatsApp calls.
    pub fn new(code: i64, message: impl Into<String>, details: Option<String>) -> Self {
        GraphError {
            message: message.into(),
            error_type: Some("OAuthException".to_owned()),
            code,
            error_subcode: None,
            error_data: details.map(|details| GraphErrorData {
                messaging_product: Some(crate::send::MESSAGING_PRODUCT.to_owned()),
                details: Some(details),
            }),
            fbtrace_id: None,
        }
    }

    /// The message with the details appended, when there are any.
    pub fn full_message(&self) -> String {
        match self.error_data.as_ref().and_then(|data| data.details.as_deref()) {
            Some(details) if !details.is_empty() => format!("{}: {details}", self.message),
            _ => self.message.clone(),
        }
    }
}
