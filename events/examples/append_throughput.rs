//! Measures how many single-event appends per second the SQLite event store
//! commits durably: N concurrent tasks (8 by default), each appending one
//! event at a time to a stream of its own, with the expected version checked.
//!
//! `cargo run --release -p parley-events --example append_throughput -- [tasks] [seconds] [dir]`
//!
//! The database goes into a temporary directory under `dir` (default: the
//! system temporary directory), so the number reflects that disk's fsync.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parley_events::{EventStore, ExpectedVersion, NewEvent, SqliteEventStore};
use serde_json::json;
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "MessageReceived".into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "whatsapp".into(),
        data: json!({
            "wamid": format!("wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQUU{n:016}"),
            "from": "15551234567",
            "kind": "text",
            "body": "sealed:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let parent = args.next().map(PathBuf::from).unwrap_or_else(std::env::temp_dir);

    let dir = tempfile::tempdir_in(parent)?;
    let store = Arc::new(SqliteEventStore::open(&dir.path().join("events.db"))?);
    let duration = Duration::from_secs(seconds);
    let started = Instant::now();

    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let stream = format!("conversation-{task}");
                let mut latencies = Vec::new();
                let mut version = 0;
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    let outcome = store
                        .append("tenant-bench", &stream, ExpectedVersion::Exact(version), vec![event(version)])
                        .await?;
                    latencies.push(sent.elapsed());
                    version = outcome.version;
                }
                Ok::<_, parley_events::StoreError>(latencies)
            })
        })
        .collect();

    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    if latencies.is_empty() {
        return Err("no append completed".into());
    }
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let appends = latencies.len();
    println!("{tasks} tasks, {appends} appends in {:.2} s", elapsed.as_secs_f64());
    println!("throughput: {:.0} appends/s", appends as f64 / elapsed.as_secs_f64());
    println!("latency: p50 {:?}, p99 {:?}, max {:?}", percentile(0.50), percentile(0.99), latencies[appends - 1]);
    assert_eq!(store.head_position().await? as usize, appends, "every append is in the log");
    Ok(())
}
