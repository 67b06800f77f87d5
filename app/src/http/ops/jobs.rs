//! `/v1/jobs` and `POST /v1/messages/export`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use parley_domain::job::JobKind;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{Json, Query};
use crate::http::problem::Problem;
use crate::ops::Ops;
use crate::readmodel::jobs::JobView;
use crate::services::export::ExportFilter;
use crate::services::jobs::NewJob;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobOut {
    pub id: Uuid,
    /// `message_export`.
    pub kind: String,
    /// queued, running, succeeded or failed.
    pub status: String,
    /// 0 to 100.
    pub progress: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    pub error: Option<String>,
    /// A link to the job's result that expires; present once it succeeded with one.
    pub download_url: Option<String>,
    pub download_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn job_out(ops: &Ops, j: JobView) -> Result<JobOut, AppError> {
    let (download_url, download_expires_at) = match &j.artifact {
        Some(key) => {
            let ttl = ops.settings.download_ttl;
            let url = ops.app.blobs.download_url(key, ttl).await.map_err(AppError::internal)?;
            (Some(url), chrono::Duration::from_std(ttl).ok().map(|d| Utc::now() + d))
        }
        None => (None, None),
    };
    Ok(JobOut {
        id: j.id,
        kind: j.kind,
        status: j.status,
        progress: j.progress,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        error: j.error,
        download_url,
        download_expires_at,
        created_at: j.created_at,
        updated_at: j.updated_at,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    pub items: Vec<JobOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListJobs {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// The tenant's jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs", params(ListJobs),
    responses((status = 200, body = JobPage), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Query(q): Query<ListJobs>,
) -> Result<axum::Json<JobPage>, AppError> {
    let page =
        ops.job_views.jobs(&caller.tenant_id, q.cursor.as_deref(), crate::http::page_limit(q.limit)?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for j in page.items {
        items.push(job_out(&ops, j).await?);
    }
    Ok(axum::Json(JobPage { items, next_cursor: page.next_cursor }))
}

/// One job: status, progress and, once it succeeded, a download link.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)),
    responses((status = 200, body = JobOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<JobOut>, AppError> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound { what: "job" })?;
    let job = ops.job_views.job(&caller.tenant_id, id).await?.ok_or(AppError::NotFound { what: "job" })?;
    Ok(axum::Json(job_out(&ops, job).await?))
}

/// The filters of an export, and where to mail the link.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub conversation_id: Option<Uuid>,
    pub number_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Who is mailed when the export is ready; by default the caller, when
    /// the caller's user id is a mail address.
    pub notify_email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobAccepted {
    pub job_id: Uuid,
    pub status: String,
}

/// Starts a CSV export of the tenant's messages; poll the job for the link.
#[utoipa::path(
    post, path = "/v1/messages/export", tag = "messages", request_body = ExportRequest,
    responses((status = 202, body = JobAccepted), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn export(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Json(body): Json<ExportRequest>,
) -> Result<impl IntoResponse, AppError> {
    caller.require(Role::Agent)?;
    let filter = ExportFilter {
        conversation_id: body.conversation_id,
        number_id: body.number_id,
        direction: body.direction,
        status: body.status,
        from: body.from,
        to: body.to,
    };
    filter.validate()?;
    let notify = match body.notify_email {
        Some(to) => {
            super::check_recipient("notify_email", &to)?;
            Some(to)
        }
        None => caller.user_id.contains('@').then(|| caller.user_id.clone()),
    };
    let job_id = ops
        .queue_job(
            &caller.tenant_id,
            NewJob { kind: JobKind::MessageExport, params: serde_json::to_value(&filter)?, requested_by: caller.actor(), notify },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{job_id}"))],
        axum::Json(JobAccepted { job_id, status: "queued".into() }),
    ))
}
