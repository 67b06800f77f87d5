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
pub mod db;
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

/// A message row. It is also the archived form of the row (SPEC 6.3), so
/// its serialized shape is kept readable by later versions: fields added
/// since default when absent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub direction: String,
    #[serde(rename = "type")]
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
    /// The current reactions on the message by side: `{"inbound": {"emoji",
    /// "at", "message_id"}, "outbound": ...}` with each emoji possibly sealed
    /// (empty once removed); null when nobody reacted.
    #[serde(default)]
    pub reactions: Value,
    /// When WhatsApp accepted the send.
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    /// The number that actually sent it, when the sender recorded one.
    #[serde(default)]
    pub sent_from: Option<String>,
    /// An inbound media message's file: pending, stored or failed.
    #[serde(default)]
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
    /// When the free entry point window of a click-to-WhatsApp ad closes.
    pub entry_point_window_closes_at: Option<DateTime<Utc>>,
    /// The ad that opened it (`source_url`, `source_id`, `source_type`,
    /// `headline`, ...), its text possibly sealed.
    pub referral: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberView {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub throughput_per_second: u32,
    pub registered_at: DateTime<Utc>,
    /// GREEN, YELLOW, RED or UNKNOWN.
    pub quality_rating: String,
    /// The messaging tier WhatsApp last reported, e.g. `TIER_1K`.
    pub messaging_limit: Option<String>,
    /// CONNECTED, FLAGGED, RESTRICTED or DISABLED.
    pub account_status: String,
    pub alternate_number_id: Option<String>,
}

/// What a number's outbound messages created in a time range did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NumberActivity {
    /// Outbound messages of the number (sent from it, or queued on it and
    /// not sent from another one).
    pub messages: u64,
    /// Of those, accepted by WhatsApp.
    pub sent: u64,
    /// Of those, delivered (or read, which implies delivery).
    pub delivered: u64,
    /// Failed messages by failure kind.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Accepted to delivered, in milliseconds, ascending.
    pub delivery_latencies_ms: Vec<i64>,
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

/// An outbound message still waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub tenant_id: String,
    pub message_id: Uuid,
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
    /// Up to `limit` outbound messages of any tenant still `queued`, oldest
    /// first (the expired-message cleanup).
    async fn queued_messages(&self, limit: usize) -> Result<Vec<QueuedMessage>, AppError>;
    /// Every tenant with a registered number, sorted (the scheduled jobs
    /// that visit each tenant).
    async fn tenants(&self) -> Result<Vec<String>, AppError>;
    /// Drops the rows (and tag entries) of archived messages: their copy is in
    /// blob storage (SPEC 6.3). Ids without a row are skipped.
    async fn remove_messages(&self, tenant_id: &str, ids: &[Uuid]) -> Result<(), AppError>;
    /// Rebuilds the rows of messages whose archived events were put back,
    /// from those events, by the projection's own rules. Rows that exist
    /// are left as they are, so restoring twice changes nothing. Events of
    /// other streams are ignored.
    async fn restore_messages(&self, events: &[parley_events::RecordedEvent]) -> Result<(), AppError>;
    /// The activity of a tenant's number over the outbound messages created
    /// in `[from, to)`.
    async fn number_activity(
        &self,
        tenant_id: &str,
        phone_number_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<NumberActivity, AppError>;
}
