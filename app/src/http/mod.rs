//! The HTTP API (SPEC 5): one axum router serves it locally and inside each
//! Lambda function.

pub mod audit;
pub mod auth;
pub mod blobs;
pub mod contacts;
pub mod conversations;
pub mod extract;
pub mod handling;
pub mod media;
pub mod members;
pub mod messages;
pub mod numbers;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod templates;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::Router;
use serde::Serialize;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::error::AppError;
use problem::Problem;

/// Bodies above this size are refused with 413 before they are read whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole API.
pub fn router(app: Arc<App>) -> Router {
    let routes = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/numbers", get(numbers::list).post(numbers::register))
        .route("/v1/numbers/{id}", patch(numbers::update))
        .route("/v1/numbers/{id}/metrics", get(numbers::metrics))
        .route("/v1/messages", get(messages::list).post(messages::send))
        .route("/v1/messages/search", get(messages::search))
        .route("/v1/messages/{id}", get(messages::get).delete(handling::delete_message))
        .route("/v1/messages/{id}/tags", get(handling::get_tags).put(handling::put_tags))
        .route("/v1/messages/{id}/media", get(messages::media))
        .route("/v1/media", post(media::upload).layer(DefaultBodyLimit::max(media::MAX_UPLOAD_BYTES)))
        .route("/v1/contacts", get(contacts::list).post(contacts::create))
        .route("/v1/contacts/import", post(contacts::import))
        .route("/v1/contacts/{wa_id}", get(contacts::get).patch(contacts::update).delete(contacts::erase))
        .route("/v1/contacts/{wa_id}/export", get(contacts::export))
        .route("/v1/contacts/{wa_id}/opt-out", post(contacts::opt_out))
        .route("/v1/contacts/{wa_id}/opt-in", post(contacts::opt_in))
        .route("/v1/settings/opt-keywords", get(contacts::get_keywords).put(contacts::put_keywords))
        .route("/v1/templates", get(templates::list).post(templates::create))
        .route("/v1/templates/sync", post(templates::sync))
        .route("/v1/templates/{name}", get(templates::get).delete(templates::delete))
        .route("/v1/conversations", get(conversations::list))
        .route("/v1/conversations/{id}", get(conversations::get))
        .route("/v1/conversations/{id}/resolve", post(handling::resolve))
        .route("/v1/conversations/{id}/assign", post(handling::assign))
        .route("/v1/conversations/{id}/read", post(handling::read))
        .merge(auth::routes());
    with_edges(routes, app)
}

/// Only the WhatsApp webhook and health routes (the webhook function).
pub fn webhook_router(app: Arc<App>) -> Router {
    with_edges(Router::new(), app)
}

/// What every router serves and wraps: health, the webhook, problem+json
/// fallbacks, the body limit and request tracing.
fn with_edges(routes: Router<Arc<App>>, app: Arc<App>) -> Router {
    routes
        .route("/health", get(health))
        .route("/webhooks/whatsapp", get(webhooks::verify).post(webhooks::receive))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// Page sizes: 1 to 200, default 50.
pub fn page_limit(limit: Option<usize>) -> Result<usize, AppError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(AppError::validation("limit", "must be from 1 to 200")),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
    /// Highest position in the event log.
    pub event_log_head: u64,
}

/// Liveness and a cheap check of the event store.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health), (status = 500, body = Problem)))]
pub async fn health(State(app): State<Arc<App>>) -> Result<axum::Json<Health>, AppError> {
    let head = app.store.head_position().await?;
    Ok(axum::Json(Health { status: "ok".into(), event_log_head: head }))
}

async fn not_found() -> impl IntoResponse {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found", "no such route")
}

async fn method_not_allowed() -> impl IntoResponse {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "this route does not take that method",
    )
}
