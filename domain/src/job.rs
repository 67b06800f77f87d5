//! The job aggregate (SPEC 3.6): long-running work a user waits for, such as
//! a CSV export.
//!
//! A job is queued, then runs (reporting progress 0-100) and either succeeds
//! with an optional artifact (a blob key) or fails with an error. A failed
//! attempt goes back to the queue until the job's attempt budget is spent;
//! only the last failure is final.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// The tenant's messages as a CSV file.
    MessageExport,
    /// Moving the tenant's streams past retention to blob storage (SPEC 6.3).
    ArchiveRun,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::MessageExport => "message_export",
            JobKind::ArchiveRun => "archive_run",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Succeeded and failed jobs never change again.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// The data of `JobQueued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobQueued {
    pub job_id: Uuid,
    pub kind: JobKind,
    /// Kind-specific parameters (e.g. the export's filters).
    pub params: serde_json::Value,
    /// The actor that asked for the job, e.g. `user:42` or `schedule:invoicer`.
    pub requested_by: String,
    /// Where the outcome is mailed, if anywhere.
    pub notify: Option<String>,
    pub max_attempts: u32,
    pub at: DateTime<Utc>,
}

/// A job as its events say it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Job {
    pub queued: Option<JobQueued>,
    pub status: Option<JobStatus>,
    pub progress: u8,
    /// Attempts started so far.
    pub attempts: u32,
    pub artifact: Option<String>,
    pub error: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Job {
    pub fn exists(&self) -> bool {
        self.queued.is_some()
    }

    pub fn max_attempts(&self) -> u32 {
        self.queued.as_ref().map_or(1, |q| q.max_attempts.max(1))
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::JobQueued(q) => {
                self.queued = Some(q.clone());
                self.status = Some(JobStatus::Queued);
                self.updated_at = Some(q.at);
            }
            Event::JobStarted { attempt, at } => {
                self.status = Some(JobStatus::Running);
                self.attempts = *attempt;
                self.progress = 0;
                self.updated_at = Some(*at);
            }
            Event::JobProgressed { progress, at } => {
                self.progress = (*progress).min(100);
                self.updated_at = Some(*at);
            }
            Event::JobSucceeded { artifact, at } => {
                self.status = Some(JobStatus::Succeeded);
                self.progress = 100;
                self.artifact = artifact.clone();
                self.error = None;
                self.updated_at = Some(*at);
            }
            Event::JobFailed { error, retrying, at, .. } => {
                self.status = Some(if *retrying { JobStatus::Queued } else { JobStatus::Failed });
                self.error = Some(error.clone());
                self.updated_at = Some(*at);
            }
            _ => {}
        }
        self
    }
}

/// Why a job command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefusal {
    #[error("no such job")]
    Unknown,
    #[error("the job is {0}, not {1}")]
    WrongStatus(&'static str, &'static str),
    #[error("a job needs at least one attempt")]
    NoAttempts,
}

/// Queues a new job; queuing the same job again changes nothing.
pub fn queue(state: &Job, job: JobQueued) -> Result<Vec<Event>, JobRefusal> {
    if job.max_attempts == 0 {
        return Err(JobRefusal::NoAttempts);
    }
    if state.exists() {
        return Ok(vec![]);
    }
    Ok(vec![Event::JobQueued(job)])
}

fn status_of(state: &Job) -> Result<JobStatus, JobRefusal> {
    state.status.ok_or(JobRefusal::Unknown)
}

/// Starts the next attempt of a queued job.
pub fn start(state: &Job, now: DateTime<Utc>) -> Result<Vec<Event>, JobRefusal> {
    match status_of(state)? {
        JobStatus::Queued => Ok(vec![Event::JobStarted { attempt: state.attempts + 1, at: now }]),
        other => Err(JobRefusal::WrongStatus(other.as_str(), "queued")),
    }
}

/// Records progress of a running job; progress never goes backwards, and
/// the same value twice records nothing.
pub fn progress(state: &Job, progress: u8, now: DateTime<Utc>) -> Result<Vec<Event>, JobRefusal> {
    match status_of(state)? {
        JobStatus::Running => {
            let progress = progress.min(100);
            if progress <= state.progress {
                Ok(vec![])
            } else {
                Ok(vec![Event::JobProgressed { progress, at: now }])
            }
        }
        other => Err(JobRefusal::WrongStatus(other.as_str(), "running")),
    }
}

/// Ends a running job successfully.
pub fn succeed(state: &Job, artifact: Option<String>, now: DateTime<Utc>) -> Result<Vec<Event>, JobRefusal> {
    match status_of(state)? {
        JobStatus::Running => Ok(vec![Event::JobSucceeded { artifact, at: now }]),
        other => Err(JobRefusal::WrongStatus(other.as_str(), "running")),
    }
}

/// Ends the running attempt with an error: the job goes back to the queue
/// while attempts remain, and fails for good when they are spent.
pub fn fail(state: &Job, error: &str, now: DateTime<Utc>) -> Result<Vec<Event>, JobRefusal> {
    match status_of(state)? {
        JobStatus::Running => Ok(vec![Event::JobFailed {
            attempt: state.attempts,
            error: error.to_owned(),
            retrying: state.attempts < state.max_attempts(),
            at: now,
        }]),
        other => Err(JobRefusal::WrongStatus(other.as_str(), "running")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default()
    }

    fn queued(max_attempts: u32) -> Job {
        let q = JobQueued {
            job_id: Uuid::nil(),
            kind: JobKind::MessageExport,
            params: serde_json::json!({}),
            requested_by: "user:1".into(),
            notify: None,
            max_attempts,
            at: at(0),
        };
        fold(Job::default(), queue(&Job::default(), q).unwrap())
    }

    fn fold(state: Job, events: Vec<Event>) -> Job {
        events.iter().fold(state, |s, e| s.evolve(e))
    }

    #[test]
    fn a_job_runs_reports_progress_and_succeeds() {
        let job = queued(3);
        assert_eq!(job.status, Some(JobStatus::Queued));
        let job = fold(job.clone(), start(&job, at(1)).unwrap());
        assert_eq!((job.status, job.attempts), (Some(JobStatus::Running), 1));
        let job = fold(job.clone(), progress(&job, 40, at(2)).unwrap());
        assert_eq!(job.progress, 40);
        assert!(progress(&job, 30, at(3)).unwrap().is_empty(), "progress never goes back");
        let job = fold(job.clone(), succeed(&job, Some("k".into()), at(4)).unwrap());
        assert_eq!((job.status, job.progress, job.artifact.as_deref()), (Some(JobStatus::Succeeded), 100, Some("k")));
        assert!(start(&job, at(5)).is_err());
    }

    #[test]
    fn failures_retry_until_the_attempts_are_spent() {
        let mut job = queued(2);
        job = fold(job.clone(), start(&job, at(1)).unwrap());
        job = fold(job.clone(), fail(&job, "boom", at(2)).unwrap());
        assert_eq!(job.status, Some(JobStatus::Queued), "first failure goes back to the queue");
        job = fold(job.clone(), start(&job, at(3)).unwrap());
        assert_eq!(job.attempts, 2);
        let last = fail(&job, "boom again", at(4)).unwrap();
        assert!(matches!(&last[0], Event::JobFailed { retrying: false, attempt: 2, .. }));
        job = fold(job, last);
        assert_eq!((job.status, job.error.as_deref()), (Some(JobStatus::Failed), Some("boom again")));
    }

    #[test]
    fn queuing_twice_records_once_and_zero_attempts_are_refused() {
        let job = queued(1);
        let again = JobQueued { max_attempts: 1, ..job.queued.clone().unwrap() };
        assert!(queue(&job, again.clone()).unwrap().is_empty());
        assert_eq!(queue(&Job::default(), JobQueued { max_attempts: 0, ..again }), Err(JobRefusal::NoAttempts));
        assert_eq!(start(&Job::default(), at(0)), Err(JobRefusal::Unknown));
    }
}
