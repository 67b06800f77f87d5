//! Webhooks Meta posts to Parley: the body's wire types, its flattening into
//! items, typed readings of other fields, and the subscription handshake.
//!
//! Signatures are checked separately ([`crate::signature`]) over the raw
//! bytes, before [`parse`] is called.

mod fields;
mod handshake;
mod items;
mod payload;
pub mod timestamp;

use thiserror::Error;

pub use fields::{AccountUpdate, NumberQualityUpdate, TemplateStatusUpdate, UserPreference};
pub use handshake::{tokens_match, HandshakeError, SubscriptionQuery};
pub use items::{InboundMessage, StatusKind, StatusUpdate, UnknownStatus, WebhookItem};
pub use payload::{
    Change, ChangeValue, Contact, Entry, ErrorDetail, MessageObject, MessagesValue, Metadata, Pricing, Profile,
    StatusObject, WebhookPayload, FIELD_ACCOUNT_UPDATE, FIELD_MESSAGES, FIELD_QUALITY_UPDATE, FIELD_TEMPLATE_STATUS,
    FIELD_USER_PREFERENCES, OBJECT_WHATSAPP,
};

/// Why a webhook body could not be read.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// Not JSON, or JSON without the fields every webhook has.
    #[error("malformed webhook body: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Reads a webhook body from its raw bytes.
pub fn parse(body: &[u8]) -> Result<WebhookPayload, WebhookError> {
    Ok(serde_json::from_slice(body)?)
}
