//! The SQLite event store: the embedded adapter of the event store port.
//!
//! One file in WAL mode with `synchronous=FULL`: an append has reached the
//! disk when it returns. Writes go through one writer thread that commits
//! waiting appends together (group commit, see `writer`); reads use a small
//! pool of read-only connections. One process should open a given file once:
//! a second store on the same file stays correct (the version check runs
//! inside the write transaction) but its subscribers would not see the other
//! store's commits.

mod reader;
mod row;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{params, Params};
use tokio::sync::watch;

use self::reader::ReadPool;
use self::row::{EncodedEvent, READ_ALL, READ_STREAM};
use self::writer::Queue;
use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

pub(crate) use self::schema::open_durable;

/// The SQLite [`EventStore`] adapter.
#[derive(Debug)]
pub struct SqliteEventStore {
    /// `None` only while dropping: closing the queue stops the writer.
    queue: Option<Queue>,
    writer: Option<JoinHandle<()>>,
    readers: Arc<ReadPool>,
    head: watch::Sender<u64>,
}

impl SqliteEventStore {
    /// Opens (creating if needed) the event store in the file at `path`
    /// and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open_durable(path)?;
        schema::migrate(&mut conn)?;
        let head = schema::head(&conn)?;
        let readers = Arc::new(ReadPool::open(path.to_path_buf())?);
        let head = watch::Sender::new(head);
        let (queue, writer) = writer::spawn(conn, head.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the event writer: {e}")))?;
        Ok(Self { queue: Some(queue), writer: Some(writer), readers, head })
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
        queue.append(tenant_id, stream_id, expected, events.into_iter().map(EncodedEvent::new).collect()).await
    }

    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream_id = stream_id.to_owned();
        let after_version = sql_int(after_version);
        self.readers.read(move |conn| query_events(conn, READ_STREAM, params![stream_id, after_version])).await
    }

    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let (after_position, max) = (sql_int(after_position), sql_int(max));
        self.readers.read(move |conn| query_events(conn, READ_ALL, [after_position, max])).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.readers.read(schema::head).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_event_store_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = AtomicUsize::new(0);
        run_event_store_suite(|| {
            let path = dir.path().join(format!("events-{}.db", files.fetch_add(1, Ordering::Relaxed)));
            async move { SqliteEventStore::open(&path).expect("open store") }
        })
        .await;
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
}
