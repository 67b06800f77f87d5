//! The application's typed errors. The HTTP edge turns each into a
//! problem+json answer with a stable code (see `http::problem`).

use chrono::{DateTime, Utc};
use parley_domain::policy::SendRefusal;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing does not exist, or belongs to another tenant (never said which).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("the 24-hour customer service window is closed")]
    WindowClosed { closed_at: Option<DateTime<Utc>> },
    #[error("the contact has opted out")]
    OptedOut { since: Option<DateTime<Utc>> },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the webhook signature does not match")]
    BadSignature,
    /// Too many concurrent writers kept winning; the caller may retry.
    #[error("the resource is busy, retry shortly")]
    Busy,
    #[error("event store: {0}")]
    Store(#[from] parley_events::StoreError),
    #[error("vault: {0}")]
    Vault(#[from] parley_vault::VaultError),
    /// The identity provider refused or failed.
    #[error(transparent)]
    Identity(crate::identity::IdentityError),
    /// The tenant sent more requests than its rate allows.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A template breaks these rules (SPEC 4.5).
    #[error("the template breaks {} rule(s)", .0.len())]
    TemplateInvalid(Vec<parley_domain::template::Violation>),
    /// A template send that WhatsApp would refuse: not approved, or a parameter missing.
    #[error("{code}: {detail}")]
    TemplateSend { code: &'static str, detail: String },
    /// A media file WhatsApp would refuse (type or size), or one that is not there.
    #[error("{code}: {detail}")]
    Media { code: &'static str, detail: String },
    /// WhatsApp refused or did not answer a call made on the request's behalf.
    #[error("WhatsApp: {0}")]
    Upstream(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation { field: field.into(), message: message.into() }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<SendRefusal> for AppError {
    fn from(r: SendRefusal) -> Self {
        match r {
            SendRefusal::WindowClosed { closed_at } => AppError::WindowClosed { closed_at },
            SendRefusal::OptedOut { since } => AppError::OptedOut { since },
        }
    }
}

impl From<parley_domain::media::MediaRefusal> for AppError {
    fn from(r: parley_domain::media::MediaRefusal) -> Self {
        AppError::Media { code: r.code, detail: r.detail }
    }
}

impl From<crate::blobs::BlobError> for AppError {
    fn from(e: crate::blobs::BlobError) -> Self {
        AppError::Internal(format!("blob store: {e}"))
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Internal(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::Internal(format!("json: {e}"))
    }
}
