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
//! `cargo run --release -p parley-events --example store_paths -- [messages] [producers] [rounds] [current-thread] [dir]`
//!
//! Defaults: 30,000 messages, 64 producers, 3 rounds, a multi-thread
//! runtime, and the system temporary directory (a directory on tmpfs such as
//! `/dev/shm` takes the disk's flushes out of the numbers). Each phase runs
//! `rounds` times and the best figures are shown: other load on the machine
//! only makes them worse. Rates depend on that load much more than the CPU
//! time and allocations per operation do.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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

/// The system allocator, counting allocations. Each thread counts in a
/// thread-local and adds to the shared total every [`FLUSH_EVERY`]
/// allocations, so counting costs no contention; totals are short by at most
/// that much per thread.
struct Counting;

const FLUSH_EVERY: u64 = 256;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static UNFLUSHED: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller upholds `alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count_one() {
    // A thread being torn down has no counter left; its allocations go uncounted.
    let _ = UNFLUSHED.try_with(|unflushed| {
        let count = unflushed.get() + 1;
        if count == FLUSH_EVERY {
            ALLOCATIONS.fetch_add(count, Ordering::Relaxed);
            unflushed.set(0);
        } else {
            unflushed.set(count);
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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

/// What a phase cost the process: CPU time and allocations.
#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    allocations: u64,
}

impl Cost {
    fn now() -> Self {
        Self { cpu: cpu_time(), allocations: ALLOCATIONS.load(Ordering::Relaxed) }
    }

    /// One phase's measurement: `operations` done in `elapsed` since `self`.
    fn sample(self, operations: u64, elapsed: Duration) -> Sample {
        let now = Self::now();
        let per = operations.max(1) as f64;
        Sample {
            rate: rate(operations, elapsed),
            cpu: now.cpu.saturating_sub(self.cpu).as_secs_f64() * 1e6 / per,
            allocations: now.allocations.saturating_sub(self.allocations) as f64 / per,
        }
    }
}

/// Operations per second, and CPU microseconds and allocations per operation.
#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    cpu: f64,
    allocations: f64,
}

impl Sample {
    /// The best of several runs of a phase: other load on the machine only
    /// ever makes a run look worse.
    fn best(samples: &[Sample]) -> Sample {
        let mut best = Sample { rate: 0.0, cpu: f64::INFINITY, allocations: f64::INFINITY };
        for sample in samples {
            best.rate = best.rate.max(sample.rate);
            best.cpu = best.cpu.min(sample.cpu);
            best.allocations = best.allocations.min(sample.allocations);
        }
        best
    }

    fn print(&self, phase: &str, unit: &str, what: &str) {
        println!(
            "{phase:<28} {:>9.0} {unit}s/s {:>7.2} µs CPU {:>6.1} allocations per {unit}  ({what})",
            self.rate, self.cpu, self.allocations
        );
    }
}

/// The messages of `producers` tasks, dealt out in turn, each with the
/// stream name of its dedup check: built before a phase starts so that the
/// phase measures the store alone.
fn deal(messages: u64, producers: u64, tag: &str) -> Vec<Vec<(String, Vec<NewEvent>)>> {
    let mut dealt: Vec<Vec<_>> = (0..producers).map(|_| Vec::new()).collect();
    for n in 0..messages {
        dealt[(n % producers) as usize].push((format!("inbound-{tag}-{n}"), message(n)));
    }
    dealt
}

/// Each of `producers` tasks appends its messages to its own stream (after
/// a dedup read when `dedup` is set). Returns the elapsed time.
async fn produce(
    store: &Arc<SqliteEventStore>,
    dealt: Vec<Vec<(String, Vec<NewEvent>)>>,
    dedup: bool,
    tag: &str,
) -> Result<Duration, Error> {
    let started = Instant::now();
    let tasks: Vec<_> = dealt
        .into_iter()
        .enumerate()
        .map(|(task, messages)| {
            let store = Arc::clone(store);
            let stream = format!("conversation-{tag}-{task}");
            tokio::spawn(async move {
                let mut version = 0;
                for (inbound, events) in messages {
                    if dedup && !store.read_stream(&inbound, 0).await?.is_empty() {
                        return Err::<(), Error>("a fresh message id was already seen".into());
                    }
                    version =
                        store.append("tenant-bench", &stream, ExpectedVersion::Exact(version), events).await?.version;
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// `CONSUMERS` tasks each read `(from, to]` in batches.
async fn read_range(store: &Arc<SqliteEventStore>, from: u64, to: u64) -> Result<Sample, Error> {
    let cost = Cost::now();
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
    Ok(cost.sample(read, started.elapsed()))
}

/// `producers` tasks each do point reads of one kind: of streams that do
/// not exist, or of the last event of the task's stream (from the first
/// append round). `round` keeps the names of missing streams apart.
async fn point_reads(
    store: &Arc<SqliteEventStore>,
    producers: u64,
    existing: bool,
    round: u32,
) -> Result<Sample, Error> {
    let mut work = Vec::new();
    for task in 0..producers {
        let stream = format!("conversation-append0-{task}");
        let version = store.read_stream(&stream, 0).await?.len() as u64;
        let missing: Vec<String> =
            (0..POINT_READS_PER_TASK).map(|n| format!("inbound-missing{round}-{task}-{n}")).collect();
        work.push((stream, version, missing));
    }
    let cost = Cost::now();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(stream, version, missing)| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                for missing in &missing {
                    if existing {
                        let events = store.read_stream(&stream, version - 1).await?;
                        if events.len() != 1 {
                            return Err::<(), Error>("expected the stream's last event".into());
                        }
                    } else if !store.read_stream(missing, 0).await?.is_empty() {
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
    Ok(cost.sample(producers * POINT_READS_PER_TASK as u64, started.elapsed()))
}

/// A projection that only counts, with its checkpoint in memory.
struct Tally {
    name: String,
    checkpoint: AtomicU64,
    applied: AtomicU64,
}

#[async_trait]
impl Projection for Tally {
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

async fn run(messages: u64, producers: u64, rounds: u32, parent: PathBuf) -> Result<(), Error> {
    let dir = tempfile::tempdir_in(parent)?;
    let store = Arc::new(SqliteEventStore::open(&dir.path().join("events.db"))?);
    println!("best of {rounds} rounds; {messages} messages from {producers} producers per round");

    let mut samples = Vec::new();
    for round in 0..rounds {
        let tag = format!("append{round}");
        let dealt = deal(messages, producers, &tag);
        let cost = Cost::now();
        let elapsed = produce(&store, dealt, false, &tag).await?;
        samples.push(cost.sample(messages, elapsed));
    }
    let head = store.head_position().await?;
    Sample::best(&samples).print("append", "message", &format!("{head} events in the log"));

    let newest = (0..rounds).map(|_| read_range(&store, head.saturating_sub(TAIL), head));
    Sample::best(&in_turn(newest).await?).print(
        "read_all newest",
        "event",
        &format!("{TAIL} events, {CONSUMERS} consumers"),
    );
    let oldest = (0..rounds).map(|_| read_range(&store, 0, TAIL.min(head)));
    Sample::best(&in_turn(oldest).await?).print(
        "read_all oldest",
        "event",
        &format!("{TAIL} events, {CONSUMERS} consumers"),
    );

    let missing = (0..rounds).map(|round| point_reads(&store, producers, false, round));
    Sample::best(&in_turn(missing).await?).print("read_stream missing", "read", "a stream that does not exist");
    let existing = (0..rounds).map(|round| point_reads(&store, producers, true, round));
    Sample::best(&in_turn(existing).await?).print("read_stream last event", "read", "one event of a long stream");

    // The server's shape: a dedup read and an append per message, with
    // three projections and a reactor following right behind.
    let projections: Vec<Arc<Tally>> = (0..CONSUMERS)
        .map(|i| {
            Arc::new(Tally { name: format!("p{i}"), checkpoint: AtomicU64::new(head), applied: AtomicU64::new(0) })
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
    let mut samples = Vec::new();
    for round in 0..rounds {
        let tag = format!("mixed{round}");
        let dealt = deal(messages, producers, &tag);
        let cost = Cost::now();
        let started = Instant::now();
        produce(&store, dealt, true, &tag).await?;
        let target = store.head_position().await?;
        while projections.iter().any(|p| p.checkpoint.load(Ordering::Acquire) < target) {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("projections did not catch up".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(cost.sample(messages, started.elapsed()));
    }
    let _ = stop.send(());
    following.await?;
    let applied: u64 = projections.iter().map(|p| p.applied.load(Ordering::Relaxed)).sum();
    let what = format!("dedup read + append, {CONSUMERS} projections caught up; {applied} events applied in all");
    Sample::best(&samples).print("mixed", "message", &what);
    Ok(())
}

/// Runs measurements one after the other.
async fn in_turn<F: std::future::Future<Output = Result<Sample, Error>>>(
    runs: impl Iterator<Item = F>,
) -> Result<Vec<Sample>, Error> {
    let mut samples = Vec::new();
    for run in runs {
        samples.push(run.await?);
    }
    Ok(samples)
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30_000);
    let producers: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).max(1);
    let rounds: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3).max(1);
    let current_thread = args.next().is_some_and(|a| a == "current-thread");
    let parent = args.next().map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    };
    runtime.block_on(run(messages, producers, rounds, parent))
}
