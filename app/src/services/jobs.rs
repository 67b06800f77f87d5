//! Jobs (SPEC 3.6, 6.1): queuing them, the reactor that puts queued jobs on
//! the job queue, and the runner that executes them, retries failures while
//! attempts remain and mails the requester the outcome.
//!
//! A job is queued by recording `JobQueued`; the reactor reads the log and
//! sends the job to the queue (again after each failure that will be
//! retried, with a growing delay). A crash between the two loses nothing.
//! The runner may see a job twice: it acts only on queued jobs, and a job it
//! finds running was interrupted (its runner died), which counts as a
//! failed attempt.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parley_domain::job::{self, Job, JobKind, JobQueued, JobStatus};
use parley_domain::{ids, Event};
use parley_events::checkpoint::SqliteCheckpoints;
use parley_events::{Projection, ProjectionError, RecordedEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;
use crate::mail::Mail;
use crate::ops::Ops;
use crate::queue::WorkQueue;
use crate::repo::Target;
use crate::sealing::Meta;

/// A job's message on the job queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub tenant_id: String,
    pub job_id: Uuid,
}

/// A queued job's request.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub params: serde_json::Value,
    pub requested_by: String,
    pub notify: Option<String>,
}

/// The queue message an event calls for, and after what delay. Shared by
/// every runtime: locally the reactor below, on AWS the stream consumer.
pub fn job_message_for(event: &RecordedEvent, retry_delay: Duration) -> Option<(JobMessage, Duration)> {
    if !event.stream_id.contains("/job/") {
        return None;
    }
    let job_id = event.stream_id.rsplit('/').next()?.parse().ok()?;
    let message = JobMessage { tenant_id: event.tenant_id.clone(), job_id };
    match event.event_type.as_str() {
        "JobQueued" => Some((message, Duration::ZERO)),
        "JobFailed" if event.data["retrying"].as_bool() == Some(true) => {
            let attempt = event.data["attempt"].as_u64().unwrap_or(1).clamp(1, 16) as u32;
            Some((message, retry_delay.saturating_mul(1 << (attempt - 1))))
        }
        _ => None,
    }
}

fn target(tenant_id: &str, job_id: Uuid) -> Target<'_> {
    Target { tenant_id, stream_id: ids::job_stream(tenant_id, job_id), wa_id: None }
}

fn refused(e: job::JobRefusal) -> AppError {
    AppError::Conflict { code: "job_state", detail: e.to_string() }
}

impl Ops {
    /// Records a new job; the reactor hands it to the runner.
    pub async fn queue_job(&self, tenant_id: &str, new: NewJob) -> Result<Uuid, AppError> {
        let job_id = Uuid::now_v7();
        let queued = JobQueued {
            job_id,
            kind: new.kind,
            params: new.params,
            requested_by: new.requested_by.clone(),
            notify: new.notify,
            max_attempts: self.settings.job_max_attempts.max(1),
            at: self.app.clock.now(),
        };
        self.jobs
            .execute(&target(tenant_id, job_id), &Meta::new(new.requested_by), |s| job::queue(s, queued.clone()))
            .await
            .map_err(|e| match e {
                crate::repo::ExecuteError::Rejected(r) => refused(r),
                crate::repo::ExecuteError::Failed(e) => e,
            })?;
        Ok(job_id)
    }

    async fn job_step(
        &self,
        tenant_id: &str,
        job_id: Uuid,
        decide: impl Fn(&Job) -> Result<Vec<Event>, job::JobRefusal>,
    ) -> Result<Arc<Job>, AppError> {
        let done =
            self.jobs.execute(&target(tenant_id, job_id), &Meta::new("worker:jobs"), |s| decide(s)).await.map_err(
                |e| match e {
                    crate::repo::ExecuteError::Rejected(r) => refused(r),
                    crate::repo::ExecuteError::Failed(e) => e,
                },
            )?;
        Ok(done.state)
    }

    /// Records progress (0-100) of a running job.
    pub async fn report_progress(&self, tenant_id: &str, job_id: Uuid, progress: u8) -> Result<(), AppError> {
        let now = self.app.clock.now();
        self.job_step(tenant_id, job_id, |s| job::progress(s, progress, now)).await.map(|_| ())
    }

    /// Runs one attempt of a queued job to its end (success, retry or failure).
    pub async fn run_job(&self, tenant_id: &str, job_id: Uuid) -> Result<(), AppError> {
        let loaded = self.jobs.load(&ids::job_stream(tenant_id, job_id)).await?;
        let now = self.app.clock.now();
        match loaded.state.status {
            Some(JobStatus::Queued) => {}
            Some(JobStatus::Running) => {
                // Its runner died mid-attempt: that attempt failed.
                let state =
                    self.job_step(tenant_id, job_id, |s| job::fail(s, "the attempt was interrupted", now)).await?;
                return self.notify_outcome(tenant_id, job_id, &state).await;
            }
            // Finished or unknown: nothing to do.
            _ => return Ok(()),
        }
        let state = self.job_step(tenant_id, job_id, |s| job::start(s, now)).await?;
        let Some(queued) = state.queued.clone() else { return Ok(()) };
        let outcome = self.execute_job(tenant_id, &queued).await;
        let now = self.app.clock.now();
        let state = match outcome {
            Ok(artifact) => self.job_step(tenant_id, job_id, |s| job::succeed(s, artifact.clone(), now)).await?,
            Err(e) => {
                tracing::warn!(tenant_id, %job_id, error = %e, "job attempt failed");
                let error = e.to_string();
                self.job_step(tenant_id, job_id, |s| job::fail(s, &error, now)).await?
            }
        };
        self.notify_outcome(tenant_id, job_id, &state).await
    }

    /// Does the work of a job; returns its artifact's blob key, if any.
    async fn execute_job(&self, tenant_id: &str, queued: &JobQueued) -> Result<Option<String>, AppError> {
        match queued.kind {
            JobKind::MessageExport => self.export_messages(tenant_id, queued).await.map(Some),
            JobKind::ArchiveRun => self.run_archive(tenant_id, queued).await.map(Some),
        }
    }

    /// Mails the requester when the job has reached its end.
    async fn notify_outcome(&self, tenant_id: &str, job_id: Uuid, state: &Job) -> Result<(), AppError> {
        let Some(queued) = &state.queued else { return Ok(()) };
        let Some(to) = queued.notify.clone() else { return Ok(()) };
        let what = queued.kind.as_str().replace('_', " ");
        let mail = match state.status {
            Some(JobStatus::Succeeded) => {
                let link = match &state.artifact {
                    Some(key) => Some(
                        self.app
                            .blobs
                            .download_url(key, self.settings.download_ttl)
                            .await
                            .map_err(AppError::internal)?,
                    ),
                    None => None,
                };
                let mut text = format!("Your {what} job {job_id} (tenant {tenant_id}) has finished.\n");
                if let Some(link) = link {
                    let hours = self.settings.download_ttl.as_secs() / 3600;
                    text.push_str(&format!("\nDownload it within {hours} hours:\n{link}\n"));
                }
                Mail { to, subject: format!("Parley: your {what} is ready"), text, html: None }
            }
            Some(JobStatus::Failed) => Mail {
                to,
                subject: format!("Parley: your {what} failed"),
                text: format!(
                    "Your {what} job {job_id} (tenant {tenant_id}) failed after {} attempts:\n\n{}\n",
                    state.attempts,
                    state.error.as_deref().unwrap_or("unknown error")
                ),
                html: None,
            },
            _ => return Ok(()),
        };
        self.app.mailer.send(&mail).await.map_err(AppError::internal)?;
        Ok(())
    }
}

/// Puts queued (and retried) jobs on the job queue.
pub struct JobReactor {
    queue: Arc<dyn WorkQueue>,
    checkpoints: Arc<SqliteCheckpoints>,
    retry_delay: Duration,
    handled: AtomicU64,
}

impl JobReactor {
    pub const NAME: &'static str = "job-dispatch";

    pub fn new(queue: Arc<dyn WorkQueue>, checkpoints: Arc<SqliteCheckpoints>, retry_delay: Duration) -> Self {
        JobReactor { queue, checkpoints, retry_delay, handled: AtomicU64::new(0) }
    }
}

#[async_trait]
impl Projection for JobReactor {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let stored = self.checkpoints.get(Self::NAME).await?;
        Ok(self.handled.load(Ordering::SeqCst).max(stored))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else { return Ok(()) };
        let mut sent = false;
        for (message, delay) in events.iter().filter_map(|e| job_message_for(e, self.retry_delay)) {
            let body = serde_json::to_string(&message).map_err(ProjectionError::read_model)?;
            self.queue.send(&body, delay).await.map_err(ProjectionError::read_model)?;
            sent = true;
        }
        // Positions that queued nothing need no durable write: reading them again queues nothing.
        if sent {
            self.checkpoints.set(Self::NAME, last).await?;
        }
        self.handled.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }

    /// Jobs are never queued again from the start of the log.
    async fn reset(&self) -> Result<(), ProjectionError> {
        let reached = self.checkpoint().await?;
        self.checkpoints.set(Self::NAME, reached).await
    }
}

/// How long a received job stays invisible to other runners.
const JOB_VISIBILITY: Duration = Duration::from_secs(15 * 60);

/// Receives jobs from the queue and runs them, one at a time, until `shutdown`.
pub async fn run_job_worker(ops: Arc<Ops>, shutdown: impl Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    loop {
        let received = tokio::select! {
            _ = &mut shutdown => return,
            r = ops.job_queue.receive(1, JOB_VISIBILITY, Duration::from_secs(1)) => r,
        };
        let deliveries = match received {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "job queue unavailable");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for delivery in deliveries {
            let Ok(message) = serde_json::from_str::<JobMessage>(&delivery.body) else {
                tracing::error!(body = %delivery.body, "dropping a malformed job message");
                let _ = ops.job_queue.ack(&delivery.receipt).await;
                continue;
            };
            match ops.run_job(&message.tenant_id, message.job_id).await {
                Ok(()) => {
                    if let Err(e) = ops.job_queue.ack(&delivery.receipt).await {
                        tracing::error!(error = %e, "could not acknowledge a job");
                    }
                }
                Err(e) => {
                    tracing::error!(job_id = %message.job_id, error = %e, "job runner failed; retrying later");
                    let _ = ops.job_queue.retry_later(&delivery.receipt, Duration::from_secs(5)).await;
                }
            }
        }
    }
}
