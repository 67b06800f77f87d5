//! The SQLite event store: the embedded adapter of the event store port.
//!
//! One file in WAL mode with `synchronous=FULL`: an append has reached the
//! disk when it returns. Writes go through one writer thread that commits
//! waiting appends together (group commit, see `writer`) and keeps the
//! newest committed events in memory (see `tail`), which serve the global
//! log to consumers that follow close behind; other reads use a small pool of
//! read-only connections. One process should open a given file once:
//! a second store on the same file stays correct (the version check runs
//! inside the write transaction) but its subscribers would not see the other
//! store's commits.

mod archive;
mod checkpointer;
mod reader;
mod row;
mod schema;
mod tail;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Params};
use tokio::sync::watch;

pub use self::checkpointer::WalCheckpointer;
use self::reader::ReadPool;
use self::row::{EncodedEvent, READ_ALL, READ_STREAM, READ_STREAM_PAGE};
use self::tail::Tail;
use self::writer::Queue;
use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

pub(crate) use self::schema::open_durable;

/// How many events of a stream `read_stream` reads on the calling task. Most
/// reads are a check for a stream that does not exist or a catch-up by an
/// event or two; a longer stream's remainder is read on the blocking pool.
const INLINE_STREAM_EVENTS: usize = 32;

/// The SQLite [`EventStore`] adapter.
#[derive(Debug)]
pub struct SqliteEventStore {
    /// `None` only while dropping: closing the queue stops the writer.
    queue: Option<Queue>,
    writer: Option<JoinHandle<()>>,
    _checkpointer: WalCheckpointer,
    readers: Arc<ReadPool>,
    tail: Arc<Tail>,
    head: watch::Sender<u64>,
    /// The file, for the archival operations' own connection.
    path: PathBuf,
}

impl SqliteEventStore {
    /// How many of the newest events [`open`](Self::open) keeps in memory.
    pub const DEFAULT_TAIL_CAPACITY: usize = tail::DEFAULT_CAPACITY;

    /// Opens (creating if needed) the event store in the file at `path`
    /// and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_tail_capacity(path, Self::DEFAULT_TAIL_CAPACITY)
    }

    /// Like [`open`](Self::open), keeping up to `events` of the newest
    /// committed events in memory for `read_all` (0 keeps none). The cache
    /// starts empty: events committed before opening are read from the file.
    /// It also stays within a fixed memory budget, so large events shorten it.
    pub fn open_with_tail_capacity(path: &Path, events: usize) -> Result<Self, StoreError> {
        let mut conn = open_durable(path)?;
        schema::migrate(&mut conn)?;
        let head = schema::head(&conn)?;
        let readers = Arc::new(ReadPool::open(path.to_path_buf())?);
        let head = watch::Sender::new(head);
        let tail = Arc::new(Tail::new(events));
        let (queue, writer) = writer::spawn(conn, head.clone(), Arc::clone(&tail))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the event writer: {e}")))?;
        let checkpointer = WalCheckpointer::start(path)?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            readers,
            tail,
            head,
            _checkpointer: checkpointer,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SqliteEventStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer commit the batch in hand and
        // exit; waiting for it means the write connection is closed (and
        // every accepted append answered) once drop returns.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("event writer thread panicked");
            }
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(error.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// Runs a cached statement and decodes every row it returns.
fn query_events(conn: &rusqlite::Connection, sql: &str, params: impl Params) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(row::decode(row)?);
    }
    Ok(events)
}

/// Converts a position, version or count to SQLite's integer, saturating
/// (no log is anywhere near `i64::MAX` entries).
fn sql_int<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        tenant_id: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Empty);
        }
        let queue = self.queue.as_ref().ok_or_else(|| StoreError::Unavailable("event store is closing".into()))?;
        let events = events.into_iter().map(EncodedEvent::new).collect();
        queue.append(tenant_id, stream_id, expected, events).await
    }

    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let page = sql_int(INLINE_STREAM_EVENTS);
        let mut events = self
            .readers
            .read_inline(|conn| query_events(conn, READ_STREAM_PAGE, params![stream_id, sql_int(after_version), page]))
            .await?;
        let Some(last) = events.last().filter(|_| events.len() >= INLINE_STREAM_EVENTS) else {
            return Ok(events);
        };
        // The rest, in a later read. A stream only grows at its end, so the
        // two reads together are the stream as the later one found it.
        let (stream_id, after_version) = (stream_id.to_owned(), sql_int(last.version));
        let rest =
            self.readers.read(move |conn| query_events(conn, READ_STREAM, params![stream_id, after_version])).await?;
        events.extend(rest);
        Ok(events)
    }

    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if let Some(events) = self.tail.read_after(after_position, max) {
            return Ok(events);
        }
        let (after_position, max) = (sql_int(after_position), sql_int(max));
        self.readers.read(move |conn| query_events(conn, READ_ALL, [after_position, max])).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.readers.read_inline(schema::head).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn dormant_streams(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_owned();
        self.readers.read(move |conn| archive::dormant_streams(conn, &prefix, before, limit)).await
    }

    async fn archive_streams(&self, stream_ids: &[String]) -> Result<(), StoreError> {
        if stream_ids.is_empty() {
            return Ok(());
        }
        let (path, stream_ids) = (self.path.clone(), stream_ids.to_vec());
        tokio::task::spawn_blocking(move || archive::delete_streams(&mut open_durable(&path)?, &stream_ids))
            .await
            .map_err(|e| StoreError::Unavailable(format!("archiving stopped: {e}")))??;
        // The cache may hold some of the deleted events.
        self.tail.clear();
        Ok(())
    }

    async fn restore_events(&self, events: &[RecordedEvent]) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let (path, events) = (self.path.clone(), events.to_vec());
        tokio::task::spawn_blocking(move || archive::restore(&mut open_durable(&path)?, &events))
            .await
            .map_err(|e| StoreError::Unavailable(format!("restoring stopped: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::conformance::run_event_store_suite;

    /// The suite, each case on a fresh file.
    async fn run_suite_on_fresh_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = AtomicUsize::new(0);
        run_event_store_suite(|| {
            let path = dir.path().join(format!("events-{}.db", files.fetch_add(1, Ordering::Relaxed)));
            async move { SqliteEventStore::open(&path).expect("open store") }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_event_store_suite() {
        run_suite_on_fresh_files().await;
    }

    #[tokio::test]
    async fn passes_the_event_store_suite_on_a_current_thread_runtime() {
        run_suite_on_fresh_files().await;
    }

    fn event(n: u64) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Counted".into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            correlation_id: Uuid::now_v7(),
            causation_id: Some(Uuid::now_v7()),
            actor: "test".into(),
            data: json!({ "n": n }),
        }
    }

    #[tokio::test]
    async fn commits_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let written = {
            let store = SqliteEventStore::open(&path).expect("open");
            for n in 0..3 {
                store.append("t", "s-durable", ExpectedVersion::Exact(n), vec![event(n)]).await.expect("append");
            }
            store.append("t", "s-other", ExpectedVersion::NoStream, vec![event(9)]).await.expect("append");
            store.read_all(0, 100).await.expect("read")
        };

        let store = SqliteEventStore::open(&path).expect("reopen");
        assert_eq!(store.read_all(0, 100).await.expect("read"), written);
        assert_eq!(store.head_position().await.expect("head"), 4);
        assert_eq!(*store.subscribe().borrow(), 4, "the head starts where the file left off");
        // The reopened store knows each stream's version and keeps counting positions.
        let stale = store.append("t", "s-durable", ExpectedVersion::Exact(2), vec![event(3)]).await;
        assert!(matches!(stale, Err(StoreError::Conflict { actual: 3, .. })), "{stale:?}");
        let outcome = store.append("t", "s-durable", ExpectedVersion::Exact(3), vec![event(3)]).await.expect("append");
        assert_eq!(outcome, AppendOutcome { version: 4, last_position: 5 });
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x5a; 8192]).expect("write garbage");
        let result = SqliteEventStore::open(&path);
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    }

    fn positions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.global_position).collect()
    }

    #[tokio::test]
    async fn reads_straddling_the_start_of_the_tail_cache_match_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::open_with_tail_capacity(&dir.path().join("events.db"), 4).expect("open");
        // Ten events in requests of one and two, with a refused append in between.
        for (n, stream) in ["a", "b", "a", "c", "b", "a"].into_iter().enumerate() {
            let count = if n % 2 == 0 { 2 } else { 1 };
            let batch = (0..count).map(|i| event(n as u64 * 10 + i)).collect();
            store.append("t", stream, ExpectedVersion::Any, batch).await.expect("append");
            if n == 2 {
                let refused = store.append("t", "a", ExpectedVersion::NoStream, vec![event(99)]).await;
                assert!(matches!(refused, Err(StoreError::Conflict { .. })), "{refused:?}");
            }
        }
        // Position 1 is not in the ring, so this comes from the file.
        let log = store.read_all(0, 100).await.expect("read");
        assert_eq!(positions(&log), (1..=9).collect::<Vec<_>>());
        assert!(store.tail.read_after(4, 100).is_none(), "the ring holds only the newest four");
        assert_eq!(store.tail.read_after(5, 100).as_deref(), Some(&log[5..]), "the ring holds what the file holds");

        for after in 0..=11 {
            for max in 1..=11 {
                let start = (after as usize).min(log.len());
                let expected = &log[start..(start + max).min(log.len())];
                let read = store.read_all(after, max).await.expect("read");
                assert_eq!(read, expected, "read_all({after}, {max})");
            }
        }
    }

    #[tokio::test]
    async fn a_reopened_store_reads_from_the_file_until_it_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let written = {
            let store = SqliteEventStore::open(&path).expect("open");
            for n in 0..5 {
                store.append("t", "s-reopen", ExpectedVersion::Exact(n), vec![event(n)]).await.expect("append");
            }
            store.read_all(0, 100).await.expect("read")
        };

        let store = SqliteEventStore::open(&path).expect("reopen");
        for after in 0..=5 {
            assert!(store.tail.read_after(after, 100).is_none(), "nothing cached after {after} on opening");
            assert_eq!(store.read_all(after, 100).await.expect("read"), &written[after as usize..]);
        }
        // Floats are the one kind of data whose text can parse back slightly
        // differently (the first one here does): the cache must hold what the
        // file gives back.
        let mut fresh = event(5);
        fresh.data = json!({ "off": [1.0715660391465826e-75], "tenth": 0.1, "tiny": 5e-324, "huge": f64::MAX });
        store.append("t", "s-reopen", ExpectedVersion::Exact(5), vec![fresh]).await.expect("append");
        let cached = store.tail.read_after(5, 100).expect("the new commit is cached");
        assert_eq!(store.read_all(5, 100).await.expect("read"), cached);
        assert_eq!(store.read_stream("s-reopen", 5).await.expect("read"), cached, "the file gives back the same");
        assert_eq!(
            store.read_all(0, 100).await.expect("read")[..5],
            written[..],
            "older events still come from the file"
        );
    }

    #[tokio::test]
    async fn another_writer_on_the_same_file_is_never_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let ours = SqliteEventStore::open(&path).expect("open");
        let theirs = SqliteEventStore::open(&path).expect("open again");
        ours.append("t", "ours", ExpectedVersion::Any, vec![event(1), event(2)]).await.expect("append");
        theirs.append("t", "theirs", ExpectedVersion::Any, vec![event(3)]).await.expect("append");
        ours.append("t", "ours", ExpectedVersion::Any, vec![event(4), event(5)]).await.expect("append");
        theirs.append("t", "theirs", ExpectedVersion::Any, vec![event(6)]).await.expect("append");

        // Follow the log the way projections do, from every starting point.
        for start in 0..6 {
            let (mut after, mut seen) = (start, Vec::new());
            loop {
                let events = ours.read_all(after, 100).await.expect("read");
                let Some(last) = events.last() else { break };
                after = last.global_position;
                seen.extend(positions(&events));
            }
            assert_eq!(seen, (start + 1..=6).collect::<Vec<_>>(), "following from {start}");
        }
        let streams: Vec<String> =
            ours.read_all(0, 100).await.expect("read").into_iter().map(|e| e.stream_id).collect();
        assert_eq!(streams, ["ours", "ours", "theirs", "ours", "ours", "theirs"]);
    }

    #[tokio::test]
    async fn long_streams_are_read_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::open(&dir.path().join("events.db")).expect("open");
        let total = 3 * INLINE_STREAM_EVENTS as u64 + 5;
        let mut version = 0;
        while version < total {
            let batch = (version..(version + 7).min(total)).map(event).collect();
            version =
                store.append("t", "s-long", ExpectedVersion::Exact(version), batch).await.expect("append").version;
            store.append("t", "s-other", ExpectedVersion::Any, vec![event(0)]).await.expect("append");
        }
        let page = INLINE_STREAM_EVENTS as u64;
        for after in [0, 1, page - 1, page, page + 1, 2 * page, total - page, total - 1, total, total + 3] {
            let read = store.read_stream("s-long", after).await.expect("read");
            let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
            assert_eq!(versions, (after + 1..=total).collect::<Vec<_>>(), "read_stream after {after}");
            assert!(read.iter().all(|e| e.stream_id == "s-long"));
        }
    }
}
