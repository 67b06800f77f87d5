//! Lambda function for the `/v1` API: the same router as the local server.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    parley_functions::telemetry::init();
    let app = parley_functions::lambda::compose()?;
    lambda_http::run(parley_app::http::router(app)).await
}
