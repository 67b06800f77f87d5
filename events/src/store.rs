//! The event store port.

use std::sync::Arc;

use async_trait::async_trait;

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
}
