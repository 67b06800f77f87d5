//! Helpers shared by the tests that run against an AWS API emulator.
//!
//! `PARLEY_AWS_ENDPOINT` must point at the emulator (`scripts/test.sh` starts
//! one and sets it). Without it these tests fail: an adapter test that
//! silently passes without its service proves nothing.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use parley_aws::config::AwsTarget;

/// The SDK configuration for the emulator; panics with instructions if none is set.
pub async fn emulator_config() -> SdkConfig {
    let target = AwsTarget::from_env();
    assert!(
        target.endpoint.is_some(),
        "PARLEY_AWS_ENDPOINT is not set: these tests need an AWS API emulator. Run scripts/test.sh, or start \
         `moto_server -H 127.0.0.1 -p PORT` and set PARLEY_AWS_ENDPOINT=http://127.0.0.1:PORT"
    );
    target.sdk_config().await
}

/// A DynamoDB client for the emulator.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator_config().await)
}

/// A table (or queue, bucket...) name no other test or run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}
