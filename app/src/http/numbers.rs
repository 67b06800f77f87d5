//! `/v1/numbers` (SPEC 5.6). Secrets go in and never come back out.

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::extract::{Json, Query};
use super::ops::analytics::percentile;
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::NumberView;
use crate::services::numbers::{RegisterNumber, UpdateNumber};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NumberOut {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub throughput_per_second: u32,
    pub registered_at: DateTime<Utc>,
    /// GREEN, YELLOW, RED or UNKNOWN, as WhatsApp last reported.
    pub quality_rating: String,
    /// The messaging tier WhatsApp last reported, e.g. `TIER_1K`.
    pub messaging_limit: Option<String>,
    /// CONNECTED, FLAGGED, RESTRICTED or DISABLED.
    pub account_status: String,
    /// The number that sends in this one's place while it is blocked.
    pub alternate_number_id: Option<String>,
}

impl From<NumberView> for NumberOut {
    fn from(n: NumberView) -> Self {
        NumberOut {
            phone_number_id: n.phone_number_id,
            display_phone_number: n.display_phone_number,
            waba_id: n.waba_id,
            throughput_per_second: n.throughput_per_second,
            registered_at: n.registered_at,
            quality_rating: n.quality_rating,
            messaging_limit: n.messaging_limit,
            account_status: n.account_status,
            alternate_number_id: n.alternate_number_id,
        }
    }
}

/// The settings a change left, as the number's stream holds them now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NumberSettingsOut {
    pub phone_number_id: String,
    pub throughput_per_second: u32,
    pub alternate_number_id: Option<String>,
}

/// The longest range one metrics answer covers.
const MAX_METRICS_DAYS: i64 = 366;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Start of the range (RFC 3339), included; default 7 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339), excluded; default now.
    pub to: Option<DateTime<Utc>>,
}

/// Delivery latency percentiles, accepted by WhatsApp to delivered, in
/// milliseconds (nearest rank); null without delivered messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatencyOut {
    pub samples: u64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub p99: Option<i64>,
}

/// What a number's outbound messages created in the range did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NumberMetrics {
    pub phone_number_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Outbound messages of the number (sent from it, or queued on it and
    /// not sent from its alternate).
    pub messages: u64,
    /// Of those, accepted by WhatsApp.
    pub sends: u64,
    pub delivered: u64,
    pub failed: u64,
    pub failures_by_kind: BTreeMap<String, u64>,
    pub quality_rating: String,
    pub messaging_limit: Option<String>,
    pub account_status: String,
    pub delivery_latency_ms: LatencyOut,
}

/// Register a WhatsApp business number.
#[utoipa::path(
    post, path = "/v1/numbers", tag = "numbers", request_body = RegisterNumber,
    responses(
        (status = 201, body = NumberOut),
        (status = 409, description = "Already registered", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn register(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(cmd): Json<RegisterNumber>,
) -> Result<(StatusCode, axum::Json<NumberOut>), AppError> {
    let n = app.register_number(&caller, cmd).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NumberOut {
            phone_number_id: n.phone_number_id,
            display_phone_number: n.display_phone_number,
            waba_id: n.waba_id,
            throughput_per_second: n.throughput_per_second,
            registered_at: n.at,
            quality_rating: "UNKNOWN".into(),
            messaging_limit: None,
            account_status: "CONNECTED".into(),
            alternate_number_id: None,
        }),
    ))
}

/// The tenant's numbers.
#[utoipa::path(
    get, path = "/v1/numbers", tag = "numbers",
    responses((status = 200, body = Vec<NumberOut>)),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<Vec<NumberOut>>, AppError> {
    let numbers = app.read_models.numbers(&caller.tenant_id).await?;
    Ok(axum::Json(numbers.into_iter().map(NumberOut::from).collect()))
}

/// Change a number's throughput or alternate number.
#[utoipa::path(
    patch, path = "/v1/numbers/{id}", tag = "numbers", request_body = UpdateNumber,
    params(("id" = String, Path, description = "The number's phone_number_id")),
    responses(
        (status = 200, body = NumberSettingsOut),
        (status = 404, body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(cmd): Json<UpdateNumber>,
) -> Result<axum::Json<NumberSettingsOut>, AppError> {
    let number = app.update_number(&caller, &id, cmd).await?;
    Ok(axum::Json(NumberSettingsOut {
        phone_number_id: id,
        throughput_per_second: number.throughput(),
        alternate_number_id: number.alternate_number_id.clone(),
    }))
}

/// Sends, failures by kind, quality and delivery latency of a number.
#[utoipa::path(
    get, path = "/v1/numbers/{id}/metrics", tag = "numbers",
    params(("id" = String, Path, description = "The number's phone_number_id"), MetricsQuery),
    responses((status = 200, body = NumberMetrics), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn metrics(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Result<axum::Json<NumberMetrics>, AppError> {
    let to = q.to.unwrap_or_else(|| app.clock.now());
    let from = q.from.unwrap_or(to - Duration::days(7));
    if from >= to {
        return Err(AppError::validation("from", "must be before `to`"));
    }
    if to - from > Duration::days(MAX_METRICS_DAYS) {
        return Err(AppError::validation("from", format!("metrics cover at most {MAX_METRICS_DAYS} days")));
    }
    let number = app
        .read_models
        .numbers(&caller.tenant_id)
        .await?
        .into_iter()
        .find(|n| n.phone_number_id == id)
        .ok_or(AppError::NotFound { what: "number" })?;
    let activity = app.read_models.number_activity(&caller.tenant_id, &id, from, to).await?;
    let latencies = &activity.delivery_latencies_ms;
    Ok(axum::Json(NumberMetrics {
        phone_number_id: id,
        from,
        to,
        messages: activity.messages,
        sends: activity.sent,
        delivered: activity.delivered,
        failed: activity.failures.values().sum(),
        failures_by_kind: activity.failures.clone(),
        quality_rating: number.quality_rating,
        messaging_limit: number.messaging_limit,
        account_status: number.account_status,
        delivery_latency_ms: LatencyOut {
            samples: latencies.len() as u64,
            p50: percentile(latencies, 50),
            p90: percentile(latencies, 90),
            p99: percentile(latencies, 99),
        },
    }))
}
