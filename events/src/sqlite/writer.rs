//! The single writer thread of the SQLite event store and its group commit.
//!
//! Every append travels over a channel to one thread that owns the write
//! connection. The thread takes whatever requests are waiting (up to
//! [`MAX_BATCH`]) and commits them in one transaction, so one fsync pays for
//! many appends: while a commit is on its way to disk, the next batch queues.
//! Each request is checked against its stream's version as left by the
//! requests before it in the same batch; a conflicting request fails alone.
//! Once a batch is committed, its events go into the tail cache, then the
//! head moves, then the appenders hear back.
//!
//! When appenders are racing, the thread also waits a moment before a commit
//! for those it has just answered, who typically come straight back: without
//! that, N busy appenders settle into two groups that take turns, each commit
//! serving half of them. The wait is a fraction of the last commit's time
//! and ends as soon as the batch is as large as the last one.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use super::row::{format_time, uuid_text, EncodedEvent, UUID_TEXT};
use super::tail::{Committed, Tail};
use crate::store::{AppendOutcome, ExpectedVersion, StoreError};

/// The most requests committed in one transaction: large enough to soak up
/// a burst, small enough that one batch never holds the writer for long.
const MAX_BATCH: usize = 512;

/// How many appends may wait for the writer before appenders wait to send.
const QUEUE_CAPACITY: usize = 4096;

/// The wait for returning appenders is this fraction of the last commit's
/// duration: long enough for an answered task to come back, short next to
/// the fsync it saves.
const GATHER_DIVISOR: u32 = 4;
/// The longest wait for returning appenders, whatever the disk.
const MAX_GATHER: Duration = Duration::from_millis(1);

const SELECT_STREAM_VERSION: &str = "SELECT version FROM streams WHERE stream_id = ?1";
const UPSERT_STREAM_VERSION: &str = "INSERT INTO streams (stream_id, version) VALUES (?1, ?2) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";
const INSERT_EVENT: &str = "INSERT INTO events (stream_id, version, event_id, tenant_id, type, schema_version, \
     occurred_at, recorded_at, correlation_id, causation_id, actor, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// One append waiting for the writer.
#[derive(Debug)]
struct AppendRequest {
    tenant_id: String,
    stream_id: String,
    expected: ExpectedVersion,
    events: Vec<EncodedEvent>,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    /// The request's place in the bounded queue, freed when it is answered.
    _slot: OwnedSemaphorePermit,
}

impl AppendRequest {
    /// Takes the request's events once committed, completed with their
    /// stream and tenant (the last event takes the request's own strings).
    fn take_committed(&mut self) -> impl Iterator<Item = Committed> {
        let events = std::mem::take(&mut self.events);
        let (mut stream_id, mut tenant_id) = (std::mem::take(&mut self.stream_id), std::mem::take(&mut self.tenant_id));
        let last = events.len().saturating_sub(1);
        events.into_iter().enumerate().map(move |(i, mut event)| {
            if i == last {
                event.recorded.stream_id = std::mem::take(&mut stream_id);
                event.recorded.tenant_id = std::mem::take(&mut tenant_id);
            } else {
                event.recorded.stream_id.clone_from(&stream_id);
                event.recorded.tenant_id.clone_from(&tenant_id);
            }
            Committed { data_len: event.data.len(), event: event.recorded }
        })
    }
}

/// The appenders' end of the writer's queue.
#[derive(Debug)]
pub(super) struct Queue {
    sender: mpsc::Sender<AppendRequest>,
    slots: Arc<Semaphore>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("event writer stopped".into())
}

impl Queue {
    /// Hands an append to the writer and waits for its commit.
    pub async fn append(
        &self,
        tenant_id: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<EncodedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let slot = Arc::clone(&self.slots).acquire_owned().await.map_err(|_| stopped())?;
        let (reply, outcome) = oneshot::channel();
        let request = AppendRequest {
            tenant_id: tenant_id.to_owned(),
            stream_id: stream_id.to_owned(),
            expected,
            events,
            reply,
            _slot: slot,
        };
        self.sender.send(request).map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Starts the writer thread. It runs until the returned queue is dropped.
pub(super) fn spawn(
    conn: Connection,
    head: watch::Sender<u64>,
    tail: Arc<Tail>,
) -> std::io::Result<(Queue, JoinHandle<()>)> {
    let (sender, requests) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("parley-event-writer".into())
        .spawn(move || Writer { conn, requests, head, tail }.run())?;
    Ok((Queue { sender, slots: Arc::new(Semaphore::new(QUEUE_CAPACITY)) }, thread))
}

struct Writer {
    conn: Connection,
    requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<u64>,
    tail: Arc<Tail>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut gather = Duration::ZERO;
        let mut last_size = 0;
        loop {
            if batch.is_empty() {
                match self.requests.recv() {
                    Ok(request) => batch.push(request),
                    // Every queue is gone: the store was dropped.
                    Err(_) => return,
                }
            }
            self.take_waiting(&mut batch, gather, last_size);
            last_size = batch.len();
            let started = Instant::now();
            self.commit_and_reply(&mut batch);
            let took = started.elapsed();
            if let Ok(request) = self.requests.try_recv() {
                batch.push(request);
            }
            let racing = last_size > 1 || !batch.is_empty();
            gather = if racing { (took / GATHER_DIVISOR).min(MAX_GATHER) } else { Duration::ZERO };
        }
    }

    /// Adds to `batch` what is waiting, then, for up to `gather`, what
    /// arrives until the batch is as large as the last one.
    fn take_waiting(&self, batch: &mut Vec<AppendRequest>, gather: Duration, last_size: usize) {
        while batch.len() < MAX_BATCH {
            match self.requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let deadline = Instant::now() + gather;
        let target = last_size.clamp(2, MAX_BATCH);
        while batch.len() < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.requests.recv_timeout(left) {
                Ok(request) => batch.push(request),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Commits `batch` and answers (and so empties) it.
    fn commit_and_reply(&mut self, batch: &mut Vec<AppendRequest>) {
        match commit(&mut self.conn, batch) {
            Ok(outcomes) => {
                // The tail cache learns of the commit before anyone else,
                // so that readers woken by the head find it there.
                let committed = batch.iter_mut().zip(&outcomes).filter(|(_, outcome)| outcome.is_ok());
                self.tail.extend(committed.flat_map(|(request, _)| request.take_committed()));
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

/// Commits `batch` in one transaction. The outer error means nothing was
/// committed; inner errors are conflicts of single requests.
/// Each inserted event learns its version, position and recording time.
fn commit(
    conn: &mut Connection,
    batch: &mut [AppendRequest],
) -> rusqlite::Result<Vec<Result<AppendOutcome, StoreError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = Utc::now();
    let recorded_at = format_time(&now);
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
            let (mut event_id, mut correlation_id, mut causation_id) = ([0; UUID_TEXT], [0; UUID_TEXT], [0; UUID_TEXT]);
            for event in &mut request.events {
                version += 1;
                let recorded = &event.recorded;
                insert_event.execute(params![
                    stream_id,
                    version as i64,
                    uuid_text(&recorded.event_id, &mut event_id),
                    request.tenant_id,
                    recorded.event_type,
                    recorded.schema_version,
                    event.occurred_at,
                    recorded_at,
                    uuid_text(&recorded.correlation_id, &mut correlation_id),
                    recorded.causation_id.as_ref().map(|id| uuid_text(id, &mut causation_id)),
                    recorded.actor,
                    event.data,
                ])?;
                last_position = tx.last_insert_rowid();
                event.recorded.version = version;
                event.recorded.global_position = u64::try_from(last_position).unwrap_or(0);
                event.recorded.recorded_at = now;
            }
            upsert_version.execute(params![stream_id, version as i64])?;
            versions.insert(stream_id, version);
            outcomes.push(Ok(AppendOutcome { version, last_position: u64::try_from(last_position).unwrap_or(0) }));
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
