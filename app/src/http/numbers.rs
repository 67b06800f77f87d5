//! `/v1/numbers` (SPEC 5.6). Secrets go in and never come back out.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::extract::Json;
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::NumberView;
use crate::services::numbers::RegisterNumber;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NumberOut {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub throughput_per_second: u32,
    pub registered_at: DateTime<Utc>,
}

impl From<NumberView> for NumberOut {
    fn from(n: NumberView) -> Self {
        NumberOut {
            phone_number_id: n.phone_number_id,
            display_phone_number: n.display_phone_number,
            waba_id: n.waba_id,
            throughput_per_second: n.throughput_per_second,
            registered_at: n.registered_at,
        }
    }
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
