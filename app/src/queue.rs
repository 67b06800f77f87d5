//! The work queue port (SQS in AWS) and its local adapters.
//!
//! Semantics follow SQS standard queues, so code written against the port
//! behaves the same on both: at-least-once delivery; a received message is
//! invisible for a visibility timeout and comes back unless acknowledged;
//! `retry_later` moves it out of sight for a while (backoff); after
//! `max_receives` deliveries a message goes to the dead-letter store instead.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::blocking::BlockingConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub body: String,
    /// Identifies this delivery for `ack` and `retry_later`.
    pub receipt: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for one to arrive.
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
    /// Makes the message visible again after `delay` (it is not acknowledged).
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;
    /// Bodies of dead-lettered messages (for operators and tests).
    async fn dead_letters(&self) -> Result<Vec<String>, QueueError>;
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Waits for a send or the deadline, whichever is first.
async fn wait_for_work(notify: &Notify, wait: Duration) {
    let _ = tokio::time::timeout(wait.min(Duration::from_millis(200)), notify.notified()).await;
}

/// A durable queue in a SQLite file.
pub struct SqliteQueue {
    conn: BlockingConnection,
    notify: Notify,
    max_receives: u32,
}

impl SqliteQueue {
    pub fn open(path: &Path, max_receives: u32) -> Result<Self, QueueError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS queue_messages (
                 id INTEGER PRIMARY KEY, body TEXT NOT NULL, visible_at INTEGER NOT NULL,
                 receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT);
             CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages(visible_at);
             CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue_messages(receipt);
             CREATE TABLE IF NOT EXISTS queue_dead_letters (id INTEGER PRIMARY KEY, body TEXT NOT NULL, dead_at INTEGER NOT NULL);",
        )
        .map_err(unavailable)?;
        Ok(SqliteQueue { conn: BlockingConnection::new(conn), notify: Notify::new(), max_receives })
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        self.conn.run(f).await.map_err(unavailable)
    }

    fn receive_now(
        conn: &mut Connection,
        max: usize,
        visibility: Duration,
        max_receives: u32,
    ) -> rusqlite::Result<Vec<Delivery>> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let due: Vec<(i64, String, u32)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, body, receive_count FROM queue_messages WHERE visible_at <= ?1 ORDER BY visible_at, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, max as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(due.len());
        for (id, body, count) in due {
            if count >= max_receives {
                tx.execute("INSERT INTO queue_dead_letters(body, dead_at) VALUES (?1, ?2)", params![body, now])?;
                tx.execute("DELETE FROM queue_messages WHERE id = ?1", params![id])?;
                continue;
            }
            let receipt = Uuid::new_v4().to_string();
            tx.execute(
                "UPDATE queue_messages SET visible_at = ?1, receive_count = receive_count + 1, receipt = ?2 WHERE id = ?3",
                params![now + ms(visibility), receipt, id],
            )?;
            out.push(Delivery { body, receipt, receive_count: count + 1 });
        }
        tx.commit()?;
        Ok(out)
    }
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

#[async_trait]
impl WorkQueue for SqliteQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        let body = body.to_owned();
        self.with_conn(move |c| {
            c.execute(
                "INSERT INTO queue_messages(body, visible_at) VALUES (?1, ?2)",
                params![body, now_ms() + ms(delay)],
            )
        })
        .await?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let max_receives = self.max_receives;
            let got = self.with_conn(move |c| SqliteQueue::receive_now(c, max, visibility, max_receives)).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            wait_for_work(&self.notify, deadline - now).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.with_conn(move |c| c.execute("DELETE FROM queue_messages WHERE receipt = ?1", params![receipt])).await?;
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.with_conn(move |c| {
            c.execute(
                "UPDATE queue_messages SET visible_at = ?1 WHERE receipt = ?2",
                params![now_ms() + ms(delay), receipt],
            )
        })
        .await?;
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT body FROM queue_dead_letters ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}

/// A queue in memory, for tests and throwaway runs.
pub struct MemoryQueue {
    state: Mutex<MemoryState>,
    notify: Notify,
    max_receives: u32,
}

#[derive(Default)]
struct MemoryState {
    messages: VecDeque<MemoryMessage>,
    dead: Vec<String>,
}

struct MemoryMessage {
    body: String,
    visible_at: i64,
    receive_count: u32,
    receipt: Option<String>,
}

impl MemoryQueue {
    pub fn new(max_receives: u32) -> Self {
        MemoryQueue { state: Mutex::new(MemoryState::default()), notify: Notify::new(), max_receives }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        self.lock().messages.push_back(MemoryMessage {
            body: body.to_owned(),
            visible_at: now_ms() + ms(delay),
            receive_count: 0,
            receipt: None,
        });
        self.notify.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = {
                let mut state = self.lock();
                let now = now_ms();
                let mut out = Vec::new();
                let mut dead = Vec::new();
                state.messages.retain_mut(|m| {
                    if out.len() >= max || m.visible_at > now {
                        return true;
                    }
                    if m.receive_count >= self.max_receives {
                        dead.push(m.body.clone());
                        return false;
                    }
                    m.receive_count += 1;
                    m.visible_at = now + ms(visibility);
                    let receipt = Uuid::new_v4().to_string();
                    m.receipt = Some(receipt.clone());
                    out.push(Delivery { body: m.body.clone(), receipt, receive_count: m.receive_count });
                    true
                });
                state.dead.extend(dead);
                out
            };
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            wait_for_work(&self.notify, deadline - now).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.lock().messages.retain(|m| m.receipt.as_deref() != Some(receipt));
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let mut state = self.lock();
        if let Some(m) = state.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt)) {
            m.visible_at = now_ms() + ms(delay);
        }
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        Ok(self.lock().dead.clone())
    }
}

/// The one conformance suite every `WorkQueue` adapter passes. `make` builds
/// an empty queue whose `max_receives` is 3.
///
/// Every duration the suite asks for is a multiple of one tick: 100 ms for
/// [`run_queue_suite`]; an adapter whose service counts whole seconds (SQS)
/// runs the same checks with [`run_queue_suite_with_tick`] and a 1 s tick.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use std::collections::HashSet;
    use std::future::Future;
    use std::sync::Arc;

    const NO_WAIT: Duration = Duration::ZERO;

    pub async fn run_queue_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn WorkQueue>>,
    {
        run_queue_suite_with_tick(make, Duration::from_millis(100)).await;
    }

    pub async fn run_queue_suite_with_tick<F, Fut>(make: F, tick: Duration)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn WorkQueue>>,
    {
        let t = Tick(tick);
        delivers_and_acks(make().await, t).await;
        unacked_messages_come_back(make().await, t).await;
        delay_hides_until_due(make().await, t).await;
        retry_later_backs_off(make().await, t).await;
        dead_letters_after_max_receives(make().await, t).await;
        long_poll_wakes_on_send(make().await).await;
        concurrent_receivers_share_without_duplicates(make().await).await;
    }

    #[derive(Clone, Copy)]
    struct Tick(Duration);

    impl Tick {
        fn times(self, n: u32) -> Duration {
            self.0 * n
        }
        /// A visibility timeout long enough for the suite's own calls to run.
        fn vis(self) -> Duration {
            self.times(2)
        }
        /// Safely past a deadline of `n` ticks.
        fn past(self, n: u32) -> Duration {
            self.times(n) + self.0 / 2
        }
    }

    async fn delivers_and_acks(q: Arc<dyn WorkQueue>, t: Tick) {
        q.send("a", Duration::ZERO).await.unwrap();
        q.send("b", Duration::ZERO).await.unwrap();
        let got = q.receive(10, t.vis(), NO_WAIT).await.unwrap();
        let bodies: HashSet<_> = got.iter().map(|d| d.body.as_str()).collect();
        assert_eq!(bodies, HashSet::from(["a", "b"]));
        assert!(got.iter().all(|d| d.receive_count == 1));
        for d in &got {
            q.ack(&d.receipt).await.unwrap();
        }
        tokio::time::sleep(t.past(2)).await;
        assert!(q.receive(10, t.vis(), NO_WAIT).await.unwrap().is_empty(), "acked messages never return");
    }

    async fn unacked_messages_come_back(q: Arc<dyn WorkQueue>, t: Tick) {
        q.send("x", Duration::ZERO).await.unwrap();
        let first = q.receive(1, t.vis(), NO_WAIT).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(q.receive(1, t.vis(), NO_WAIT).await.unwrap().is_empty(), "invisible while being worked on");
        tokio::time::sleep(t.past(2)).await;
        let again = q.receive(1, t.vis(), NO_WAIT).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
        q.ack(&again[0].receipt).await.unwrap();
    }

    async fn delay_hides_until_due(q: Arc<dyn WorkQueue>, t: Tick) {
        q.send("later", t.times(2)).await.unwrap();
        assert!(q.receive(1, t.vis(), NO_WAIT).await.unwrap().is_empty());
        let got = q.receive(1, t.vis(), Duration::from_secs(3) + t.times(2)).await.unwrap();
        assert_eq!(got.len(), 1, "a delayed message arrives once due");
    }

    async fn retry_later_backs_off(q: Arc<dyn WorkQueue>, t: Tick) {
        q.send("r", Duration::ZERO).await.unwrap();
        let got = q.receive(1, Duration::from_secs(30), NO_WAIT).await.unwrap();
        q.retry_later(&got[0].receipt, t.times(2)).await.unwrap();
        assert!(q.receive(1, t.vis(), NO_WAIT).await.unwrap().is_empty());
        tokio::time::sleep(t.past(2)).await;
        let again = q.receive(1, t.vis(), NO_WAIT).await.unwrap();
        assert_eq!(again.len(), 1, "visible again well before the 30 s visibility timeout");
    }

    async fn dead_letters_after_max_receives(q: Arc<dyn WorkQueue>, t: Tick) {
        q.send("poison", Duration::ZERO).await.unwrap();
        for _ in 0..3 {
            let got = q.receive(1, t.times(1), Duration::from_secs(2) + t.times(2)).await.unwrap();
            assert_eq!(got.len(), 1);
            tokio::time::sleep(t.past(1)).await;
        }
        assert!(q.receive(1, t.vis(), t.times(1)).await.unwrap().is_empty());
        assert_eq!(q.dead_letters().await.unwrap(), vec!["poison".to_string()]);
    }

    async fn long_poll_wakes_on_send(q: Arc<dyn WorkQueue>) {
        let receiver = {
            let q = q.clone();
            tokio::spawn(async move { q.receive(1, Duration::from_secs(5), Duration::from_secs(5)).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        q.send("wake", Duration::ZERO).await.unwrap();
        let got = receiver.await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    async fn concurrent_receivers_share_without_duplicates(q: Arc<dyn WorkQueue>) {
        for i in 0..100 {
            q.send(&i.to_string(), Duration::ZERO).await.unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = q.receive(7, Duration::from_secs(30), Duration::ZERO).await.unwrap();
                    if got.is_empty() {
                        break seen;
                    }
                    for d in got {
                        q.ack(&d.receipt).await.unwrap();
                        seen.push(d.body);
                    }
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_by_key(|b| b.parse::<u32>().unwrap());
        assert_eq!(all, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn memory_queue_conforms() {
        conformance::run_queue_suite(|| async { Arc::new(MemoryQueue::new(3)) as Arc<dyn WorkQueue> }).await;
    }

    #[tokio::test]
    async fn sqlite_queue_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        conformance::run_queue_suite(|| {
            let path = dir.path().join(format!("q{}.db", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            async move { Arc::new(SqliteQueue::open(&path, 3).unwrap()) as Arc<dyn WorkQueue> }
        })
        .await;
    }

    #[tokio::test]
    async fn sqlite_queue_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        SqliteQueue::open(&path, 3).unwrap().send("kept", Duration::ZERO).await.unwrap();
        let q = SqliteQueue::open(&path, 3).unwrap();
        let got = q.receive(1, Duration::from_secs(1), Duration::ZERO).await.unwrap();
        assert_eq!(got[0].body, "kept");
    }
}
