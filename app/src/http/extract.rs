//! Extractors whose failures are problem+json answers.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::{json_rejection, query_rejection, Problem};
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let caller = app.tokens.verify(bearer_token(parts)?)?;
        // Each tenant gets its share of the API, so one busy tenant cannot starve the others.
        app.throttles
            .per_tenant
            .take(&caller.tenant_id, std::time::Instant::now())
            .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
        Ok(caller)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| AppError::Unauthorized("a bearer token is required".into()))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| AppError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
    Ok(token.trim())
}

/// `axum::Json` with problem+json rejections.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state).await.map(|axum::Json(v)| Json(v)).map_err(json_rejection)
    }
}

/// `axum::extract::Query` with problem+json rejections.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(query_rejection)
    }
}

/// The raw request body, for handlers that must see the exact bytes (webhook
/// signatures) or parse leniently; size-limit failures are problem+json.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| super::problem::body_rejection(r.status(), r.body_text()))
    }
}
