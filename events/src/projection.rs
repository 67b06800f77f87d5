//! Projections and the runner that feeds them from the global log.
//!
//! A projection owns a read model and a checkpoint (the global position of
//! the last event it applied). The runner reads the log after that
//! checkpoint in batches and hands each batch to the projection, which
//! applies it and moves its checkpoint in one atomic step; so a crash at any
//! point applies every event exactly once after restart, and a projection can
//! be rebuilt by forgetting everything and replaying from position zero.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::codec::CodecError;
use crate::envelope::RecordedEvent;
use crate::store::{EventStore, StoreError};

/// Why a projection could not move forward.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be decoded into the domain type.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The read model or checkpoint storage failed.
    #[error("read model storage failed: {0}")]
    ReadModel(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no projection is named {0}")]
    UnknownProjection(String),
    /// The projection panicked; the runner carries on with the others.
    #[error("projection {0} panicked")]
    Panicked(String),
}

impl ProjectionError {
    /// Wraps any failure of a read model's storage.
    pub fn read_model(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::ReadModel(error.into())
    }
}

impl From<rusqlite::Error> for ProjectionError {
    fn from(error: rusqlite::Error) -> Self {
        Self::ReadModel(Box::new(error))
    }
}

impl From<tokio::task::JoinError> for ProjectionError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::ReadModel(Box::new(error))
    }
}

/// A read model fed from the global log.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A stable name, unique among the projections of one runner.
    fn name(&self) -> &str;

    /// The global position of the last event this projection has applied (0 = none).
    async fn checkpoint(&self) -> Result<u64, ProjectionError>;

    /// Applies a batch (in position order) and moves the checkpoint to the last event's position ATOMICALLY,
    /// so that a crash mid-batch applies each event exactly once after restart.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError>;

    /// Forgets everything (read model and checkpoint) so the projection rebuilds from zero.
    async fn reset(&self) -> Result<(), ProjectionError>;
}

/// How many events one `apply` receives unless configured otherwise.
const DEFAULT_BATCH_SIZE: usize = 500;
/// How often a running projection looks at the log even without a tick, in
/// case a commit came from another process (whose ticks it cannot hear).
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The first and the longest pause before retrying a failed projection.
const DEFAULT_RETRY_MIN: Duration = Duration::from_millis(100);
const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Feeds a set of projections from one event store.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    projections: Vec<Arc<dyn Projection>>,
    settings: Settings,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    batch_size: usize,
    poll_interval: Duration,
    retry_min: Duration,
    retry_max: Duration,
    coalesce: Duration,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        f.debug_struct("ProjectionRunner").field("projections", &names).field("settings", &self.settings).finish()
    }
}

impl ProjectionRunner {
    pub fn new(store: Arc<dyn EventStore>, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self {
            store,
            projections,
            settings: Settings {
                batch_size: DEFAULT_BATCH_SIZE,
                poll_interval: DEFAULT_POLL_INTERVAL,
                retry_min: DEFAULT_RETRY_MIN,
                retry_max: DEFAULT_RETRY_MAX,
                coalesce: Duration::ZERO,
            },
        }
    }

    /// The most events handed to one `apply` (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.settings.batch_size = batch_size.max(1);
        self
    }

    /// How often `run` reads the log without having been woken by a commit.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// How long a woken follower waits for more commits before it reads the
    /// log. Under load this turns many small batches (one transaction each)
    /// into fewer, larger ones, at the price of that much read-model lag.
    pub fn with_coalesce(mut self, window: Duration) -> Self {
        self.settings.coalesce = window;
        self
    }

    /// The pause after a first failure, doubled after each further one up to `max`.
    pub fn with_retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.settings.retry_min = min;
        self.settings.retry_max = max.max(min);
        self
    }

    /// Applies everything committed up to now to every projection; returns when all are at the head.
    /// Projections catch up side by side; the first error is returned once all have stopped.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        self.catch_up_each(self.projections.iter()).await
    }

    /// Runs forever: catches up, then waits on `store.subscribe()` (and a fallback poll interval) for new events,
    /// until `shutdown` resolves. Errors are logged with tracing and retried with backoff; never panics.
    ///
    /// Each projection follows the log on a task of its own, so a failing one
    /// does not hold back the others; one that panics is restarted after the
    /// longest retry pause. On shutdown, a batch being applied is finished
    /// before `run` returns.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let (stop_tx, stop) = watch::channel(false);
        let mut followers = JoinSet::new();
        let mut serving = HashMap::new();
        for projection in &self.projections {
            let follower = self.follower(projection).follow(stop.clone(), Duration::ZERO);
            serving.insert(followers.spawn(follower).id(), Arc::clone(projection));
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(ended) = followers.join_next() => {
                    // A follower only ends by itself when it panicked: start it
                    // again after a pause, as for any other failure.
                    let Err(error) = ended else { continue };
                    let Some(projection) = serving.remove(&error.id()) else { continue };
                    tracing::error!(projection = projection.name(), %error, "projection task ended; restarting it");
                    let follower = self.follower(&projection).follow(stop.clone(), self.settings.retry_max);
                    serving.insert(followers.spawn(follower).id(), projection);
                }
            }
        }
        stop_tx.send_replace(true);
        while followers.join_next().await.is_some() {}
    }

    /// reset() + catch_up() for the named projection (or all with None).
    pub async fn rebuild(&self, name: Option<&str>) -> Result<(), ProjectionError> {
        let chosen: Vec<&Arc<dyn Projection>> = match name {
            None => self.projections.iter().collect(),
            Some(name) => {
                let found: Vec<_> = self.projections.iter().filter(|p| p.name() == name).collect();
                if found.is_empty() {
                    return Err(ProjectionError::UnknownProjection(name.to_owned()));
                }
                found
            }
        };
        for projection in &chosen {
            projection.reset().await?;
        }
        self.catch_up_each(chosen.into_iter()).await
    }

    /// Lag per projection: head position minus checkpoint.
    pub async fn lag(&self) -> Result<Vec<(String, u64)>, ProjectionError> {
        let head = self.store.head_position().await?;
        let mut lags = Vec::with_capacity(self.projections.len());
        for projection in &self.projections {
            let checkpoint = projection.checkpoint().await?;
            lags.push((projection.name().to_owned(), head.saturating_sub(checkpoint)));
        }
        Ok(lags)
    }

    fn follower(&self, projection: &Arc<dyn Projection>) -> Follower {
        Follower { store: Arc::clone(&self.store), projection: Arc::clone(projection), settings: self.settings }
    }

    async fn catch_up_each<'a>(
        &self,
        projections: impl Iterator<Item = &'a Arc<dyn Projection>>,
    ) -> Result<(), ProjectionError> {
        let mut tasks = JoinSet::new();
        let mut names = HashMap::new();
        for projection in projections {
            let follower = self.follower(projection);
            names.insert(tasks.spawn(async move { follower.catch_up(None).await }).id(), projection.name().to_owned());
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let result = match done {
                Ok(result) => result,
                Err(error) => Err(ProjectionError::Panicked(names.remove(&error.id()).unwrap_or_default())),
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One projection's connection to the log, as run on its own task.
struct Follower {
    store: Arc<dyn EventStore>,
    projection: Arc<dyn Projection>,
    settings: Settings,
}

/// Whether `run` asked to stop, or is gone.
fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleeps for `duration` unless told to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = stop.changed() => {}
    }
}

impl Follower {
    /// Applies batches until the projection reaches the head as it was when
    /// called (later commits are the next round's), or until `stop` says so.
    async fn catch_up(&self, stop: Option<&watch::Receiver<bool>>) -> Result<(), ProjectionError> {
        let target = self.store.head_position().await?;
        let mut checkpoint = self.projection.checkpoint().await?;
        while checkpoint < target && !stop.is_some_and(is_stopped) {
            let events = self.store.read_all(checkpoint, self.settings.batch_size).await?;
            // Archived or otherwise missing positions can leave the log short of the head.
            let Some(last) = events.last().map(|e| e.global_position) else { break };
            self.projection.apply(&events).await?;
            checkpoint = last;
        }
        Ok(())
    }

    /// Follows the log until `stop`, starting after `first_pause`.
    async fn follow(self, mut stop: watch::Receiver<bool>, first_pause: Duration) {
        let name = self.projection.name().to_owned();
        let mut commits = self.store.subscribe();
        let mut retry = self.settings.retry_min;
        if !first_pause.is_zero() {
            pause(&mut stop, first_pause).await;
        }
        while !is_stopped(&stop) {
            // Mark every tick so far as seen before reading, so that a commit
            // landing during the catch-up wakes the next round.
            commits.borrow_and_update();
            match self.catch_up(Some(&stop)).await {
                Ok(()) => {
                    retry = self.settings.retry_min;
                    let poll = self.settings.poll_interval;
                    tokio::select! {
                        changed = commits.changed() => {
                            // Without a sender there will be no more ticks: fall back to polling.
                            if changed.is_err() {
                                pause(&mut stop, poll).await;
                            } else if !self.settings.coalesce.is_zero() {
                                pause(&mut stop, self.settings.coalesce).await;
                            }
                        }
                        () = tokio::time::sleep(poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(projection = %name, %error, retry_in = ?retry, "projection failed; will retry");
                    pause(&mut stop, retry).await;
                    retry = (retry * 2).min(self.settings.retry_max);
                }
            }
        }
    }
}
