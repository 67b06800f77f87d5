#![recursion_limit = "256"]
//! The worker Lambda functions: the events-stream projector and reactor, the
//! outbound sender, the job runner and the scheduled jobs (window closer,
//! invoicer, dunning, usage notices, archiver, message cleanup, template
//! poller). `PARLEY_HANDLER` names the one a function runs.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use parley_functions::handlers::WorkerHandler;
use parley_functions::lambda::{self, AwsRuntime};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    parley_functions::telemetry::init();
    let handler = WorkerHandler::from_env()?;
    let config = lambda::config_from_env()?;
    let sdk = lambda::sdk_config().await;
    let identity = lambda::identity_ports(&config, &sdk).await?;
    let runtime = Arc::new(AwsRuntime::compose(&config, lambda::AwsResources::from_env()?, &sdk, identity)?);
    match handler {
        WorkerHandler::Projector => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| {
                let runtime = runtime.clone();
                async move { Ok::<_, lambda_runtime::Error>(runtime.project(event.payload).await) }
            }))
            .await
        }
        WorkerHandler::Reactor => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| {
                let runtime = runtime.clone();
                async move { Ok::<_, lambda_runtime::Error>(runtime.react(event.payload).await) }
            }))
            .await
        }
        WorkerHandler::Sender => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                let runtime = runtime.clone();
                async move { Ok::<_, lambda_runtime::Error>(runtime.send(event.payload).await) }
            }))
            .await
        }
        WorkerHandler::JobRunner => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                let runtime = runtime.clone();
                async move { Ok::<_, lambda_runtime::Error>(runtime.run_jobs(event.payload).await) }
            }))
            .await
        }
        scheduled @ (WorkerHandler::WindowCloser
        | WorkerHandler::Invoicer
        | WorkerHandler::Dunning
        | WorkerHandler::UsageNotices
        | WorkerHandler::Archiver
        | WorkerHandler::MessageCleanup
        | WorkerHandler::TemplatePoller) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
                let runtime = runtime.clone();
                async move { Ok::<_, lambda_runtime::Error>(runtime.run_scheduled(scheduled, &event.payload).await?) }
            }))
            .await
        }
    }
}
