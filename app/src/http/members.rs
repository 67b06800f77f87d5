//! `/v1/members` (SPEC 3.1): the tenant's people and their roles. Owners and
//! admins invite by email, change roles and remove members; everyone reads.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Json;
use super::problem::Problem;
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    /// Absent while the invitation is open.
    pub user_id: Option<String>,
    pub email: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
    /// `active` or `invited`.
    pub status: String,
    /// When they joined, or were invited.
    pub since: DateTime<Utc>,
}

/// The tenant's members and open invitations.
#[utoipa::path(
    get, path = "/v1/members", tag = "members",
    responses((status = 200, body = Vec<MemberOut>), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<Vec<MemberOut>>, AppError> {
    let members = app.members(&caller).await?;
    Ok(axum::Json(
        members
            .into_iter()
            .map(|m| MemberOut {
                user_id: m.user_id,
                email: m.email,
                role: m.role,
                status: m.status.into(),
                since: m.since,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
}

/// Invite someone by email; they get a code to accept with.
#[utoipa::path(
    post, path = "/v1/members", tag = "members", request_body = InviteRequest,
    responses(
        (status = 202, description = "Invitation mailed"),
        (status = 403, description = "Only owners and admins invite; only owners invite owners", body = Problem),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn invite(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(req): Json<InviteRequest>,
) -> Result<StatusCode, AppError> {
    app.invite_member(&caller, &req.email, req.role).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    pub email: String,
    pub code: String,
    /// The new member's password (same policy as sign-up).
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptResponse {
    pub user_id: String,
    pub tenant_id: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
}

/// Accept an invitation with the mailed code and choose a password (no token needed).
#[utoipa::path(
    post, path = "/v1/members/accept", tag = "members", request_body = AcceptRequest,
    responses((status = 201, body = AcceptResponse), (status = 400, body = Problem), (status = 422, body = Problem))
)]
pub async fn accept(
    State(app): State<Arc<App>>,
    Json(req): Json<AcceptRequest>,
) -> Result<(StatusCode, axum::Json<AcceptResponse>), AppError> {
    let account = app.accept_invitation(&req.email, &req.code, &req.password).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AcceptResponse { user_id: account.user_id, tenant_id: account.tenant_id, role: account.role }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[schema(value_type = String, example = "admin")]
    pub role: Role,
}

/// Change a member's role (effective in their next tokens).
#[utoipa::path(
    patch, path = "/v1/members/{user_id}", tag = "members", request_body = RoleChange,
    params(("user_id" = String, Path)),
    responses(
        (status = 204, description = "Changed"),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "The last owner stays an owner", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn change_role(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(req): Json<RoleChange>,
) -> Result<StatusCode, AppError> {
    app.change_member_role(&caller, &user_id, req.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member: their account and sessions end.
#[utoipa::path(
    delete, path = "/v1/members/{user_id}", tag = "members",
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []))
)]
pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<StatusCode, AppError> {
    app.remove_member(&caller, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
