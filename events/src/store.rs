//! The event store port.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::{NewEvent, RecordedEvent};

/// What the writer believes the stream's current version to be.
/// Versions count events: an empty stream has version 0, its first event version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (0 means "no stream").
    Exact(u64),
    /// No concurrency check (for streams written by a single owner).
    Any,
}

impl ExpectedVersion {
    /// Whether a stream whose current version is `actual` may be appended to.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::NoStream => actual == 0,
            Self::Exact(version) => actual == version,
            Self::Any => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream version after the append.
    pub version: u64,
    /// Global position of the last appended event.
    pub last_position: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    Conflict { stream_id: String, expected: ExpectedVersion, actual: u64 },
    #[error("nothing to append")]
    Empty,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored event is corrupt: {0}")]
    Corrupt(String),
}

/// The event store: streams with optimistic concurrency plus a global log for projections.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream_id` atomically if the stream is at `expected`.
    /// Durable when it returns `Ok`. A concurrency failure is `StoreError::Conflict`
    /// and appends nothing.
    async fn append(
        &self,
        tenant_id: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Events of one stream with `version > after_version`, in version order.
    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `max` events of the global log with `global_position > after_position`,
    /// in position order.
    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The highest global position committed so far (0 when empty).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// A receiver that ticks whenever new events are committed, so that
    /// projections and reactors wake at once instead of polling.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;

    // Archival (SPEC 6.3): whole streams that are no longer in use leave the
    // hot store once a copy is kept elsewhere, and can be put back later.

    /// Up to `limit` hot streams whose id starts with `prefix` and whose
    /// newest event occurred before `before`, sorted by id. A stream with any
    /// later event is still in use and is never listed.
    async fn dormant_streams(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Takes whole streams out of the hot store: `read_stream` and
    /// `dormant_streams` no longer see them. Each stream keeps its version,
    /// so an append with a stale expectation still conflicts; positions are
    /// never reused. The global log stops serving their events when the
    /// adapter drops them (at once, or when DynamoDB's TTL expires the
    /// items). Archiving a stream twice, or one that does not exist, is a no-op.
    async fn archive_streams(&self, stream_ids: &[String]) -> Result<(), StoreError>;

    /// Puts archived events back exactly as they were recorded (same ids,
    /// versions and positions); events the store already holds are skipped,
    /// so restoring twice changes nothing. Returns how many were put back.
    /// Restored events are not announced to subscribers: projections have
    /// already applied them once.
    async fn restore_events(&self, events: &[RecordedEvent]) -> Result<usize, StoreError>;
}

/// A shared store is a store, so code generic over `S: EventStore` also takes
/// an `Arc<dyn EventStore>` chosen at run time.
#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Arc<S> {
    async fn append(
        &self,
        tenant_id: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        (**self).append(tenant_id, stream_id, expected, events).await
    }

    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_stream(stream_id, after_version).await
    }

    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_all(after_position, max).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        (**self).head_position().await
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        (**self).subscribe()
    }

    async fn dormant_streams(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        (**self).dormant_streams(prefix, before, limit).await
    }

    async fn archive_streams(&self, stream_ids: &[String]) -> Result<(), StoreError> {
        (**self).archive_streams(stream_ids).await
    }

    async fn restore_events(&self, events: &[RecordedEvent]) -> Result<usize, StoreError> {
        (**self).restore_events(events).await
    }
}
