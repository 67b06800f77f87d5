//! The in-process scheduler (SPEC 6.3) of the local runtime: on every tick
//! it reads the application clock, so a test that moves a manual clock
//! moves the schedule with it, and runs what is due:
//!
//! - the monthly invoicer, once the month has turned (for the month that
//!   ended; issuing is idempotent, so a restart may safely run it again);
//! - dunning mails for failed payments, each on its day;
//! - notices of usage at 80 % and 100 % of the plan's limit;
//! - once a day, an archive run per tenant (a job: see `archive`);
//! - the expired-message cleanup, on every tick;
//! - the template status poller, every `template_poll_interval`.
//!
//! The 24h window closer keeps its own faster tick (see `window_closer`).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use parley_domain::billing::Month;

use crate::error::AppError;
use crate::ops::Ops;

/// What the scheduler last did, so each task runs once per period.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The last month invoiced.
    pub invoiced: Option<Month>,
    /// The day archive runs were last queued.
    pub archived_on: Option<NaiveDate>,
    /// When the template statuses were last polled.
    pub templates_polled_at: Option<DateTime<Utc>>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub invoices_issued: usize,
    pub dunning_mails: usize,
    pub usage_notices: usize,
    pub archive_runs_queued: usize,
    pub expired_messages: usize,
    pub template_changes: usize,
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
        let today = now.date_naive();
        if state.archived_on.is_none_or(|day| day < today) {
            report.archive_runs_queued = self.queue_archive_runs(now).await?;
            state.archived_on = Some(today);
        }
        report.expired_messages = self.expire_queued_messages(now).await?;
        let poll_every =
            chrono::Duration::from_std(self.settings.template_poll_interval).unwrap_or(chrono::Duration::hours(1));
        if state.templates_polled_at.is_none_or(|at| at + poll_every <= now) {
            report.template_changes = self.poll_template_statuses().await?;
            state.templates_polled_at = Some(now);
        }
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
                        invoices = r.invoices_issued, dunning = r.dunning_mails, usage = r.usage_notices,
                        archive_runs = r.archive_runs_queued, expired = r.expired_messages,
                        template_changes = r.template_changes, "scheduled work done"
                    ),
                    Err(e) => tracing::error!(error = %e, "scheduled work failed; retrying on the next tick"),
                }
            }
        }
    }
}
