//! Helpers shared by the tests that run against an AWS API emulator.
//!
//! `PARLEY_AWS_ENDPOINT` must point at the emulator (`scripts/test.sh` starts
//! one and sets it). Without it these tests fail: an adapter test that
//! silently passes without its service proves nothing.

#![allow(dead_code)]

pub use parley_aws::testing::{emulator_config, unique_name};

/// A DynamoDB client for the emulator.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator_config().await)
}
