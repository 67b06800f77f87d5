//! The single writer thread of the SQLite event store and its group commit.
//!
//! Every append travels over a channel to one thread that owns the write
//! connection. The thread takes whatever requests are waiting (up to
//! [`MAX_BATCH`]) and commits them in one transaction, so one fsync pays for
//! many appends: while a commit is on its way to disk, the next batch queues.
//! Each request is checked against its stream's version as left by the
//! requests before it in the same batch; a conflicting request fails alone.

use std::collections::HashMap;
use std::thread::JoinHandle;

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use super::row::{format_time, EncodedEvent};
use crate::store::{AppendOutcome, ExpectedVersion, StoreError};

/// The most requests committed in one transaction: large enough to soak up
/// a burst, small enough that one batch never holds the writer for long.
const MAX_BATCH: usize = 512;

/// How many appends may wait for the writer before appenders wait to send.
pub(super) const QUEUE_CAPACITY: usize = 4096;

const SELECT_STREAM_VERSION: &str = "SELECT version FROM streams WHERE stream_id = ?1";
const UPSERT_STREAM_VERSION: &str = "INSERT INTO streams (stream_id, version) VALUES (?1, ?2) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";
const INSERT_EVENT: &str = "INSERT INTO events (stream_id, version, event_id, tenant_id, type, schema_version, \
     occurred_at, recorded_at, correlation_id, causation_id, actor, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

pub(super) type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

/// One append waiting for the writer.
#[derive(Debug)]
pub(super) struct AppendRequest {
    pub tenant_id: String,
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EncodedEvent>,
    pub reply: Reply,
}

/// Starts the writer thread. It runs until every sender of `requests` is gone.
pub(super) fn spawn(
    conn: Connection,
    requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<u64>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("parley-event-writer".into()).spawn(move || Writer { conn, requests, head }.run())
}

struct Writer {
    conn: Connection,
    requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<u64>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.requests.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            match commit(&mut self.conn, &batch) {
                Ok(outcomes) => {
                    if let Some(last) = outcomes.iter().filter_map(|o| o.as_ref().ok()).map(|o| o.last_position).max() {
                        self.head.send_replace(last);
                    }
                    // Replies go out only after the head moved, so whoever
                    // is told "committed" also sees it in the head.
                    for (request, outcome) in batch.drain(..).zip(outcomes) {
                        // The appender may have given up waiting; its events are committed all the same.
                        let _ = request.reply.send(outcome);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, requests = batch.len(), "event store batch rolled back");
                    for request in batch.drain(..) {
                        let _ = request.reply.send(Err(StoreError::Unavailable(error.to_string())));
                    }
                }
            }
        }
    }
}

/// Commits `batch` in one transaction. The outer error means nothing was
/// committed; inner errors are conflicts of single requests.
fn commit(conn: &mut Connection, batch: &[AppendRequest]) -> rusqlite::Result<Vec<Result<AppendOutcome, StoreError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let recorded_at = format_time(&Utc::now());
    let mut outcomes = Vec::with_capacity(batch.len());
    // Versions left by earlier requests of this batch. The transaction would
    // show them in `streams` as well; the map saves the lookup.
    let mut versions: HashMap<&str, u64> = HashMap::new();
    {
        let mut select_version = tx.prepare_cached(SELECT_STREAM_VERSION)?;
        let mut insert_event = tx.prepare_cached(INSERT_EVENT)?;
        let mut upsert_version = tx.prepare_cached(UPSERT_STREAM_VERSION)?;
        for request in batch {
            let stream_id = request.stream_id.as_str();
            let actual = match versions.get(stream_id) {
                Some(&version) => version,
                None => select_version
                    .query_row([stream_id], |row| row.get::<_, i64>(0))
                    .optional()?
                    .map_or(0, |version| u64::try_from(version).unwrap_or(0)),
            };
            if !request.expected.admits(actual) {
                outcomes.push(Err(StoreError::Conflict {
                    stream_id: request.stream_id.clone(),
                    expected: request.expected,
                    actual,
                }));
                continue;
            }
            let mut version = actual;
            let mut last_position = 0;
            for event in &request.events {
                version += 1;
                insert_event.execute(params![
                    stream_id,
                    version as i64,
                    event.event_id,
                    request.tenant_id,
                    event.event_type,
                    event.schema_version,
                    event.occurred_at,
                    recorded_at,
                    event.correlation_id,
                    event.causation_id,
                    event.actor,
                    event.data,
                ])?;
                last_position = tx.last_insert_rowid();
            }
            upsert_version.execute(params![stream_id, version as i64])?;
            versions.insert(stream_id, version);
            outcomes.push(Ok(AppendOutcome { version, last_position: u64::try_from(last_position).unwrap_or(0) }));
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
