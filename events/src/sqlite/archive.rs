//! Archival on the SQLite file: listing dormant streams, deleting archived
//! streams' events and putting them back. These run on their own short-lived
//! connection (SQLite serialises it with the writer thread's commits): they
//! are rare, scheduled work, and keeping them off the writer thread keeps
//! appends from waiting behind a large delete.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, TransactionBehavior};

use super::row::format_time;
use crate::envelope::RecordedEvent;
use crate::store::StoreError;

/// Streams under a prefix whose newest event occurred before a time, served
/// by the `UNIQUE (stream_id, version)` index as a range scan. Times are
/// stored as fixed-width RFC 3339 UTC text, so text order is time order.
const DORMANT: &str = "SELECT stream_id FROM events WHERE stream_id >= ?1 AND stream_id < ?2 \
     GROUP BY stream_id HAVING MAX(occurred_at) < ?3 ORDER BY stream_id LIMIT ?4";

const DELETE_STREAM: &str = "DELETE FROM events WHERE stream_id = ?1";

const RESTORE_EVENT: &str = "INSERT OR IGNORE INTO events (global_position, stream_id, version, event_id, tenant_id, \
     type, schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A stream that was never archived keeps its version in `streams`; a file
/// restored from elsewhere learns it here.
const RAISE_STREAM_VERSION: &str = "INSERT INTO streams (stream_id, version) VALUES (?1, ?2) \
     ON CONFLICT (stream_id) DO UPDATE SET version = MAX(version, excluded.version)";

/// The first text after every text that starts with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    end.push(char::MAX);
    end
}

pub(super) fn dormant_streams(
    conn: &Connection,
    prefix: &str,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(DORMANT)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows =
        statement.query_map(params![prefix, prefix_end(prefix), format_time(&before), limit], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete_streams(conn: &mut Connection, stream_ids: &[String]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut delete = tx.prepare_cached(DELETE_STREAM)?;
        for stream_id in stream_ids {
            delete.execute([stream_id])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn restore(conn: &mut Connection, events: &[RecordedEvent]) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut restored = 0;
    {
        let mut insert = tx.prepare_cached(RESTORE_EVENT)?;
        let mut raise = tx.prepare_cached(RAISE_STREAM_VERSION)?;
        for event in events {
            let data = serde_json::to_string(&event.data)
                .map_err(|e| StoreError::Corrupt(format!("event data does not serialize: {e}")))?;
            restored += insert.execute(params![
                i64::try_from(event.global_position).unwrap_or(i64::MAX),
                event.stream_id,
                i64::try_from(event.version).unwrap_or(i64::MAX),
                event.event_id.hyphenated().to_string(),
                event.tenant_id,
                event.event_type,
                event.schema_version,
                format_time(&event.occurred_at),
                format_time(&event.recorded_at),
                event.correlation_id.hyphenated().to_string(),
                event.causation_id.map(|id| id.hyphenated().to_string()),
                event.actor,
                data,
            ])?;
            raise.execute(params![event.stream_id, i64::try_from(event.version).unwrap_or(i64::MAX)])?;
        }
    }
    tx.commit()?;
    Ok(restored)
}
