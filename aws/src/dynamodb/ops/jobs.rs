//! Job rows: one per job stream, folded like the SQLite job projection.

use async_trait::async_trait;
use parley_app::error::AppError;
use parley_app::readmodel::jobs::{JobReadModel, JobView};
use parley_app::readmodel::{cursor, Page};
use parley_events::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::super::read_models::rows::{from_micros, micros};
use super::super::read_models::{before_cursor, order_key, IndexQuery, Stored};
use super::{stream_entity, DynamoOpsReadModels};

fn job_pk(tenant_id: &str, id: impl std::fmt::Display) -> String {
    format!("JOB#{tenant_id}#{id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct JobRow {
    tenant_id: String,
    id: String,
    kind: String,
    status: String,
    progress: i64,
    attempts: i64,
    max_attempts: i64,
    artifact: Option<String>,
    error: Option<String>,
    requested_by: String,
    created_at: i64,
    updated_at: i64,
}

impl Stored for JobRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        vec![("g2pk", format!("JOBS#{}", self.tenant_id)), ("g2sk", order_key(self.created_at, &self.id))]
    }
}

impl JobRow {
    /// The row after `event`; `None` while the job has not been queued.
    fn apply(row: Option<Self>, tenant_id: &str, id: &str, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        let at = d["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| micros(event.recorded_at), |t| t.timestamp_micros());
        let number = |v: &Value| v.as_i64().unwrap_or(0);
        if event.event_type == "JobQueued" {
            return Some(row.unwrap_or_else(|| JobRow {
                tenant_id: tenant_id.to_owned(),
                id: id.to_owned(),
                kind: d["kind"].as_str().unwrap_or_default().to_owned(),
                status: "queued".into(),
                progress: 0,
                attempts: 0,
                max_attempts: d["max_attempts"].as_i64().unwrap_or(1),
                artifact: None,
                error: None,
                requested_by: d["requested_by"].as_str().unwrap_or_default().to_owned(),
                created_at: at,
                updated_at: at,
            }));
        }
        let mut row = row?;
        match event.event_type.as_str() {
            "JobStarted" => {
                row.status = "running".into();
                row.progress = 0;
                row.attempts = number(&d["attempt"]);
            }
            "JobProgressed" => row.progress = number(&d["progress"]),
            "JobSucceeded" => {
                row.status = "succeeded".into();
                row.progress = 100;
                row.artifact = d["artifact"].as_str().map(str::to_owned);
                row.error = None;
            }
            "JobFailed" => {
                let retrying = d["retrying"].as_bool() == Some(true);
                row.status = if retrying { "queued" } else { "failed" }.into();
                row.error = d["error"].as_str().map(str::to_owned);
            }
            _ => return Some(row),
        }
        row.updated_at = at;
        Some(row)
    }

    fn view(&self) -> Result<JobView, AppError> {
        Ok(JobView {
            id: self.id.parse().map_err(|_| AppError::internal(format!("job row id {:?} is not a uuid", self.id)))?,
            kind: self.kind.clone(),
            status: self.status.clone(),
            progress: self.progress.clamp(0, 100) as u8,
            attempts: self.attempts.max(0) as u32,
            max_attempts: self.max_attempts.max(0) as u32,
            artifact: self.artifact.clone(),
            error: self.error.clone(),
            requested_by: self.requested_by.clone(),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

impl DynamoOpsReadModels {
    pub(super) async fn apply_jobs(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        for ((tenant_id, id), events) in by_stream(events, "/job/") {
            self.rows
                .apply_row(job_pk(&tenant_id, &id), &events, |row, e| JobRow::apply(row, &tenant_id, &id, e))
                .await?;
        }
        Ok(())
    }
}

/// The events of each stream whose id contains `marker`, grouped by
/// (tenant, entity id) in first-seen order, each group in version order.
pub(super) fn by_stream<'a>(
    events: &'a [RecordedEvent],
    marker: &str,
) -> Vec<((String, String), Vec<&'a RecordedEvent>)> {
    let mut groups: Vec<((String, String), Vec<&RecordedEvent>)> = Vec::new();
    for event in events.iter().filter(|e| e.stream_id.contains(marker)) {
        let Some(entity) = stream_entity(&event.stream_id) else { continue };
        let key = (event.tenant_id.clone(), entity.to_owned());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(event),
            None => groups.push((key, vec![event])),
        }
    }
    for (_, group) in &mut groups {
        group.sort_by_key(|e| e.version);
    }
    groups
}

#[async_trait]
impl JobReadModel for DynamoOpsReadModels {
    async fn job(&self, tenant_id: &str, id: Uuid) -> Result<Option<JobView>, AppError> {
        self.rows.get::<JobRow>(&job_pk(tenant_id, id)).await?.map(|(row, _)| row.view()).transpose()
    }

    async fn jobs(&self, tenant_id: &str, cursor: Option<&str>, limit: usize) -> Result<Page<JobView>, AppError> {
        let query = IndexQuery {
            index: "gsi2",
            partition: format!("JOBS#{tenant_id}"),
            below: before_cursor(cursor)?,
            above: None,
            forward: false,
        };
        self.rows
            .page(
                query,
                limit,
                |_: &JobRow| true,
                |row| {
                    let view = row.view()?;
                    let cursor = cursor::encode(micros(view.created_at), view.id);
                    Ok((view, cursor))
                },
            )
            .await
    }
}
