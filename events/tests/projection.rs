//! The projection runner against a projection whose read model and
//! checkpoint live in one SQLite file: events per stream, counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use parley_events::{
    EventStore, ExpectedVersion, MemoryEventStore, NewEvent, Projection, ProjectionError, ProjectionRunner,
    RecordedEvent, SqliteEventStore,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use uuid::Uuid;

const TENANT: &str = "tenant-p";
const WAIT: Duration = Duration::from_secs(5);

/// Counts events per stream. Applying a batch and moving the checkpoint is
/// one transaction. For the tests it can be told to fail (after writing part
/// of a batch) or to panic when it meets a given position.
struct StreamCounter {
    name: String,
    conn: Arc<Mutex<Connection>>,
    fail_at: AtomicU64,
    panic_at: AtomicU64,
    panicked: AtomicBool,
}

impl StreamCounter {
    fn open(path: &Path, name: &str) -> Arc<Self> {
        let conn = Connection::open(path).expect("open read model");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL);",
        )
        .expect("create read model");
        Arc::new(Self {
            name: name.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            fail_at: AtomicU64::new(0),
            panic_at: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
        })
    }

    /// The next apply that meets `position` writes the events before it, then fails.
    fn fail_once_at(&self, position: u64) {
        self.fail_at.store(position, Ordering::SeqCst);
    }

    /// The next apply that meets `position` panics (once).
    fn panic_once_at(&self, position: u64) {
        self.panic_at.store(position, Ordering::SeqCst);
    }

    /// The connection, also after a simulated panic: the transaction the
    /// panic interrupted was rolled back as it unwound.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT stream_id, n FROM counts").expect("prepare");
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    fn tamper(&self, stream_id: &str, n: u64) {
        let conn = self.conn();
        conn.execute("UPDATE counts SET n = ?2 WHERE stream_id = ?1", params![stream_id, n]).expect("tamper");
    }
}

#[async_trait]
impl Projection for StreamCounter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let conn = self.conn();
        let position: Option<u64> = conn
            .query_row("SELECT position FROM checkpoint WHERE name = ?1", [&self.name], |row| row.get(0))
            .optional()?;
        Ok(position.unwrap_or(0))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for event in events {
            if self.fail_at.compare_exchange(event.global_position, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                // Dropping the transaction rolls back what this batch wrote so far.
                return Err(ProjectionError::read_model(format!("simulated crash at {}", event.global_position)));
            }
            if self.panic_at.compare_exchange(event.global_position, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                self.panicked.store(true, Ordering::SeqCst);
                panic!("simulated bug at {}", event.global_position);
            }
            tx.execute(
                "INSERT INTO counts (stream_id, n) VALUES (?1, 1) ON CONFLICT (stream_id) DO UPDATE SET n = n + 1",
                [&event.stream_id],
            )?;
        }
        if let Some(last) = events.last() {
            tx.execute(
                "INSERT INTO checkpoint (name, position) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                params![self.name, last.global_position],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        let conn = self.conn();
        conn.execute_batch("DELETE FROM counts; DELETE FROM checkpoint;")?;
        Ok(())
    }
}

fn new_event() -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Counted".into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "test".into(),
        data: json!({}),
    }
}

/// Appends `n` single events round-robin over `streams` streams.
async fn append_events(store: &dyn EventStore, streams: usize, n: usize) {
    for i in 0..n {
        let stream = format!("s-{}", i % streams);
        store.append(TENANT, &stream, ExpectedVersion::Any, vec![new_event()]).await.expect("append");
    }
}

/// Events per stream according to the log itself.
async fn truth(store: &dyn EventStore) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for event in store.read_all(0, usize::MAX).await.expect("read_all") {
        *counts.entry(event.stream_id).or_insert(0) += 1;
    }
    counts
}

fn read_model_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("read-model.db")
}

#[tokio::test]
async fn catch_up_applies_everything_and_reports_lag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let counter = StreamCounter::open(&read_model_path(&dir), "counter");
    let runner = ProjectionRunner::new(Arc::clone(&store), vec![counter.clone()]).with_batch_size(7);

    append_events(&*store, 5, 52).await;
    assert_eq!(runner.lag().await.expect("lag"), vec![("counter".to_owned(), 52)]);
    runner.catch_up().await.expect("catch up");
    assert_eq!(counter.counts(), truth(&*store).await);
    assert_eq!(counter.checkpoint().await.expect("checkpoint"), 52);
    assert_eq!(runner.lag().await.expect("lag"), vec![("counter".to_owned(), 0)]);

    append_events(&*store, 5, 3).await;
    assert_eq!(runner.lag().await.expect("lag"), vec![("counter".to_owned(), 3)]);
    runner.catch_up().await.expect("catch up again");
    assert_eq!(counter.counts(), truth(&*store).await);
    assert_eq!(counter.counts().values().sum::<u64>(), 55);
}

#[tokio::test]
async fn a_crash_mid_batch_applies_each_event_exactly_once_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    append_events(&*store, 3, 35).await;

    {
        let counter = StreamCounter::open(&read_model_path(&dir), "counter");
        // Batches are 1..=10, 11..=20, ...: the second batch dies after writing 11, 12 and 13.
        counter.fail_once_at(14);
        let runner = ProjectionRunner::new(Arc::clone(&store), vec![counter.clone()]).with_batch_size(10);
        let result = runner.catch_up().await;
        assert!(matches!(result, Err(ProjectionError::ReadModel(_))), "{result:?}");
        assert_eq!(counter.checkpoint().await.expect("checkpoint"), 10, "the failed batch left no checkpoint");
        assert_eq!(counter.counts().values().sum::<u64>(), 10, "nor any count");
    }

    // A new process: a fresh projection over the same read model file.
    let counter = StreamCounter::open(&read_model_path(&dir), "counter");
    let runner = ProjectionRunner::new(Arc::clone(&store), vec![counter.clone()]).with_batch_size(10);
    runner.catch_up().await.expect("catch up after restart");
    assert_eq!(counter.counts(), truth(&*store).await, "every event counted once");
    assert_eq!(counter.counts().values().sum::<u64>(), 35);
    assert_eq!(counter.checkpoint().await.expect("checkpoint"), 35);
}

#[tokio::test]
async fn rebuild_gives_the_same_result_as_incremental_application() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let counter = StreamCounter::open(&dir.path().join("a.db"), "counter");
    let other = StreamCounter::open(&dir.path().join("b.db"), "other");
    let runner = ProjectionRunner::new(Arc::clone(&store), vec![counter.clone(), other.clone()]).with_batch_size(4);

    for round in 0..4 {
        append_events(&*store, 4, 5 + round).await;
        runner.catch_up().await.expect("catch up");
    }
    let incremental = counter.counts();
    assert_eq!(incremental, truth(&*store).await);

    // Damage both read models; rebuilding one must repair it and leave the other alone.
    counter.tamper("s-0", 999);
    other.tamper("s-0", 999);
    runner.rebuild(Some("counter")).await.expect("rebuild");
    assert_eq!(counter.counts(), incremental, "rebuilt from zero");
    assert_eq!(counter.checkpoint().await.expect("checkpoint"), store.head_position().await.expect("head"));
    assert_eq!(other.counts()["s-0"], 999, "only the named projection is rebuilt");

    runner.rebuild(None).await.expect("rebuild all");
    assert_eq!(other.counts(), incremental);

    let unknown = runner.rebuild(Some("nope")).await;
    assert!(matches!(unknown, Err(ProjectionError::UnknownProjection(ref name)) if name == "nope"), "{unknown:?}");
}

/// Waits until `counter` has applied everything up to `position`.
async fn wait_for_checkpoint(counter: &StreamCounter, position: u64) {
    let reached = tokio::time::timeout(WAIT, async {
        while counter.checkpoint().await.expect("checkpoint") < position {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "projection did not reach {position} within {WAIT:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wakes_on_new_appends_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteEventStore::open(&dir.path().join("events.db")).expect("open store"));
    append_events(&*store, 2, 5).await;
    let counter = StreamCounter::open(&read_model_path(&dir), "counter");
    // A poll interval far beyond the test's waits: only the store's ticks can wake the runner.
    let runner = Arc::new(
        ProjectionRunner::new(Arc::clone(&store), vec![counter.clone()])
            .with_batch_size(3)
            .with_poll_interval(Duration::from_secs(3600)),
    );
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let runner = Arc::clone(&runner);
        async move {
            runner
                .run(async {
                    let _ = stop.await;
                })
                .await
        }
    });

    wait_for_checkpoint(&counter, 5).await;
    for round in 1..=3 {
        append_events(&*store, 2, 4).await;
        wait_for_checkpoint(&counter, 5 + round * 4).await;
    }
    assert_eq!(counter.counts(), truth(&*store).await);

    shutdown.send(()).expect("runner is listening");
    tokio::time::timeout(WAIT, running).await.expect("run returns after shutdown").expect("run did not panic");
    append_events(&*store, 2, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(counter.checkpoint().await.expect("checkpoint"), 17, "nothing is applied after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_retries_failures_and_survives_panics_without_double_counting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    append_events(&*store, 3, 20).await;
    let failing = StreamCounter::open(&dir.path().join("failing.db"), "failing");
    failing.fail_once_at(6);
    let panicking = StreamCounter::open(&dir.path().join("panicking.db"), "panicking");
    panicking.panic_once_at(12);
    let healthy = StreamCounter::open(&dir.path().join("healthy.db"), "healthy");
    let runner = ProjectionRunner::new(Arc::clone(&store), vec![failing.clone(), panicking.clone(), healthy.clone()])
        .with_batch_size(4)
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(40));

    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let run = runner.run(async {
        let _ = stop.await;
    });
    let check = async {
        for counter in [&failing, &panicking, &healthy] {
            wait_for_checkpoint(counter, 20).await;
        }
        append_events(&*store, 3, 4).await;
        for counter in [&failing, &panicking, &healthy] {
            wait_for_checkpoint(counter, 24).await;
        }
        let _ = shutdown.send(());
    };
    tokio::time::timeout(WAIT * 2, async { tokio::join!(run, check) }).await.expect("run ends after shutdown");

    assert!(panicking.panicked.load(Ordering::SeqCst), "the panic really happened");
    let expected = truth(&*store).await;
    for counter in [&failing, &panicking, &healthy] {
        assert_eq!(counter.counts(), expected, "{} counted every event once", counter.name);
    }
}
