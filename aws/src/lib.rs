//! Parley's AWS adapters.
//!
//! Each module implements one port of the application with the real aws-sdk
//! client for the service behind it. Clients are built once from one
//! [`SdkConfig`](aws_config::SdkConfig) (see [`config`]) and shared, so a Lambda
//! function pays for credential and endpoint resolution at init, not per call.

mod batching;
pub mod cognito;
pub mod config;
pub mod dynamodb;
pub mod eventbridge;
pub mod kms;
pub mod s3;
pub mod ses;
pub mod sqs;
#[cfg(feature = "testing")]
pub mod testing;
