//! The use cases: what Parley does for each request, webhook and queue message.

pub mod archive;
pub mod billing;
pub mod cleanup;
pub mod contacts;
pub mod dispatcher;
pub mod export;
pub mod fields;
pub mod handling;
pub mod inbound;
pub mod invoice_pdf;
pub mod jobs;
pub mod media;
pub mod numbers;
pub mod privacy;
pub mod scheduler;
pub mod search;
pub mod send;
pub mod sender;
pub mod status;
pub mod stripe;
pub mod templates;
pub mod window_closer;
