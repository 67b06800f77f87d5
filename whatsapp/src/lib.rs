//! WhatsApp Cloud API (Graph API v26.0) for Parley: the wire formats of
//! webhooks and sends, webhook signatures, the error table, the WhatsApp port
//! with its Graph API adapter, and the built-in simulator of the local
//! runtime.
//!
//! This crate knows WhatsApp and nothing of Parley's domain or storage: it
//! turns bytes from Meta into typed values and typed sends into requests.

pub mod client;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod errors;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod graph_error;
pub mod media;
pub mod send;
pub mod signature;
pub mod simulator;
pub mod templates;
pub mod webhook;

pub use client::{Credentials, GraphClient, SendError, WhatsAppApi};
pub use errors::{classify, ErrorKind, RetryPolicy};
pub use media::{MediaInfo, MediaUpload};
pub use send::{SendAccepted, SendRequest};
pub use signature::{sign, verify, SignatureError};
pub use templates::{CreatedTemplate, RemoteTemplate, TemplateSubmission, WabaCredentials};
pub use webhook::{parse, InboundMessage, StatusKind, StatusUpdate, WebhookError, WebhookItem, WebhookPayload};
