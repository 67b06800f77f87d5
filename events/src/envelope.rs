//! The envelope every event travels in (SPEC 3.8).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event ready to be appended: everything but the parts the store assigns
/// (stream version, global position, recorded time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    pub data: serde_json::Value,
}

/// An event as stored: the full envelope of SPEC 3.8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    /// 1-based, gapless within the stream.
    pub version: u64,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    pub data: serde_json::Value,
    /// Position in the store-wide log, strictly increasing in commit order.
    /// Projections checkpoint on it.
    pub global_position: u64,
}
