//! Everyday handling routes: `DELETE /v1/messages/{id}`,
//! `GET|PUT /v1/messages/{id}/tags`, and `POST /v1/conversations/{id}/resolve`,
//! `/assign` and `/read`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::Json;
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;

fn message_id(id: &str) -> Result<Uuid, AppError> {
    id.parse().map_err(|_| AppError::NotFound { what: "message" })
}

fn conversation_id(id: &str) -> Result<Uuid, AppError> {
    id.parse().map_err(|_| AppError::NotFound { what: "conversation" })
}

/// Delete a message: its content is redacted everywhere it is shown; the
/// recorded events stay.
#[utoipa::path(
    delete, path = "/v1/messages/{id}", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted (or already deleted)"), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn delete_message(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    app.delete_message(&caller, message_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message's tags.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// 1 to 40 letters, digits, `-`, `_`, `:` or `.` each; at most 20;
    /// stored lower-case, sorted, without duplicates.
    pub tags: Vec<String>,
}

/// A message's tags.
#[utoipa::path(
    get, path = "/v1/messages/{id}/tags", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 200, body = Tags), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_tags(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Tags>, AppError> {
    let tags = app.message_tags(&caller, message_id(&id)?).await?;
    Ok(axum::Json(Tags { tags }))
}

/// Replace a message's tags.
#[utoipa::path(
    put, path = "/v1/messages/{id}/tags", tag = "messages", params(("id" = Uuid, Path)), request_body = Tags,
    responses((status = 200, body = Tags), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn put_tags(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Tags>,
) -> Result<axum::Json<Tags>, AppError> {
    let tags = app.set_message_tags(&caller, message_id(&id)?, &body.tags).await?;
    Ok(axum::Json(Tags { tags }))
}

/// Resolve a conversation; the contact's next message reopens it.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/resolve", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Resolved (or already resolved)"), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    app.resolve_conversation(&caller, conversation_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The user id to assign the conversation to; null unassigns it.
    pub assignee: Option<String>,
}

/// Assign a conversation to a user, or unassign it.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/assign", tag = "conversations", params(("id" = Uuid, Path)),
    request_body = Assign,
    responses((status = 204, description = "Assigned"), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn assign(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Assign>,
) -> Result<StatusCode, AppError> {
    app.assign_conversation(&caller, conversation_id(&id)?, body.assignee.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MarkedRead {
    /// Whether WhatsApp was told (false when nothing was unread).
    pub reported_to_whatsapp: bool,
}

/// Mark a conversation read: its unread count drops to zero and WhatsApp
/// shows the customer that their messages were read.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/read", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = MarkedRead), (status = 404, body = Problem), (status = 502, body = Problem)),
    security(("bearer" = []))
)]
pub async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<MarkedRead>, AppError> {
    let reported = app.read_conversation(&caller, conversation_id(&id)?).await?;
    Ok(axum::Json(MarkedRead { reported_to_whatsapp: reported }))
}

/// The OpenAPI description of these routes, merged into the API's document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(delete_message, get_tags, put_tags, resolve, assign, read))]
pub struct HandlingApi;
