//! The 24h window closer (SPEC 4.1): emits `ConversationWindowExpired` for
//! every window that has closed, so read models show it without waiting for
//! a send. Idempotent: the aggregate emits the event once per window.

use std::sync::Arc;
use std::time::Duration;

use parley_domain::{conversation, ids};

use crate::app::App;
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

/// Windows handled per query of the read model.
const BATCH: usize = 500;

impl App {
    /// Expires every closed window; returns how many were expired.
    pub async fn close_expired_windows(&self) -> Result<usize, AppError> {
        let meta = Meta::new("schedule:window-closer");
        let mut expired = 0;
        loop {
            let now = self.clock.now();
            let closed = self.read_models.closed_windows(now, BATCH).await?;
            let mut progressed = 0;
            for w in &closed {
                let target = Target {
                    tenant_id: &w.tenant_id,
                    stream_id: ids::conversation_stream(&w.tenant_id, w.conversation_id),
                    wa_id: Some(&w.wa_id),
                };
                let done = self
                    .conversations
                    .execute(&target, &meta, |s| Ok::<_, AppError>(conversation::expire_window(s, now)))
                    .await?;
                progressed += done.events.len();
            }
            expired += progressed;
            // The read model catches up asynchronously: stop when this pass
            // changed nothing rather than spin on rows it has not updated yet.
            if closed.len() < BATCH || progressed == 0 {
                return Ok(expired);
            }
        }
    }
}

/// Runs the closer every `interval` until `shutdown` resolves.
pub async fn run_window_closer(
    app: Arc<App>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                match app.close_expired_windows().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "conversation windows expired"),
                    Err(e) => tracing::error!(error = %e, "window closer failed"),
                }
            }
        }
    }
}
