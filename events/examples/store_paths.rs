//! Measures the SQLite event store on the paths an inbound message takes
//! through the server, one phase at a time:
//!
//! - `append`: concurrent producers, each appending messages of two or three
//!   events (2.2 on average) to a stream of its own;
//! - `read_all`: four consumers reading the newest events in batches of 500
//!   (what projections do right behind the writer), then the oldest ones;
//! - `read_stream`: point reads of streams that do not exist (a dedup check)
//!   and of the last event of an existing stream;
//! - `mixed`: producers doing a dedup read and an append per message while a
//!   projection runner with four projections follows the log.
//!
//! `cargo run --release -p parley-events --example store_paths -- [messages] [producers] [current-thread] [dir]`
//!
//! Defaults: 30,000 messages, 64 producers, a multi-thread runtime, and the
//! system temporary directory. Rates depend on what else the machine is
//! doing; the CPU time per operation less so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use parley_events::{
    EventStore, ExpectedVersion, NewEvent, Projection, ProjectionError, ProjectionRunner, RecordedEvent,
    SqliteEventStore,
};
use serde_json::json;
use uuid::Uuid;

/// Events in the tail reads: well inside the newest events.
const TAIL: u64 = 20_000;
const BATCH: usize = 500;
const CONSUMERS: usize = 4;
const POINT_READS_PER_TASK: usize = 2_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn event(n: u64, event_type: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: Some(Uuid::now_v7()),
        actor: "whatsapp".into(),
        data: json!({
            "wamid": format!("wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQUU{n:016}"),
            "from": "15551234567",
            "kind": "text",
            "timestamp": 1_700_000_000 + n,
            "body": "sealed:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
        }),
    }
}

/// How many events the messages bring, in turn: 2.2 on average.
const EVENTS_PER_MESSAGE: [usize; 5] = [3, 2, 2, 2, 2];
const EVENT_TYPES: [&str; 3] = ["MessageReceived", "ConversationTouched", "WindowOpened"];

/// The events of one inbound message.
fn message(n: u64) -> Vec<NewEvent> {
    let count = EVENTS_PER_MESSAGE[(n % EVENTS_PER_MESSAGE.len() as u64) as usize];
    EVENT_TYPES[..count].iter().map(|event_type| event(n, event_type)).collect()
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// CPU time this process has used so far (user plus system), from
/// `/proc/self/stat` in clock ticks of 10 ms; zero where that is missing.
/// On a shared machine it says more about cost than wall-clock rates do.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    // The fields after the command name (which may hold spaces) start at state, field 3.
    let Some((_, fields)) = stat.rsplit_once(") ") else { return Duration::ZERO };
    let ticks: u64 = fields.split(' ').skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Microseconds of CPU per operation since `since`.
fn cpu_per(since: Duration, operations: u64) -> f64 {
    (cpu_time().saturating_sub(since)).as_secs_f64() * 1e6 / operations.max(1) as f64
}

/// `producers` tasks share `messages` messages; each appends to its own
/// stream (after a dedup read when `dedup` is set). Returns the elapsed time.
async fn produce(
    store: &Arc<SqliteEventStore>,
    messages: u64,
    producers: u64,
    dedup: bool,
    tag: &'static str,
) -> Result<Duration, Error> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|task| {
            let (store, next) = (Arc::clone(store), Arc::clone(&next));
            let stream = format!("conversation-{tag}-{task}");
            tokio::spawn(async move {
                let mut version = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= messages {
                        return Ok::<_, Error>(());
                    }
                    if dedup {
                        let seen = store.read_stream(&format!("inbound-{tag}-{n}"), 0).await?;
                        if !seen.is_empty() {
                            return Err("a fresh message id was already seen".into());
                        }
                    }
                    version = store
                        .append("tenant-bench", &stream, ExpectedVersion::Exact(version), message(n))
                        .await?
                        .version;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// `CONSUMERS` tasks each read `(from, to]` in batches; returns events read per second.
async fn read_range(store: &Arc<SqliteEventStore>, from: u64, to: u64) -> Result<f64, Error> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let (mut after, mut read) = (from, 0u64);
                while after < to {
                    let events = store.read_all(after, BATCH).await?;
                    let Some(last) = events.last() else { return Err::<u64, Error>("log ended early".into()) };
                    after = last.global_position;
                    read += events.len() as u64;
                }
                Ok(read)
            })
        })
        .collect();
    let mut read = 0;
    for task in tasks {
        read += task.await??;
    }
    Ok(rate(read, started.elapsed()))
}

/// `producers` tasks each do point reads of one kind; returns reads per second.
async fn point_reads(store: &Arc<SqliteEventStore>, producers: u64, existing: bool) -> Result<f64, Error> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|task| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let stream = format!("conversation-append-{task}");
                let version = store.read_stream(&stream, 0).await?.len() as u64;
                for n in 0..POINT_READS_PER_TASK {
                    if existing {
                        let events = store.read_stream(&stream, version - 1).await?;
                        if events.len() != 1 {
                            return Err::<(), Error>("expected the stream's last event".into());
                        }
                    } else if !store.read_stream(&format!("inbound-missing-{task}-{n}"), 0).await?.is_empty() {
                        return Err("a missing stream has events".into());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(rate(producers * POINT_READS_PER_TASK as u64, started.elapsed()))
}

/// A projection that only counts, with its checkpoint in memory.
struct Counting {
    name: String,
    checkpoint: AtomicU64,
    applied: AtomicU64,
}

#[async_trait]
impl Projection for Counting {
    fn name(&self) -> &str {
        &self.name
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self.checkpoint.load(Ordering::Acquire))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.applied.fetch_add(events.len() as u64, Ordering::Relaxed);
        if let Some(last) = events.last() {
            self.checkpoint.store(last.global_position, Ordering::Release);
        }
        Ok(())
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        self.checkpoint.store(0, Ordering::Release);
        Ok(())
    }
}

async fn run(messages: u64, producers: u64, parent: PathBuf) -> Result<(), Error> {
    let dir = tempfile::tempdir_in(parent)?;
    let store = Arc::new(SqliteEventStore::open(&dir.path().join("events.db"))?);

    let cpu = cpu_time();
    let elapsed = produce(&store, messages, producers, false, "append").await?;
    let head = store.head_position().await?;
    println!(
        "append:      {:>9.0} messages/s {:>9.0} events/s, {:>6.1} µs CPU/message ({head} events, {producers} producers)",
        rate(messages, elapsed),
        rate(head, elapsed),
        cpu_per(cpu, messages),
    );

    let read = TAIL.min(head) * CONSUMERS as u64;
    let cpu = cpu_time();
    let tail = read_range(&store, head.saturating_sub(TAIL), head).await?;
    let tail_cpu = cpu_per(cpu, read);
    let cpu = cpu_time();
    let old = read_range(&store, 0, TAIL.min(head)).await?;
    let old_cpu = cpu_per(cpu, read);
    println!(
        "read_all:    {tail:>9.0} events/s ({tail_cpu:.2} µs CPU/event) newest {TAIL}, \
         {old:>9.0} events/s ({old_cpu:.2} µs CPU/event) oldest {TAIL}, {CONSUMERS} consumers"
    );

    let reads = producers * POINT_READS_PER_TASK as u64;
    let cpu = cpu_time();
    let missing = point_reads(&store, producers, false).await?;
    let missing_cpu = cpu_per(cpu, reads);
    let cpu = cpu_time();
    let existing = point_reads(&store, producers, true).await?;
    let existing_cpu = cpu_per(cpu, reads);
    println!(
        "read_stream: {missing:>9.0} reads/s ({missing_cpu:.1} µs CPU/read) missing stream, \
         {existing:>9.0} reads/s ({existing_cpu:.1} µs CPU/read) last event of a stream"
    );

    // The server's shape: a dedup read and an append per message, with
    // three projections and a reactor following right behind.
    let projections: Vec<Arc<Counting>> = (0..CONSUMERS)
        .map(|i| {
            Arc::new(Counting { name: format!("p{i}"), checkpoint: AtomicU64::new(head), applied: AtomicU64::new(0) })
        })
        .collect();
    let runner = ProjectionRunner::new(
        store.clone() as Arc<dyn EventStore>,
        projections.iter().map(|p| Arc::clone(p) as Arc<dyn Projection>).collect(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let following = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    let cpu = cpu_time();
    let elapsed = produce(&store, messages, producers, true, "mixed").await?;
    let target = store.head_position().await?;
    let caught_up = Instant::now();
    while projections.iter().any(|p| p.checkpoint.load(Ordering::Acquire) < target) {
        if caught_up.elapsed() > Duration::from_secs(30) {
            return Err("projections did not catch up".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = elapsed + caught_up.elapsed();
    let _ = stop.send(());
    following.await?;
    let mixed_cpu = cpu_per(cpu, messages);
    let applied: u64 = projections.iter().map(|p| p.applied.load(Ordering::Relaxed)).sum();
    println!(
        "mixed:       {:>9.0} messages/s, {mixed_cpu:>6.1} µs CPU/message, {CONSUMERS} projections caught up \
         ({applied} events applied, {:?} behind at the end)",
        rate(messages, total),
        caught_up.elapsed()
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30_000);
    let producers: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).max(1);
    let current_thread = args.next().is_some_and(|a| a == "current-thread");
    let parent = args.next().map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    };
    runtime.block_on(run(messages, producers, parent))
}
