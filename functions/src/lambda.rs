//! Composition for Lambda functions. The AWS adapters (DynamoDB, SQS, S3,
//! SES, KMS) plug in here; until they do, a function composes the embedded
//! adapters under its writable `/tmp`, which keeps the binaries honest about
//! sharing every handler with the local runtime.

use std::sync::Arc;

use parley_app::{App, Config};

use crate::local::Local;

pub fn compose() -> anyhow::Result<Arc<App>> {
    let mut config = Config::from_env()?;
    if std::env::var_os("PARLEY_DATA_DIR").is_none() {
        config.data_dir = std::env::temp_dir().join("parley");
    }
    Ok(Local::open(config)?.app)
}
