//! `POST /v1/media`: files uploaded to Parley, to be sent later by `blob_id`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;

use super::extract::{Query, RawBody};
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::services::media::UploadedMediaOut;

/// The largest upload read: WhatsApp's largest cap (documents, 100 MB) and
/// room for nothing else; the file's own type's cap is checked after.
pub const MAX_UPLOAD_BYTES: usize = parley_domain::media::DOCUMENT_MAX_BYTES as usize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file name a document shows the customer.
    pub filename: Option<String>,
}

/// Upload a file for media messages: the body is the file, its
/// `Content-Type` the file's MIME type. Send it with
/// `{"type": "image", "image": {"blob_id": "<blob_id>"}}`.
#[utoipa::path(
    post, path = "/v1/media", tag = "messages", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes, with its MIME type as Content-Type (image/jpeg, application/pdf, ...)"),
    responses(
        (status = 201, description = "Stored", body = UploadedMediaOut),
        (status = 413, description = "Larger than any media WhatsApp sends", body = Problem),
        (status = 422, description = "media_type_unsupported, media_too_large or media_empty", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<UploadParams>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, axum::Json<UploadedMediaOut>), AppError> {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let uploaded = app.upload_media(&caller, mime, params.filename, body).await?;
    Ok((StatusCode::CREATED, axum::Json(uploaded)))
}
