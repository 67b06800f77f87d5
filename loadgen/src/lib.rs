//! Load generator for Parley's webhook endpoint.
//!
//! It sends signed WhatsApp inbound-message webhooks, shaped like the Cloud API's own, to a
//! Parley server on this machine (loopback only), over a fixed number of keep-alive HTTP/1
//! connections, and reports throughput, latency percentiles and every failed request.
//!
//! Each run has a random [`RunIds`]: its wamids and contact wa_ids carry it, so a caller can
//! count afterwards what the server stored for the run.

pub mod cli;
mod connection;
pub mod report;
pub mod requests;
pub mod runner;
pub mod target;
pub mod webhook;

pub use report::Report;
pub use runner::{run, LoadConfig, RunError};
pub use target::{Target, TargetError};
pub use webhook::{sign, RunIds, WebhookFactory};
