//! RFC 9457 problem details: every error the API returns (SPEC 4.8).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// The request field at fault, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// When the customer-service window closed, for `window_closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Seconds to wait before retrying, for 429 answers (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Every broken rule, for `template_invalid` and each template rule code:
    /// `[{"rule", "path", "message"}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub violations: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: format!("/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
            window_closed_at: None,
            retry_after: None,
            violations: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self.code.as_str() {
            "unauthorized" => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            "busy" => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<&AppError> for Problem {
    fn from(e: &AppError) -> Self {
        use StatusCode as S;
        match e {
            AppError::NotFound { what } => {
                Problem::new(S::NOT_FOUND, "not_found", "Not found", format!("{what} not found"))
            }
            AppError::Validation { field, message } => Problem {
                field: Some(field.clone()),
                ..Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Invalid request",
                    format!("{field}: {message}"),
                )
            },
            AppError::WindowClosed { closed_at } => Problem {
                window_closed_at: *closed_at,
                ..Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "window_closed",
                    "Customer service window closed",
                    match closed_at {
                        Some(at) => format!(
                            "the 24-hour window closed at {}; send an approved template instead",
                            at.to_rfc3339()
                        ),
                        None => "the contact has not written to this number; send an approved template instead".into(),
                    },
                )
            },
            AppError::OptedOut { since } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "opted_out",
                "Contact opted out",
                match since {
                    Some(at) => format!("the contact opted out at {}", at.to_rfc3339()),
                    None => "the contact opted out".into(),
                },
            ),
            AppError::Conflict { code, detail } => Problem::new(S::CONFLICT, code, "Conflict", detail.clone()),
            AppError::Unauthorized(d) => Problem::new(S::UNAUTHORIZED, "unauthorized", "Unauthorized", d.clone()),
            AppError::Forbidden(d) => Problem::new(S::FORBIDDEN, "forbidden", "Forbidden", d.clone()),
            AppError::BadSignature => Problem::new(
                S::UNAUTHORIZED,
                "invalid_signature",
                "Invalid signature",
                "X-Hub-Signature-256 does not match the body for a registered number",
            ),
            AppError::Busy => {
                Problem::new(S::SERVICE_UNAVAILABLE, "busy", "Busy", "too many concurrent changes; retry shortly")
            }
            AppError::Identity(e) => super::auth::identity_problem(e),
            AppError::RateLimited { retry_after_secs } => Problem {
                retry_after: Some(*retry_after_secs),
                ..Problem::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many requests",
                    format!("this tenant's request rate is exceeded; retry in {retry_after_secs} s"),
                )
            },
            AppError::TemplateInvalid(violations) => {
                // One broken rule answers with that rule's own code; several with `template_invalid`.
                let code = match violations.as_slice() {
                    [one] => one.rule.as_str(),
                    _ => "template_invalid",
                };
                let detail = violations.iter().map(|v| format!("{}: {}", v.path, v.message)).collect::<Vec<_>>();
                Problem {
                    violations: serde_json::to_value(violations).ok(),
                    ..Problem::new(S::UNPROCESSABLE_ENTITY, code, "Invalid template", detail.join("; "))
                }
            }
            AppError::TemplateSend { code, detail } => {
                Problem::new(S::UNPROCESSABLE_ENTITY, code, "Template cannot be sent", detail.clone())
            }
            AppError::Media { code, detail } => {
                Problem::new(S::UNPROCESSABLE_ENTITY, code, "Media cannot be sent", detail.clone())
            }
            AppError::Upstream(d) => {
                Problem::new(S::BAD_GATEWAY, "whatsapp_error", "WhatsApp did not accept the call", d.clone())
            }
            AppError::Store(_) | AppError::Vault(_) | AppError::Internal(_) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal error",
                "something went wrong on our side",
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            AppError::Store(_)
                | AppError::Vault(_)
                | AppError::Internal(_)
                | AppError::Identity(crate::identity::IdentityError::Unavailable(_))
        ) {
            tracing::error!(error = %self, "request failed");
        }
        Problem::from(&self).into_response()
    }
}

/// A malformed or unacceptable JSON body.
pub fn json_rejection(r: JsonRejection) -> Problem {
    match r {
        JsonRejection::JsonSyntaxError(e) => {
            Problem::new(StatusCode::BAD_REQUEST, "malformed_json", "Malformed JSON", e.body_text())
        }
        JsonRejection::JsonDataError(e) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "Invalid request body", e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the body as application/json",
        ),
        other => body_rejection(other.status(), other.body_text()),
    }
}

pub fn query_rejection(r: QueryRejection) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query string", r.body_text())
}

pub fn body_rejection(status: StatusCode, detail: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(status, "payload_too_large", "Payload too large", detail)
    } else {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_body", "Invalid request body", detail)
    }
}
