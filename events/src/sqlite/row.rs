//! How envelope fields map to SQLite columns: UUIDs as hyphenated text,
//! timestamps as RFC 3339 UTC text with nine fractional digits (exact for
//! chrono's nanoseconds, and sorting in time order), data as JSON text.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;
use uuid::Uuid;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::StoreError;

/// A query over `events` selecting the columns in the order [`decode`] expects.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT global_position, stream_id, version, event_id, tenant_id, type, schema_version, ",
            "occurred_at, recorded_at, correlation_id, causation_id, actor, data FROM events ",
            $rest
        )
    };
}

/// One stream after a version (?1 stream, ?2 version), served by UNIQUE(stream_id, version).
pub(super) const READ_STREAM: &str = select_events!("WHERE stream_id = ?1 AND version > ?2 ORDER BY version");
/// The global log after a position (?1 position, ?2 limit), served by the primary key.
pub(super) const READ_ALL: &str = select_events!("WHERE global_position > ?1 ORDER BY global_position LIMIT ?2");

/// A new event already turned into column values. The appending task does
/// this work so the single writer thread only binds and steps.
#[derive(Debug)]
pub(super) struct EncodedEvent {
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub actor: String,
    pub data: String,
}

impl EncodedEvent {
    pub fn new(event: NewEvent) -> Self {
        Self {
            event_id: event.event_id.hyphenated().to_string(),
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at: format_time(&event.occurred_at),
            correlation_id: event.correlation_id.hyphenated().to_string(),
            causation_id: event.causation_id.map(|id| id.hyphenated().to_string()),
            actor: event.actor,
            // A `Value` always has a JSON text form; `Display` writes it.
            data: event.data.to_string(),
        }
    }
}

pub(super) fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Reads one row selected by [`READ_STREAM`] or [`READ_ALL`].
pub(super) fn decode(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        global_position: unsigned(row.get(0)?, "global_position")?,
        stream_id: row.get(1)?,
        version: unsigned(row.get(2)?, "version")?,
        event_id: uuid(&row.get::<_, String>(3)?, "event_id")?,
        tenant_id: row.get(4)?,
        event_type: row.get(5)?,
        schema_version: u32::try_from(row.get::<_, i64>(6)?)
            .map_err(|_| StoreError::Corrupt("schema_version out of range".into()))?,
        occurred_at: time(&row.get::<_, String>(7)?, "occurred_at")?,
        recorded_at: time(&row.get::<_, String>(8)?, "recorded_at")?,
        correlation_id: uuid(&row.get::<_, String>(9)?, "correlation_id")?,
        causation_id: row.get::<_, Option<String>>(10)?.map(|id| uuid(&id, "causation_id")).transpose()?,
        actor: row.get(11)?,
        data: serde_json::from_str(&row.get::<_, String>(12)?)
            .map_err(|e| StoreError::Corrupt(format!("data is not JSON: {e}")))?,
    })
}

fn unsigned(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

fn uuid(text: &str, column: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("{column} {text:?} is not a UUID: {e}")))
}

fn time(text: &str, column: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?} is not an RFC 3339 time: {e}")))
}
