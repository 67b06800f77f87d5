//! The use cases: what Parley does for each request, webhook and queue message.

pub mod contacts;
pub mod dispatcher;
pub mod fields;
pub mod handling;
pub mod inbound;
pub mod numbers;
pub mod send;
pub mod sender;
pub mod status;
pub mod templates;
pub mod window_closer;
