//! The HTTP Lambda functions: every endpoint group of `template.yaml` runs
//! this binary; `PARLEY_HANDLER` says which group (`webhooks` serves only the
//! WhatsApp webhook; the API groups serve the shared router, and the HTTP
//! API's routes decide which paths reach each function).

use parley_functions::lambda::{self, AwsRuntime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    parley_functions::telemetry::init();
    let handler = std::env::var("PARLEY_HANDLER").unwrap_or_default();
    let config = lambda::config_from_env()?;
    let sdk = lambda::sdk_config().await;
    let identity = lambda::identity_ports(&config, &sdk).await?;
    let runtime = AwsRuntime::compose(&config, lambda::AwsResources::from_env()?, &sdk, identity)?;
    let router = match handler.as_str() {
        "webhooks" => parley_app::http::webhook_router(runtime.app),
        // `/v1/messages/export` reaches the messages function, the rest of the back office the API one.
        "api" | "messages" | "public" => runtime.api_router(),
        other => return Err(format!("PARLEY_HANDLER: `{other}` is not one of webhooks, api, messages, public").into()),
    };
    lambda_http::run(router).await
}
