//! The expired-message cleanup (SPEC 6.3): outbound messages still waiting
//! in the send queue that can no longer be sent fail with a clear kind
//! (`window_closed` for a free-form message whose customer-service window
//! closed meanwhile, `expired` past the queue's time to live), so they stop
//! showing as queued and the sender never sends them late. The rules are
//! the message aggregate's (`message::expire_queued`).

use std::convert::Infallible;

use chrono::{DateTime, Duration, Utc};
use parley_domain::{ids, message};

use crate::error::AppError;
use crate::ops::Ops;
use crate::repo::{ExecuteError, Target};
use crate::sealing::Meta;

/// Queued messages looked at per pass.
const PER_PASS: usize = 1_000;
/// The actor of the cleanup's events.
pub const CLEANUP: &str = "schedule:cleanup";

impl Ops {
    /// Fails the queued messages that can no longer be sent at `now`;
    /// returns how many. Running it again fails nothing twice.
    pub async fn expire_queued_messages(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let ttl = Duration::from_std(self.settings.queued_message_ttl).map_err(AppError::internal)?;
        let mut failed = 0;
        for queued in self.app.read_models.queued_messages(PER_PASS).await? {
            let tenant_id = queued.tenant_id.as_str();
            let stream_id = ids::message_stream(tenant_id, queued.message_id);
            let state = self.app.messages.load(&stream_id).await?.state;
            let Some(conversation_id) = state.conversation_id else { continue };
            let conversation =
                self.app.conversations.load(&ids::conversation_stream(tenant_id, conversation_id)).await?.state;
            let target = Target { tenant_id, stream_id, wa_id: None };
            let done = self
                .app
                .messages
                .execute(&target, &Meta::new(CLEANUP), |m| {
                    Ok::<_, Infallible>(message::expire_queued(m, conversation.window_closes_at, ttl, now))
                })
                .await
                .map_err(|e| match e {
                    ExecuteError::Failed(e) => e,
                    ExecuteError::Rejected(never) => match never {},
                })?;
            if !done.events.is_empty() {
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Polls WhatsApp's template list of every tenant's business accounts
    /// and records the status changes (SPEC 5.5); returns how many templates
    /// changed or were imported. A tenant whose Graph call fails is skipped
    /// until the next poll.
    pub async fn poll_template_statuses(&self) -> Result<usize, AppError> {
        let mut changed = 0;
        for tenant_id in self.app.read_models.tenants().await? {
            match self.app.sync_tenant_templates(&tenant_id, TEMPLATE_POLLER).await {
                Ok(report) => changed += (report.updated + report.imported) as usize,
                Err(e) => tracing::warn!(tenant_id, error = %e, "template status poll failed"),
            }
        }
        Ok(changed)
    }
}

/// The actor of the poller's events.
pub const TEMPLATE_POLLER: &str = "schedule:template-poller";
