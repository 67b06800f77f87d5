//! The WhatsApp port: how Parley sends a message, whatever carries it (the
//! Cloud API over HTTP, the built-in simulator through the same HTTP client,
//! or a future adapter).

mod graph;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::errors::{classify, ErrorKind, RetryPolicy};
use crate::media::{MediaInfo, MediaUpload};
use crate::send::{SendAccepted, SendRequest};
use crate::templates::{CreatedTemplate, RemoteTemplate, TemplateSubmission, WabaCredentials};

pub use graph::{ClientConfigError, GraphClient};

/// What a send needs to act for one business number.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The Graph API id of the sending number.
    pub phone_number_id: String,
    /// The bearer token for the Graph API.
    pub access_token: String,
}

impl fmt::Debug for Credentials {
    // The token is a secret: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// Sends messages through WhatsApp.
#[async_trait]
pub trait WhatsAppApi: Send + Sync + 'static {
    /// Sends one message from the number of `creds`.
    async fn send(&self, creds: &Credentials, request: &SendRequest) -> Result<SendAccepted, SendError>;

    /// Tells WhatsApp that the business read the customer's message `wamid`
    /// (and, by WhatsApp's rules, every earlier one): the customer sees blue ticks.
    async fn mark_read(&self, creds: &Credentials, wamid: &str) -> Result<(), SendError>;

    /// Submits a template for review by WhatsApp.
    async fn create_template(
        &self,
        creds: &WabaCredentials,
        template: &TemplateSubmission,
    ) -> Result<CreatedTemplate, SendError>;

    /// Every template of the business account, with its review status.
    async fn list_templates(&self, creds: &WabaCredentials) -> Result<Vec<RemoteTemplate>, SendError>;

    /// Deletes every language of the template `name`.
    async fn delete_template(&self, creds: &WabaCredentials, name: &str) -> Result<(), SendError>;

    /// Uploads a file to WhatsApp's media store for the number of `creds`;
    /// answers the media id a send can name (valid for 30 days).
    async fn upload_media(&self, creds: &Credentials, upload: &MediaUpload) -> Result<String, SendError>;

    /// Looks a media id up: its short-lived download URL, type, size and hash.
    async fn media_info(&self, creds: &Credentials, media_id: &str) -> Result<MediaInfo, SendError>;

    /// Downloads a URL from [`WhatsAppApi::media_info`] with the number's
    /// token; refuses files over `max_bytes`.
    async fn download_media(&self, creds: &Credentials, url: &str, max_bytes: u64) -> Result<Bytes, SendError>;
}

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// Meta answered with an error body (send_error_*.json shape).
    #[error("WhatsApp refused the send (HTTP {http_status}, code {code}, {kind}): {message}")]
    Api {
        /// The HTTP status of the answer.
        http_status: u16,
        /// `error.code`.
        code: i64,
        /// `error.error_subcode`.
        subcode: Option<i64>,
        /// `error.message`, with `error_data.details` appended when present.
        message: String,
        /// What the code means to Parley.
        kind: ErrorKind,
        /// Meta's trace id.
        fbtrace_id: Option<String>,
    },
    /// The request never reached Meta (DNS, connect refused, TLS before the
    /// request): safe to retry.
    #[error("the send never reached WhatsApp: {0}")]
    NotSent(String),
    /// The request may have reached Meta but no answer came (timeout after
    /// sending, connection reset): a retry could send the message twice.
    #[error("the send may or may not have reached WhatsApp: {0}")]
    Ambiguous(String),
    /// Meta answered something we cannot read.
    #[error("WhatsApp answered HTTP {http_status} with an unreadable body: {detail}")]
    Protocol {
        /// The HTTP status of the answer.
        http_status: u16,
        /// What was wrong with it.
        detail: String,
    },
}

impl SendError {
    /// The error kind for an API error; for an unreadable answer, the kind
    /// its HTTP status alone suggests; `None` when no answer came.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            SendError::Api { kind, .. } => Some(*kind),
            SendError::Protocol { http_status, .. } => Some(classify(*http_status, None)),
            SendError::NotSent(_) | SendError::Ambiguous(_) => None,
        }
    }

    /// Whether and when to try again.
    ///
    /// An ambiguous failure answers [`RetryPolicy::Never`]: the Cloud API has
    /// no idempotency key, so a retry risks a duplicate message, and Parley
    /// sends nothing twice. A caller that prefers a possible duplicate to a
    /// lost message may decide otherwise.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            SendError::NotSent(_) => RetryPolicy::Backoff,
            SendError::Ambiguous(_) => RetryPolicy::Never,
            SendError::Api { kind, .. } => kind.retry_policy(),
            SendError::Protocol { http_status, .. } => classify(*http_status, None).retry_policy(),
        }
    }
}
