//! The back office's HTTP routes: jobs (SPEC 5.7), the message export
//! (5.2), analytics (5.8), billing (5.9) and the Stripe webhook (5.10).
//! They share the API's conventions (bearer JWT, problem+json, unknown
//! fields rejected) and are merged into the API router by the runtime.

pub mod analytics;
pub mod billing;
pub mod jobs;
pub mod stripe;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::auth::Caller;
use crate::error::AppError;
use crate::ops::Ops;

impl FromRequestParts<Arc<Ops>> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, ops: &Arc<Ops>) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, &ops.app).await
    }
}

/// Refuses anything the mailer would not take as a recipient.
pub(crate) fn check_recipient(field: &str, address: &str) -> Result<(), AppError> {
    let probe =
        crate::mail::Mail { to: address.to_owned(), subject: "-".into(), text: "-".into(), html: None };
    crate::mail::validate(&probe).map_err(|e| AppError::validation(field, e.to_string()))
}

/// The back office's routes, ready to merge into the API router.
pub fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/messages/export", post(jobs::export))
        .route("/v1/analytics/summary", get(analytics::summary))
        .route("/v1/billing/usage", get(billing::usage))
        .route("/v1/billing/invoices", get(billing::invoices))
        .route("/v1/billing/invoices/{id}", get(billing::invoice))
        .route("/v1/billing/plan", post(billing::plan))
        .route("/webhooks/stripe", post(stripe::receive))
        .layer(DefaultBodyLimit::max(super::MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(ops)
}
