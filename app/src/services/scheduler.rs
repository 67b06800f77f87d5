//! The in-process scheduler (SPEC 6.3) of the local runtime: on every tick
//! it reads the application clock, so a test that moves a manual clock
//! moves the schedule with it, and runs what is due:
//!
//! - the monthly invoicer, once the month has turned (for the month that
//!   ended; issuing is idempotent, so a restart may safely run it again);
//! - dunning mails for failed payments, each on its day;
//! - notices of usage at 80 % and 100 % of the plan's limit.
//!
//! The 24h window closer keeps its own faster tick (see `window_closer`).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parley_domain::billing::Month;

use crate::error::AppError;
use crate::ops::Ops;

/// What the scheduler last did, so each task runs once per period.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The last month invoiced.
    pub invoiced: Option<Month>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub invoices_issued: usize,
    pub dunning_mails: usize,
    pub usage_notices: usize,
}

impl Ops {
    /// Runs every task due at `now`; `state` remembers what already ran.
    pub async fn run_schedule(&self, state: &mut ScheduleState, now: DateTime<Utc>) -> Result<PassReport, AppError> {
        let mut report = PassReport::default();
        let last_month = Month::of(now).previous();
        if state.invoiced.is_none_or(|m| m < last_month) {
            report.invoices_issued = self.issue_invoices(last_month).await?;
            state.invoiced = Some(last_month);
        }
        report.dunning_mails = self.send_dunning_mails().await?;
        report.usage_notices = self.send_usage_notices().await?;
        Ok(report)
    }
}

/// Runs the scheduler every `ops.settings.scheduler_interval` until `shutdown` resolves.
pub async fn run_scheduler(ops: Arc<Ops>, shutdown: impl Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(ops.settings.scheduler_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = ScheduleState::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                let now = ops.app.clock.now();
                match ops.run_schedule(&mut state, now).await {
                    Ok(r) if r == PassReport::default() => {}
                    Ok(r) => tracing::info!(
                        invoices = r.invoices_issued, dunning = r.dunning_mails, usage = r.usage_notices, "scheduled work done"
                    ),
                    Err(e) => tracing::error!(error = %e, "scheduled work failed; retrying on the next tick"),
                }
            }
        }
    }
}
