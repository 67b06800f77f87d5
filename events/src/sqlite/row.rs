//! How envelope fields map to SQLite columns: UUIDs as hyphenated text,
//! timestamps as RFC 3339 UTC text with nine fractional digits (exact for
//! chrono's nanoseconds, and sorting in time order), data as JSON text.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::ValueRef;
use rusqlite::Row;
use uuid::fmt::Hyphenated;
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
/// The same, up to a number of events (?3).
pub(super) const READ_STREAM_PAGE: &str =
    select_events!("WHERE stream_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3");
/// The global log after a position (?1 position, ?2 limit), served by the primary key.
pub(super) const READ_ALL: &str = select_events!("WHERE global_position > ?1 ORDER BY global_position LIMIT ?2");

/// How much room the JSON text of an event's data gets to begin with:
/// enough for most events, so the text is written without regrowing.
const DATA_TEXT_CAPACITY: usize = 512;

/// A new event together with the parts of its row that take work to make.
/// The appending task does this work so the single writer thread only
/// binds, steps, and fills in what it assigns.
#[derive(Debug)]
pub(super) struct EncodedEvent {
    /// The event as it will read back, short of its stream, tenant, version,
    /// global position and recording time, which the writer fills in.
    pub recorded: RecordedEvent,
    pub occurred_at: String,
    /// The data's JSON text, as stored.
    pub data: String,
}

impl EncodedEvent {
    pub fn new(event: NewEvent) -> Self {
        let data = json_text(&event.data);
        let recorded = RecordedEvent {
            event_id: event.event_id,
            stream_id: String::new(),
            version: 0,
            tenant_id: String::new(),
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.occurred_at,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            actor: event.actor,
            data: as_read_back(event.data, &data),
            global_position: 0,
        };
        Self { occurred_at: format_time(&recorded.occurred_at), recorded, data }
    }
}

/// The JSON text of `data`, written straight into a buffer of bytes (which
/// takes half the work of going through `Display`).
fn json_text(data: &serde_json::Value) -> String {
    let mut text = Vec::with_capacity(DATA_TEXT_CAPACITY);
    match serde_json::to_writer(&mut text, data).map(|()| String::from_utf8(text)) {
        Ok(Ok(text)) => text,
        // Neither can fail: a `Value`'s keys are strings, and serde_json
        // writes UTF-8. Should one ever, `Display` writes the same text.
        _ => data.to_string(),
    }
}

/// The length of a UUID's column text.
pub(super) const UUID_TEXT: usize = Hyphenated::LENGTH;

/// The column text of a UUID, written into `buffer` instead of a new string.
pub(super) fn uuid_text<'b>(id: &Uuid, buffer: &'b mut [u8; UUID_TEXT]) -> &'b str {
    id.hyphenated().encode_lower(buffer)
}

/// The data as a read from SQLite would return it. Parsing the JSON text of
/// a `Value` gives the same `Value` back, except that a float may come back
/// one unit in the last place off; so data holding floats is taken from its
/// text, as a reader would.
fn as_read_back(data: serde_json::Value, text: &str) -> serde_json::Value {
    if !holds_float(&data) {
        return data;
    }
    serde_json::from_str(text).unwrap_or(data)
}

fn holds_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) => number.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(holds_float),
        serde_json::Value::Object(fields) => fields.values().any(holds_float),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::String(_) => false,
    }
}

pub(super) fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Reads one row selected by [`READ_STREAM`] or [`READ_ALL`]. Columns that
/// are parsed (UUIDs, times, data) are read in place rather than copied out.
pub(super) fn decode(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        global_position: unsigned(row.get(0)?, "global_position")?,
        stream_id: row.get(1)?,
        version: unsigned(row.get(2)?, "version")?,
        event_id: uuid(text(row, 3, "event_id")?, "event_id")?,
        tenant_id: row.get(4)?,
        event_type: row.get(5)?,
        schema_version: u32::try_from(row.get::<_, i64>(6)?)
            .map_err(|_| StoreError::Corrupt("schema_version out of range".into()))?,
        occurred_at: time(text(row, 7, "occurred_at")?, "occurred_at")?,
        recorded_at: time(text(row, 8, "recorded_at")?, "recorded_at")?,
        correlation_id: uuid(text(row, 9, "correlation_id")?, "correlation_id")?,
        causation_id: match row.get_ref(10)? {
            ValueRef::Null => None,
            _ => Some(uuid(text(row, 10, "causation_id")?, "causation_id")?),
        },
        actor: row.get(11)?,
        data: serde_json::from_str(text(row, 12, "data")?)
            .map_err(|e| StoreError::Corrupt(format!("data is not JSON: {e}")))?,
    })
}

/// A text column, borrowed from the row.
fn text<'row>(row: &'row Row<'_>, index: usize, column: &str) -> Result<&'row str, StoreError> {
    row.get_ref(index)?.as_str().map_err(|e| StoreError::Corrupt(format!("{column} is not text: {e}")))
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
