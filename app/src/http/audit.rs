//! `GET /v1/audit`: the tenant's account and membership events, newest
//! first, for owners and admins.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::extract::Query;
use super::problem::Problem;
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::identity::audit::AuditEntry;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries older than this id (the last id of the previous page).
    pub before: Option<u64>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// The audit log.
#[utoipa::path(
    get, path = "/v1/audit", tag = "members", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, description = "Owners and admins only", body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntry>>, AppError> {
    caller.require(Role::Admin)?;
    let limit = super::page_limit(q.limit)?;
    Ok(axum::Json(app.audit.list(&caller.tenant_id, q.before, limit).await?))
}
