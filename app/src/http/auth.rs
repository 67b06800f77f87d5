//! `/v1/auth/*`, `/v1/me` and `/.well-known/jwks.json` (SPEC 5.1): sign-up,
//! verification, sign-in, sessions, passwords and email changes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use super::extract::Json;
use super::problem::Problem;
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::identity::{IdentityError, Tokens};

/// The problem+json answer for each identity refusal; codes are stable.
pub(crate) fn identity_problem(e: &IdentityError) -> Problem {
    use StatusCode as S;
    match e {
        IdentityError::InvalidCredentials => {
            Problem::new(S::UNAUTHORIZED, "invalid_credentials", "Invalid credentials", e.to_string())
        }
        IdentityError::EmailTaken => Problem::new(S::CONFLICT, "email_taken", "Email taken", e.to_string()),
        IdentityError::EmailNotVerified => Problem::new(
            S::FORBIDDEN,
            "email_not_verified",
            "Email not verified",
            "verify the email address with the code mailed to it first",
        ),
        IdentityError::InvalidCode => Problem::new(S::BAD_REQUEST, "invalid_code", "Invalid code", e.to_string()),
        IdentityError::InvalidToken => Problem::new(S::UNAUTHORIZED, "invalid_token", "Invalid token", e.to_string()),
        IdentityError::RefreshReused { .. } => {
            Problem::new(S::UNAUTHORIZED, "refresh_token_reused", "Refresh token reused", e.to_string())
        }
        IdentityError::WeakPassword(why) => Problem {
            field: Some("password".into()),
            ..Problem::new(S::UNPROCESSABLE_ENTITY, "weak_password", "Password too weak", format!("password {why}"))
        },
        IdentityError::Invalid { field, message } => Problem {
            field: Some((*field).into()),
            ..Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Invalid request",
                format!("{field}: {message}"),
            )
        },
        IdentityError::UnknownUser => Problem::new(S::NOT_FOUND, "not_found", "Not found", "user not found"),
        IdentityError::Throttled { retry_after_secs } => Problem {
            retry_after: Some(*retry_after_secs),
            ..Problem::new(
                S::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many attempts",
                format!("too many failed sign-ins; retry in {retry_after_secs} s"),
            )
        },
        IdentityError::Unavailable(_) => Problem::new(
            S::SERVICE_UNAVAILABLE,
            "identity_unavailable",
            "Identity provider unavailable",
            "the identity provider could not be reached; retry shortly",
        ),
    }
}

/// The caller plus the bearer token itself, for operations the identity
/// provider authorizes by token (password and email changes).
pub struct Authenticated {
    pub caller: Caller,
    pub token: String,
}

impl FromRequestParts<Arc<App>> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let token = super::extract::bearer_token(parts)?.to_owned();
        Ok(Authenticated { caller, token })
    }
}

/// The client's address, for sign-in throttling: the peer of the TCP
/// connection when the server records it (`unknown` otherwise).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(ClientAddr(peer.unwrap_or_else(|| "unknown".into())))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    pub email: String,
    /// At least 12 characters with lower- and upper-case letters and a digit, not containing the email.
    pub password: String,
    /// The business's name.
    pub tenant_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignUpResponse {
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
}

/// Create a tenant and its owner; a verification code is mailed.
#[utoipa::path(
    post, path = "/v1/auth/signup", tag = "auth", request_body = SignUpRequest,
    responses(
        (status = 201, body = SignUpResponse),
        (status = 409, description = "Email taken", body = Problem),
        (status = 422, description = "Weak password or invalid field", body = Problem),
    )
)]
pub async fn sign_up(
    State(app): State<Arc<App>>,
    Json(req): Json<SignUpRequest>,
) -> Result<(StatusCode, axum::Json<SignUpResponse>), AppError> {
    let done = app.sign_up(&req.email, &req.password, &req.tenant_name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignUpResponse { user_id: done.user_id, tenant_id: done.tenant_id, email: done.email }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub email: String,
    pub code: String,
}

/// Verify the email address with the mailed code.
#[utoipa::path(
    post, path = "/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses((status = 204, description = "Verified"), (status = 400, description = "Wrong or expired code", body = Problem))
)]
pub async fn verify_email(
    State(app): State<Arc<App>>,
    Json(req): Json<VerifyEmailRequest>,
) -> Result<StatusCode, AppError> {
    app.verify_email(&req.email, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Sign in: access, id and refresh tokens.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = Tokens),
        (status = 401, description = "Wrong email or password", body = Problem),
        (status = 403, description = "Email not verified", body = Problem),
        (status = 429, description = "Too many failed attempts (see Retry-After)", body = Problem),
    )
)]
pub async fn login(
    State(app): State<Arc<App>>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<Tokens>, AppError> {
    Ok(axum::Json(app.log_in(&req.email, &req.password, &client).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for new tokens (the refresh token is rotated).
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Tokens), (status = 401, body = Problem))
)]
pub async fn refresh(
    State(app): State<Arc<App>>,
    Json(req): Json<RefreshRequest>,
) -> Result<axum::Json<Tokens>, AppError> {
    Ok(axum::Json(app.refresh_session(&req.refresh_token).await?))
}

/// Revoke the session of a refresh token.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem))
)]
pub async fn logout(State(app): State<Arc<App>>, Json(req): Json<RefreshRequest>) -> Result<StatusCode, AppError> {
    app.log_out(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

/// Mail a password reset code (the answer is the same whether the account exists or not).
#[utoipa::path(
    post, path = "/v1/auth/forgot-password", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 202, description = "A code is mailed if the account exists"), (status = 422, body = Problem))
)]
pub async fn forgot_password(
    State(app): State<Arc<App>>,
    Json(req): Json<ForgotPasswordRequest>,
) -> Result<StatusCode, AppError> {
    app.forgot_password(&req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub email: String,
    pub code: String,
    pub password: String,
}

/// Set a new password with the mailed code; every session ends.
#[utoipa::path(
    post, path = "/v1/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204, description = "Changed"), (status = 400, body = Problem), (status = 422, body = Problem))
)]
pub async fn reset_password(
    State(app): State<Arc<App>>,
    Json(req): Json<ResetPasswordRequest>,
) -> Result<StatusCode, AppError> {
    app.reset_password(&req.email, &req.code, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub old_password: String,
    pub new_password: String,
}

/// Change the password (proving the old one); every session ends.
#[utoipa::path(
    post, path = "/v1/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed"), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn change_password(
    State(app): State<Arc<App>>,
    auth: Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode, AppError> {
    app.change_password(&auth.caller, &auth.token, &req.old_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    pub new_email: String,
    /// Absent: mail a code to `new_email`. Present: the code from that mail, which completes the change.
    pub code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub user_id: String,
    pub email: String,
    pub email_verified: bool,
    pub tenant_id: String,
    pub tenant_name: String,
    #[schema(value_type = String, example = "owner")]
    pub role: Role,
}

/// Change the email address: first ask for a code, then confirm with it.
#[utoipa::path(
    post, path = "/v1/auth/change-email", tag = "auth", request_body = ChangeEmailRequest,
    responses(
        (status = 202, description = "A code was mailed to the new address"),
        (status = 200, description = "Changed", body = MeResponse),
        (status = 400, body = Problem),
        (status = 409, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn change_email(
    State(app): State<Arc<App>>,
    auth: Authenticated,
    Json(req): Json<ChangeEmailRequest>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    match app.change_email(&auth.caller, &auth.token, &req.new_email, req.code.as_deref()).await? {
        None => Ok(StatusCode::ACCEPTED.into_response()),
        Some(_) => Ok(me(State(app), auth.caller).await?.into_response()),
    }
}

/// Who the caller is.
#[utoipa::path(
    get, path = "/v1/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn me(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<MeResponse>, AppError> {
    let me = app.me(&caller).await?;
    Ok(axum::Json(MeResponse {
        user_id: me.account.user_id,
        email: me.account.email,
        email_verified: me.account.email_verified,
        tenant_id: me.account.tenant_id,
        tenant_name: me.tenant_name,
        role: me.role,
    }))
}

/// The public keys that verify access tokens (JSON Web Key Set).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWKS", body = Object))
)]
pub async fn jwks(State(app): State<Arc<App>>) -> Result<axum::Json<serde_json::Value>, AppError> {
    Ok(axum::Json(app.identity.jwks().await?))
}

/// The identity part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        sign_up,
        verify_email,
        login,
        refresh,
        logout,
        forgot_password,
        reset_password,
        change_password,
        change_email,
        me,
        jwks,
        super::members::list,
        super::members::invite,
        super::members::accept,
        super::members::change_role,
        super::members::remove,
        super::audit::list,
        super::openapi::serve,
    ),
    components(schemas(Tokens))
)]
pub struct IdentityApi;

/// The identity routes, merged into the API router.
pub fn routes() -> axum::Router<Arc<App>> {
    use axum::routing::{get, patch, post};
    axum::Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/auth/signup", post(sign_up))
        .route("/v1/auth/verify-email", post(verify_email))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/forgot-password", post(forgot_password))
        .route("/v1/auth/reset-password", post(reset_password))
        .route("/v1/auth/change-password", post(change_password))
        .route("/v1/auth/change-email", post(change_email))
        .route("/v1/me", get(me))
        .route("/v1/members", get(super::members::list).post(super::members::invite))
        .route("/v1/members/accept", post(super::members::accept))
        .route("/v1/members/{user_id}", patch(super::members::change_role).delete(super::members::remove))
        .route("/v1/audit", get(super::audit::list))
}

#[cfg(test)]
mod tests {
    /// Every path the routers declare, read from their source, so a route
    /// added without documentation fails here (and the isolation test, which
    /// walks the document, cannot miss it).
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = serde_json::to_value(super::super::openapi::document()).unwrap();
        let documented = doc["paths"].as_object().unwrap();
        let sources = [include_str!("mod.rs"), include_str!("auth.rs")];
        let mut declared = vec![];
        for source in sources {
            let mut rest = source;
            while let Some(at) = rest.find(".route(\"") {
                rest = &rest[at + ".route(\"".len()..];
                let end = rest.find('"').unwrap();
                declared.push(rest[..end].to_owned());
            }
        }
        assert!(declared.len() > 20, "found the routes: {declared:?}");
        for path in declared {
            assert!(documented.contains_key(&path), "{path} is routed but not in /openapi.json");
        }
    }
}
