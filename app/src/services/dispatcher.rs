//! Turns `MessageQueued` events into outbound queue jobs.
//!
//! Reading the event log (rather than enqueueing from the request) means a
//! crash between recording a message and queueing it loses nothing: the
//! reactor resumes from its checkpoint and queues it then. Its checkpoint
//! moves after the jobs are queued, so a job may be queued twice; the sender
//! is idempotent per message, so the second one finds nothing to do.

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
    if event.event_type != "MessageQueued" {
        return None;
    }
    let message_id = event.data.get("message_id")?.as_str()?.parse().ok()?;
    Some(OutboundJob::Dispatch { tenant_id: event.tenant_id.clone(), message_id })
}

pub struct DispatchReactor {
    queue: Arc<dyn WorkQueue>,
    checkpoints: Arc<SqliteCheckpoints>,
}

impl DispatchReactor {
    pub const NAME: &'static str = "outbound-dispatch";

    pub fn new(queue: Arc<dyn WorkQueue>, checkpoints: Arc<SqliteCheckpoints>) -> Self {
        DispatchReactor { queue, checkpoints }
    }
}

#[async_trait]
impl Projection for DispatchReactor {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.checkpoints.get(Self::NAME).await
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        for job in events.iter().filter_map(job_for) {
            self.queue.send(&job.to_body(), Duration::ZERO).await.map_err(ProjectionError::read_model)?;
        }
        if let Some(last) = events.last() {
            self.checkpoints.set(Self::NAME, last.global_position).await?;
        }
        Ok(())
    }

    /// Queued messages are never queued again from the start of the log:
    /// a reset only forgets the position it reached.
    async fn reset(&self) -> Result<(), ProjectionError> {
        let head = self.checkpoints.get(Self::NAME).await?;
        self.checkpoints.set(Self::NAME, head).await
    }
}
