//! `POST /webhooks/stripe`: payment outcomes of invoices created in Stripe,
//! accepted only with a valid `Stripe-Signature`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AppError;
use crate::http::extract::RawBody;
use crate::http::problem::Problem;
use crate::ops::Ops;

#[derive(Debug, Deserialize)]
struct StripeEvent {
    #[serde(rename = "type")]
    kind: String,
    data: StripeData,
}

#[derive(Debug, Deserialize)]
struct StripeData {
    object: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Received {
    pub received: bool,
}

/// Stripe's webhook: `invoice.paid` and `invoice.payment_failed` update the invoice.
#[utoipa::path(
    post, path = "/webhooks/stripe", tag = "webhooks",
    responses((status = 200, body = Received), (status = 401, body = Problem), (status = 404, body = Problem))
)]
pub async fn receive(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<Received>, AppError> {
    let stripe = ops.stripe.as_ref().ok_or(AppError::NotFound { what: "Stripe webhook" })?;
    let signature = headers.get("stripe-signature").and_then(|h| h.to_str().ok()).ok_or(AppError::BadSignature)?;
    if !stripe.verify_signature(signature, &body, chrono::Utc::now().timestamp()) {
        return Err(AppError::BadSignature);
    }
    let event: StripeEvent =
        serde_json::from_slice(&body).map_err(|e| AppError::validation("body", format!("not a Stripe event: {e}")))?;
    let invoice_id = event.data.object["id"].as_str().unwrap_or_default();
    match event.kind.as_str() {
        "invoice.paid" | "invoice.payment_succeeded" => {
            ops.record_payment(invoice_id, true, "").await?;
        }
        "invoice.payment_failed" => {
            let reason = event.data.object["last_payment_error"]["message"].as_str().unwrap_or("the payment failed");
            ops.record_payment(invoice_id, false, reason).await?;
        }
        // Stripe sends many other event types; they need nothing here.
        _ => {}
    }
    Ok(axum::Json(Received { received: true }))
}
