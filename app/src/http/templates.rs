//! `/v1/templates` (SPEC 5.5).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use parley_domain::template::TemplateDraft;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::Json;
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::TemplateView;
use crate::services::templates::SyncReport;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateOut {
    pub name: String,
    pub language: String,
    pub category: String,
    /// APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
    pub status: String,
    /// Why WhatsApp rejected or paused it.
    pub reason: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    pub whatsapp_id: Option<String>,
    pub waba_id: String,
    pub updated_at: DateTime<Utc>,
}

impl From<TemplateView> for TemplateOut {
    fn from(t: TemplateView) -> Self {
        TemplateOut {
            name: t.name,
            language: t.language,
            category: t.category,
            status: t.status,
            reason: t.reason,
            components: t.components,
            whatsapp_id: t.whatsapp_id,
            waba_id: t.waba_id,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateOut>,
}

/// `POST /v1/templates`: a template in the Cloud API's shape.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub name: String,
    pub language: String,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: String,
    #[schema(value_type = Vec<Object>)]
    pub components: Vec<Value>,
    /// The business account; required only when the tenant has several.
    pub waba_id: Option<String>,
}

/// List templates.
#[utoipa::path(
    get, path = "/v1/templates", tag = "templates",
    responses((status = 200, body = TemplateList)),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<TemplateList>, AppError> {
    let items = app.list_templates(&caller).await?.into_iter().map(TemplateOut::from).collect();
    Ok(axum::Json(TemplateList { items }))
}

/// Check a template with the rules of SPEC 4.5 and the Cloud API, submit it
/// to WhatsApp for review, and record it.
#[utoipa::path(
    post, path = "/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses(
        (status = 201, body = TemplateOut),
        (status = 409, description = "Exists already", body = Problem),
        (status = 422, description = "A broken rule, with its own code and every violation", body = Problem),
        (status = 502, description = "WhatsApp refused it", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(body): Json<CreateTemplate>,
) -> Result<(StatusCode, axum::Json<TemplateOut>), AppError> {
    let draft = TemplateDraft {
        name: body.name,
        language: body.language,
        category: body.category,
        components: body.components,
    };
    let created = app.create_template(&caller, draft, body.waba_id.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Every language of one template.
#[utoipa::path(
    get, path = "/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    responses((status = 200, body = TemplateList), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<TemplateList>, AppError> {
    let items = app.template_languages(&caller, &name).await?.into_iter().map(TemplateOut::from).collect();
    Ok(axum::Json(TemplateList { items }))
}

/// Delete every language of a template, at WhatsApp and here.
#[utoipa::path(
    delete, path = "/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem), (status = 502, body = Problem)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    app.delete_template(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read every template from WhatsApp: unknown ones are imported, known ones
/// take WhatsApp's status.
#[utoipa::path(
    post, path = "/v1/templates/sync", tag = "templates",
    responses((status = 200, body = SyncReport), (status = 502, body = Problem)),
    security(("bearer" = []))
)]
pub async fn sync(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<SyncReport>, AppError> {
    Ok(axum::Json(app.sync_templates(&caller).await?))
}

/// The OpenAPI description of these routes, merged into the API's document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, delete, sync))]
pub struct TemplatesApi;
