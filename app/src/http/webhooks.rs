//! `GET|POST /webhooks/whatsapp` (SPEC 5.10): no JWT; the handshake checks the
//! verify token, deliveries the signature over the raw body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;

use super::extract::{Query, RawBody};
use super::problem::Problem;
use crate::app::App;
use crate::error::AppError;
use crate::services::inbound::WebhookOutcome;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: String,
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: String,
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: String,
}

/// Webhook verification handshake: echoes `hub.challenge`.
#[utoipa::path(
    get, path = "/webhooks/whatsapp", tag = "webhooks", params(Handshake),
    responses((status = 200, description = "The challenge, as text/plain", body = String), (status = 403, body = Problem))
)]
pub async fn verify(State(app): State<Arc<App>>, Query(h): Query<Handshake>) -> Result<String, AppError> {
    app.verify_subscription(&h.mode, &h.verify_token, &h.challenge).await
}

/// A webhook delivery from WhatsApp.
#[utoipa::path(
    post, path = "/webhooks/whatsapp", tag = "webhooks",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body with the app secret>")),
    request_body(content = Object, description = "A WhatsApp Cloud API webhook body"),
    responses(
        (status = 200, description = "Processed", body = Object),
        (status = 401, description = "Bad or missing signature; nothing recorded", body = Problem),
    )
)]
pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<WebhookOutcome>, AppError> {
    let signature = headers.get(parley_whatsapp::signature::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    Ok(axum::Json(app.handle_webhook(&body, signature).await?))
}
