//! Loading the shared SDK configuration.
//!
//! In AWS the region and credentials come from the Lambda environment. For
//! tests and local experiments `PARLEY_AWS_ENDPOINT` points every client at an
//! AWS API emulator on loopback, with fixed test credentials.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// Where the AWS clients send their requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsTarget {
    /// An emulator's URL (`http://127.0.0.1:PORT`); `None` means the real AWS endpoints.
    pub endpoint: Option<String>,
    /// Overrides the region from the environment.
    pub region: Option<String>,
}

impl AwsTarget {
    /// Reads `PARLEY_AWS_ENDPOINT` and `AWS_REGION`.
    pub fn from_env() -> Self {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        AwsTarget { endpoint: non_empty("PARLEY_AWS_ENDPOINT"), region: non_empty("AWS_REGION") }
    }

    /// The SDK configuration every client of this process shares.
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            // An emulator accepts any credentials; fixed ones keep tests from
            // picking up (or needing) a developer's real AWS profile.
            loader = loader.endpoint_url(endpoint).credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "parley-emulator",
            ));
            if self.region.is_none() {
                loader = loader.region(Region::new("us-east-1"));
            }
        }
        loader.load().await
    }
}
