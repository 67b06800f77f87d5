//! Read models built by projections (SPEC 6.2) and the port that queries them.
//!
//! Each row is derived from one event stream: a message row from its message
//! stream, a conversation row from its conversation stream. Personal fields
//! stay sealed in the read model exactly as in the events; the API opens them
//! on the way out, so a destroyed key redacts read models too.

pub mod analytics;
pub mod billing;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod contacts;
pub mod cursor;
pub mod jobs;
pub mod ops;
#[cfg(any(test, feature = "conformance"))]
pub mod ops_conformance;
pub mod sqlite;
mod templates;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub direction: String,
    pub kind: String,
    pub status: String,
    pub wamid: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Possibly sealed.
    pub content: Value,
    pub error: Option<Value>,
    pub tags: Vec<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// Deleted by an agent: `content` is null.
    pub deleted: bool,
    /// A template message's rendered text, possibly sealed; null otherwise.
    pub rendered: Value,
    /// An inbound media message's file: pending, stored or failed.
    pub media: Option<MediaView>,
}

/// How a message's file stands, as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaView {
    /// `pending` (not fetched yet), `stored` or `failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Hex SHA-256 of the stored file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why the fetch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the bytes are (internal: never shown by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_key: Option<String>,
}

impl MediaView {
    pub fn pending() -> Self {
        MediaView { state: "pending".into(), mime_type: None, sha256: None, size: None, error: None, blob_key: None }
    }

    /// The state a message event sets, from its stored data: an inbound
    /// media message starts `pending`; `None` for events that set none.
    pub fn after(event_type: &str, data: &Value) -> Option<Self> {
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        match event_type {
            "MessageReceived" => {
                text("kind").filter(|k| parley_domain::media::is_media_kind(k)).map(|_| Self::pending())
            }
            "MessageMediaStored" => Some(MediaView {
                state: "stored".into(),
                mime_type: text("mime_type"),
                sha256: text("sha256"),
                size: data.get("size").and_then(Value::as_u64),
                error: None,
                blob_key: text("blob_key"),
            }),
            "MessageMediaFetchFailed" => {
                Some(MediaView { state: "failed".into(), error: text("reason"), ..Self::pending() })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    pub id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    /// Possibly sealed.
    pub contact_name: Value,
    pub state: String,
    pub window_closes_at: Option<DateTime<Utc>>,
    pub unread_count: u32,
    /// The preview of the last message, possibly with a sealed text.
    pub last_message: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub activity_at: DateTime<Utc>,
    /// The user handling the conversation.
    pub assignee: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberView {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub throughput_per_second: u32,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactView {
    pub wa_id: String,
    /// Possibly sealed.
    pub name: Value,
    pub opted_out: bool,
    pub opt_changed_at: Option<DateTime<Utc>>,
    /// `keyword`, `api` or `whats_app`, for the last opt change.
    pub opt_source: Option<String>,
    pub tags: Vec<String>,
    /// Possibly sealed.
    pub attributes: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub reason: Option<String>,
    pub components: Value,
    pub whatsapp_id: Option<String>,
    pub waba_id: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub opted_out: Option<bool>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFilter {
    Open,
    Closed,
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub state: Option<String>,
    pub window: Option<WindowFilter>,
    pub number_id: Option<String>,
    /// Conversations holding a message with this tag.
    pub tag: Option<String>,
    pub assignee: Option<AssigneeFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Unassigned,
    User(String),
}

/// A conversation whose window has closed but is not yet marked expired.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    pub tenant_id: String,
    pub conversation_id: Uuid,
    pub wa_id: String,
}

#[async_trait]
pub trait ReadModels: Send + Sync + 'static {
    async fn message(&self, tenant_id: &str, id: Uuid) -> Result<Option<MessageView>, AppError>;
    /// Newest first.
    async fn messages(
        &self,
        tenant_id: &str,
        conversation_id: Option<Uuid>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<MessageView>, AppError>;
    async fn conversation(&self, tenant_id: &str, id: Uuid) -> Result<Option<ConversationView>, AppError>;
    /// Most recently active first.
    async fn conversations(
        &self,
        tenant_id: &str,
        filter: &ConversationFilter,
        now: DateTime<Utc>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ConversationView>, AppError>;
    async fn numbers(&self, tenant_id: &str) -> Result<Vec<NumberView>, AppError>;
    /// A tenant's templates (not deleted), by name and language; only those
    /// named `name` when given.
    async fn templates(&self, tenant_id: &str, name: Option<&str>) -> Result<Vec<TemplateView>, AppError>;
    /// The numbers of a WhatsApp Business Account.
    async fn numbers_in_waba(&self, waba_id: &str) -> Result<Vec<NumberView>, AppError>;
    /// A tenant's contacts by `wa_id`.
    async fn contacts(
        &self,
        tenant_id: &str,
        filter: &ContactFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ContactView>, AppError>;
    /// Numbers whose webhook verify token has this SHA-256 (hex).
    async fn numbers_with_verify_token(&self, verify_token_sha256: &str) -> Result<Vec<NumberView>, AppError>;
    async fn closed_windows(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ClosedWindow>, AppError>;
    /// Count of message rows of a tenant (operations and tests).
    async fn count_messages(&self, tenant_id: &str) -> Result<u64, AppError>;
}
