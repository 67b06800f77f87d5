//! Turns `MessageQueued` events into outbound queue jobs, and inbound media
//! messages (`MessageReceived` of a media type) into jobs fetching their file.
//!
//! Reading the event log (rather than enqueueing from the request) means a
//! crash between recording a message and queueing it loses nothing: the
//! reactor resumes from its checkpoint and queues it then. Its checkpoint
//! moves after the jobs are queued, so a job may be queued twice; the sender
//! is idempotent per message, so the second one finds nothing to do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parley_events::checkpoint::SqliteCheckpoints;
use parley_events::{Projection, ProjectionError, RecordedEvent};

use crate::queue::WorkQueue;
use crate::services::sender::OutboundJob;

/// The job an event calls for, if any. Shared by every runtime: locally the
/// reactor below, on AWS the stream consumer.
pub fn job_for(event: &RecordedEvent) -> Option<OutboundJob> {
    let message_id = || event.data.get("message_id")?.as_str()?.parse().ok();
    match event.event_type.as_str() {
        "MessageQueued" => {
            Some(OutboundJob::Dispatch { tenant_id: event.tenant_id.clone(), message_id: message_id()? })
        }
        // An inbound file must be fetched before WhatsApp lets its id expire.
        "MessageReceived" => {
            let kind = event.data.get("kind").and_then(serde_json::Value::as_str)?;
            if !parley_domain::media::is_media_kind(kind) {
                return None;
            }
            Some(OutboundJob::FetchMedia { tenant_id: event.tenant_id.clone(), message_id: message_id()?, attempt: 1 })
        }
        _ => None,
    }
}

pub struct DispatchReactor {
    queue: Arc<dyn WorkQueue>,
    checkpoints: Arc<SqliteCheckpoints>,
    /// The last position handled, stored or not.
    handled: AtomicU64,
    /// The last position stored.
    stored: AtomicU64,
}

/// How far the reactor may run past its stored checkpoint through events that
/// queue nothing before it stores the position anyway: reading them again after
/// a restart queues nothing, so each batch of them need not cost a durable write.
const IDLE_CHECKPOINT_EVERY: u64 = 10_000;

impl DispatchReactor {
    pub const NAME: &'static str = "outbound-dispatch";

    pub fn new(queue: Arc<dyn WorkQueue>, checkpoints: Arc<SqliteCheckpoints>) -> Self {
        DispatchReactor { queue, checkpoints, handled: AtomicU64::new(0), stored: AtomicU64::new(0) }
    }

    async fn store(&self, position: u64) -> Result<(), ProjectionError> {
        self.checkpoints.set(Self::NAME, position).await?;
        self.stored.store(position, Ordering::SeqCst);
        self.handled.fetch_max(position, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl Projection for DispatchReactor {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let stored = self.checkpoints.get(Self::NAME).await?;
        self.stored.store(stored, Ordering::SeqCst);
        Ok(self.handled.load(Ordering::SeqCst).max(stored))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else { return Ok(()) };
        let mut queued = 0;
        for job in events.iter().filter_map(job_for) {
            self.queue.send(&job.to_body(), Duration::ZERO).await.map_err(ProjectionError::read_model)?;
            queued += 1;
        }
        if queued > 0 || last.saturating_sub(self.stored.load(Ordering::SeqCst)) >= IDLE_CHECKPOINT_EVERY {
            self.store(last).await
        } else {
            self.handled.fetch_max(last, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Queued messages are never queued again from the start of the log:
    /// a reset keeps the position it reached.
    async fn reset(&self) -> Result<(), ProjectionError> {
        let reached = self.checkpoint().await?;
        self.store(reached).await
    }
}
