//! The timed run: connections, each in its own loop, share one queue of request indices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::report::{Failure, Report, Tally};
use crate::requests::{Plan, RequestSource};
use crate::target::Target;
use crate::webhook::{RunIds, WebhookFactory, MAX_CONVERSATIONS};

/// Pause before reconnecting after a failed connect, so a server that is down is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    pub app_secret: Vec<u8>,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub ids: RunIds,
    /// Messages to send in all.
    pub messages: u64,
    /// Distinct contacts the messages cycle over.
    pub conversations: u32,
    /// Keep-alive connections, each sending one request at a time.
    pub connections: usize,
    /// Messages per webhook body.
    pub per_webhook: u64,
    /// No new request starts after this long.
    pub max_duration: Duration,
    /// How long requests still in flight at the deadline may take to finish; unfinished ones
    /// count as timed out.
    pub grace: Duration,
}

/// A configuration that cannot run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RunError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("at most {MAX_CONVERSATIONS} conversations are supported, not {0}")]
    TooManyConversations(u32),
}

impl LoadConfig {
    fn validate(&self) -> Result<(), RunError> {
        for (name, value) in [
            ("messages", self.messages),
            ("conversations", u64::from(self.conversations)),
            ("connections", self.connections as u64),
            ("per-webhook", self.per_webhook),
        ] {
            if value == 0 {
                return Err(RunError::Zero(name));
            }
        }
        if self.conversations > MAX_CONVERSATIONS {
            return Err(RunError::TooManyConversations(self.conversations));
        }
        Ok(())
    }
}

struct Shared {
    target: Target,
    requests: RequestSource,
    next: AtomicU64,
    deadline: Instant,
    hard_stop: Instant,
}

/// Runs the load and reports on it. Bodies are built and connections opened before the clock
/// starts; the run ends when every message was sent or at the deadline, whichever comes first.
pub async fn run(config: LoadConfig) -> Result<Report, RunError> {
    config.validate()?;
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let factory = WebhookFactory {
        ids: config.ids.clone(),
        waba_id: config.waba_id.clone(),
        phone_number_id: config.phone_number_id.clone(),
        display_phone_number: config.display_phone_number.clone(),
        conversations: config.conversations,
        timestamp,
    };
    let plan = Plan { messages: config.messages, per_webhook: config.per_webhook };
    let requests = RequestSource::new(plan, factory, config.app_secret.clone());

    // Every connection opens, then all start together with the clock.
    let barrier = Arc::new(Barrier::new(config.connections + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Arc<Shared>>);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.connections {
        let target = config.target.clone();
        let barrier = Arc::clone(&barrier);
        let mut start_rx = start_rx.clone();
        workers.spawn(async move {
            let connection = Connection::open(&target).await.ok();
            barrier.wait().await;
            let shared = match start_rx.wait_for(Option::is_some).await {
                Ok(shared) => shared.clone(),
                Err(_) => None,
            };
            match shared {
                Some(shared) => connection_loop(&shared, connection).await,
                None => Tally::default(),
            }
        });
    }
    barrier.wait().await;
    let started = Instant::now();
    let deadline = started + config.max_duration;
    let shared = Arc::new(Shared {
        target: config.target,
        requests,
        next: AtomicU64::new(0),
        deadline,
        hard_stop: deadline + config.grace,
    });
    // The receivers are all alive until the workers end, so this cannot fail.
    let _ = start_tx.send(Some(shared));

    let mut tally = Tally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(worker) => tally.merge(worker),
            // A connection loop that panicked lost its counts: report it as a failed request
            // rather than hide it.
            Err(_) => tally.failed(0, Failure::Io),
        }
    }
    Ok(Report::new(config.ids.run_id, config.ids.wa_id_prefix, tally, started.elapsed()))
}

/// Sends requests one after another on one connection until the work or the time runs out.
async fn connection_loop(shared: &Shared, mut connection: Option<Connection>) -> Tally {
    let mut tally = Tally::default();
    loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.requests.len() {
            break;
        }
        let request = shared.requests.get(index);

        if !connection.as_ref().is_some_and(Connection::is_usable) {
            connection = match Connection::open(&shared.target).await {
                Ok(opened) => Some(opened),
                Err(failure) => {
                    tally.failed(request.messages, failure);
                    tokio::time::sleep_until(shared.deadline.min(Instant::now() + RECONNECT_PAUSE)).await;
                    continue;
                }
            };
        }
        let Some(open) = connection.as_mut() else { continue };

        let sent_at = Instant::now();
        match tokio::time::timeout_at(shared.hard_stop, open.post(&shared.target, &request)).await {
            Ok(Ok(status)) => tally.answered(request.messages, status, sent_at.elapsed()),
            Ok(Err(failure)) => {
                tally.failed(request.messages, failure);
                connection = None;
            }
            Err(_) => {
                tally.failed(request.messages, Failure::Timeout);
                connection = None;
            }
        }
    }
    tally
}
