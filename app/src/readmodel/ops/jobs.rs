//! The job status projection and its queries.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::{from_micros, micros, parse_time, stream_entity_id, SqliteOpsReadModels};
use crate::error::AppError;
use crate::readmodel::jobs::{JobReadModel, JobView};
use crate::readmodel::{cursor, Page};
use parley_events::RecordedEvent;

pub(super) fn project(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let Some(id) = stream_entity_id(&e.stream_id) else { return Ok(()) };
    let (tenant, id, d) = (e.tenant_id.as_str(), id.to_string(), &e.data);
    let at = micros(parse_time(&d["at"]).unwrap_or(e.recorded_at));
    let update = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<(), AppError> {
        tx.prepare_cached(sql)?.execute(params![tenant, id, at, value])?;
        Ok(())
    };
    match e.event_type.as_str() {
        "JobQueued" => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO jobs(tenant_id, id, kind, status, max_attempts, requested_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?6)",
            )?
            .execute(params![
                tenant,
                id,
                d["kind"].as_str().unwrap_or_default(),
                d["max_attempts"].as_i64().unwrap_or(1),
                d["requested_by"].as_str().unwrap_or_default(),
                at
            ])?;
        }
        "JobStarted" => update(
            "UPDATE jobs SET status = 'running', progress = 0, attempts = ?4, updated_at = ?3
             WHERE tenant_id = ?1 AND id = ?2",
            &d["attempt"].as_i64().unwrap_or(0),
        )?,
        "JobProgressed" => update(
            "UPDATE jobs SET progress = ?4, updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
            &d["progress"].as_i64().unwrap_or(0),
        )?,
        "JobSucceeded" => update(
            "UPDATE jobs SET status = 'succeeded', progress = 100, artifact = ?4, error = NULL, updated_at = ?3
             WHERE tenant_id = ?1 AND id = ?2",
            &d["artifact"].as_str(),
        )?,
        "JobFailed" => {
            let status = if d["retrying"].as_bool() == Some(true) { "queued" } else { "failed" };
            tx.prepare_cached("UPDATE jobs SET status = ?4, error = ?5, updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, at, status, d["error"].as_str()])?;
        }
        _ => {}
    }
    Ok(())
}

const COLUMNS: &str =
    "id, kind, status, progress, attempts, max_attempts, artifact, error, requested_by, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<JobView> {
    Ok(JobView {
        id: r.get::<_, String>(0)?.parse().unwrap_or_default(),
        kind: r.get(1)?,
        status: r.get(2)?,
        progress: r.get::<_, i64>(3)?.clamp(0, 100) as u8,
        attempts: r.get::<_, i64>(4)?.max(0) as u32,
        max_attempts: r.get::<_, i64>(5)?.max(0) as u32,
        artifact: r.get(6)?,
        error: r.get(7)?,
        requested_by: r.get(8)?,
        created_at: from_micros(r.get(9)?),
        updated_at: from_micros(r.get(10)?),
    })
}

#[async_trait]
impl JobReadModel for SqliteOpsReadModels {
    async fn job(&self, tenant_id: &str, id: Uuid) -> Result<Option<JobView>, AppError> {
        let (tenant, id) = (tenant_id.to_owned(), id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id = ?2"))?
                .query_row(params![tenant, id], row)
                .optional()?)
        })
        .await
    }

    async fn jobs(&self, tenant_id: &str, cursor: Option<&str>, limit: usize) -> Result<Page<JobView>, AppError> {
        let tenant = tenant_id.to_owned();
        let after = cursor.map(cursor::decode).transpose()?;
        self.read(move |c| {
            let (before_at, before_id) = after.map_or((i64::MAX, String::new()), |(t, id)| (t, id.to_string()));
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1
                 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))
                 ORDER BY created_at DESC, id DESC LIMIT ?4"
            ))?;
            let mut items: Vec<JobView> = stmt
                .query_map(params![tenant, before_at, before_id, (limit + 1) as i64], row)?
                .collect::<Result<_, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|j| cursor::encode(micros(j.created_at), j.id))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }
}
