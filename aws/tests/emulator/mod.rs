//! What the side-effect adapter tests share: the emulator's SDK configuration
//! and names no other test run uses.
//!
//! The tests run against the AWS API emulator `scripts/test.sh` starts and
//! names in `PARLEY_AWS_ENDPOINT`; without it they fail and say so, rather
//! than pass without having tested anything.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

pub mod ses_probe;

use aws_config::SdkConfig;
use parley_aws::config::AwsTarget;

/// The emulator's URL, or a failed test that explains how to get one.
pub fn endpoint() -> String {
    match std::env::var("PARLEY_AWS_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "PARLEY_AWS_ENDPOINT is not set: these tests need an AWS API emulator on loopback. \
             Run scripts/test.sh, or start `moto_server -H 127.0.0.1 -p PORT` and set \
             PARLEY_AWS_ENDPOINT=http://127.0.0.1:PORT"
        ),
    }
}

/// The SDK configuration pointing at the emulator.
pub async fn sdk_config() -> SdkConfig {
    AwsTarget { endpoint: Some(endpoint()), region: None }.sdk_config().await
}

/// A resource name of at most 40 characters that no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}
