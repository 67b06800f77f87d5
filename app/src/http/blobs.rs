//! `GET /blobs/{key}` of the local runtime: serves a file blob to whoever
//! holds a link from `FileBlobStore::download_url`, while its signature is
//! genuine and it has not expired. (On AWS, presigned S3 URLs do this.)

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::extract::Query;
use super::problem::Problem;
use crate::blobs::{BlobStore, FileBlobStore};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub expires: i64,
    pub sig: String,
}

fn refused() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "link_invalid", "Link invalid", "the download link is not genuine or has expired")
}

async fn download(
    State(store): State<Arc<FileBlobStore>>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    if !store.verify_download(&key, q.expires, &q.sig, chrono::Utc::now().timestamp()) {
        return refused().into_response();
    }
    match store.get(&key).await {
        Ok(Some(blob)) => ([(header::CONTENT_TYPE, blob.content_type)], blob.bytes).into_response(),
        Ok(None) => Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found", "the blob no longer exists").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "blob store unavailable");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Unavailable", "the blob store is unavailable")
                .into_response()
        }
    }
}

/// The download route, ready to merge into the API router.
pub fn router(store: Arc<FileBlobStore>) -> Router {
    Router::new().route("/blobs/{*key}", get(download)).with_state(store)
}
