//! Parley's application layer.
//!
//! It turns requests, webhooks and queue messages into commands on the domain
//! aggregates, appends the resulting events through the event store port,
//! projects them into read models and serves the HTTP API. Everything here
//! depends on ports (traits); which adapters back them is decided by whoever
//! composes an [`App`] (the local runtime or a Lambda function).

pub mod app;
pub mod auth;
pub mod blobs;
pub mod blocking;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod keyfile;
pub mod mail;
pub mod ops;
pub mod queue;
pub mod ratelimit;
pub mod readmodel;
pub mod repo;
pub mod sealing;
pub mod search;
pub mod services;

pub use app::App;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::AppError;
