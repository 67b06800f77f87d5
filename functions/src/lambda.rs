//! Composition for Lambda functions: the same application as the local
//! runtime, on the AWS adapters (DynamoDB event store, read models and
//! idempotency; SQS; EventBridge; S3; SESv2; KMS).
//!
//! Everything here runs once per Lambda instance, at init: clients are built
//! from one SDK configuration and shared by every invocation.

use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use parley_app::app::{Ports, Settings};
use parley_app::auth::TokenVerifier;
use parley_app::identity::audit::AuditLog;
use parley_app::identity::IdentityProvider;
use parley_app::ops::{Ops, OpsPorts};
use parley_app::queue::WorkQueue;
use parley_app::services::dispatcher::job_for;
use parley_app::services::jobs::job_message_for;
use parley_app::{App, Config, SystemClock};
use parley_aws::cognito::{self, CognitoIdentity, CognitoTokens};
use parley_aws::config::AwsTarget;
use parley_aws::dynamodb::stream::recorded_events_from_stream;
use parley_aws::dynamodb::{
    DynamoAuditLog, DynamoEventStore, DynamoIdempotency, DynamoOpsReadModels, DynamoRateLimiter, DynamoReadModels,
    DynamoSearchIndex,
};
use parley_aws::eventbridge::EventBridgeBus;
use parley_aws::kms::KmsVault;
use parley_aws::s3::S3BlobStore;
use parley_aws::ses::SesMailer;
use parley_aws::sqs::SqsQueue;
use parley_events::bus::{IntegrationBus, IntegrationEvent};
use parley_whatsapp::GraphClient;

use crate::handlers::schedule;
use crate::handlers::streams::{self, RecordEvents};

/// Names of the AWS resources a function uses, from the environment
/// `template.yaml` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub stage: String,
    pub events_table: String,
    pub read_models_table: String,
    pub idempotency_table: String,
    pub keys_table: String,
    pub data_key_id: String,
    pub outbound_queue_url: String,
    /// Where queued jobs (exports) wait for the job runner.
    pub jobs_queue_url: String,
    pub event_bus: String,
    pub blob_bucket: String,
}

impl AwsResources {
    /// Reads every variable and names all missing ones in one error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut missing = Vec::new();
        let mut var = |name: &'static str| {
            get(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let resources = AwsResources {
            stage: var("PARLEY_STAGE"),
            events_table: var("PARLEY_EVENTS_TABLE"),
            read_models_table: var("PARLEY_READ_MODELS_TABLE"),
            idempotency_table: var("PARLEY_IDEMPOTENCY_TABLE"),
            keys_table: var("PARLEY_KEYS_TABLE"),
            data_key_id: var("PARLEY_DATA_KEY_ID"),
            outbound_queue_url: var("PARLEY_OUTBOUND_QUEUE_URL"),
            jobs_queue_url: var("PARLEY_JOBS_QUEUE_URL"),
            event_bus: var("PARLEY_EVENT_BUS"),
            blob_bucket: var("PARLEY_BLOB_BUCKET"),
        };
        if !missing.is_empty() {
            anyhow::bail!("missing environment variables: {}", missing.join(", "));
        }
        Ok(resources)
    }

    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Who signs users in and whose tokens `/v1` accepts.
pub struct IdentityPorts {
    pub identity: Arc<dyn IdentityProvider>,
    pub audit: Arc<dyn AuditLog>,
    pub tokens: Arc<dyn TokenVerifier>,
}

/// The identity ports on AWS: the Cognito user pool `PARLEY_USER_POOL_ID`
/// through its app client `PARLEY_USER_POOL_CLIENT_ID`, and the audit log in
/// `PARLEY_READ_MODELS_TABLE`.
///
/// The pool's keys are fetched here, once per instance. Against the emulator
/// (`PARLEY_AWS_ENDPOINT`) they are served by the emulator rather than at the
/// issuer's address.
pub async fn identity_ports(_config: &Config, sdk: &aws_config::SdkConfig) -> anyhow::Result<IdentityPorts> {
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).with_context(|| format!("{name} is not set"))
    };
    let (pool, client_id, table) =
        (var("PARLEY_USER_POOL_ID")?, var("PARLEY_USER_POOL_CLIENT_ID")?, var("PARLEY_READ_MODELS_TABLE")?);
    let region = sdk.region().context("no AWS region configured")?;
    let issuer = cognito::issuer(region.as_ref(), &pool);
    let jwks_url = match AwsTarget::from_env().endpoint {
        Some(endpoint) => format!("{}/{pool}/.well-known/jwks.json", endpoint.trim_end_matches('/')),
        None => format!("{issuer}/.well-known/jwks.json"),
    };
    let tokens = CognitoTokens::load(issuer, &client_id, &jwks_url).await.context("the user pool's keys")?;
    let identity = CognitoIdentity::new(CognitoIdentity::client(sdk), pool, client_id, jwks_url);
    let audit = DynamoAuditLog::new(aws_sdk_dynamodb_client(sdk), table);
    Ok(IdentityPorts { identity: Arc::new(identity), audit: Arc::new(audit), tokens: Arc::new(tokens) })
}

/// The application on AWS, plus the adapters the worker handlers use directly.
pub struct AwsRuntime {
    pub app: Arc<App>,
    /// The back office: jobs, exports, analytics, billing.
    pub ops: Arc<Ops>,
    pub read_models: Arc<DynamoReadModels>,
    pub ops_models: Arc<DynamoOpsReadModels>,
    pub jobs_queue: Arc<SqsQueue>,
    pub audit: Arc<DynamoAuditLog>,
    pub outbound: Arc<SqsQueue>,
    pub bus: Arc<dyn IntegrationBus>,
    pub resources: AwsResources,
}

impl AwsRuntime {
    /// Composes the application from `config`, the resources and one SDK configuration.
    pub fn compose(
        config: &Config,
        resources: AwsResources,
        sdk: &aws_config::SdkConfig,
        identity: IdentityPorts,
    ) -> anyhow::Result<AwsRuntime> {
        let dynamodb = aws_sdk_dynamodb_client(sdk);
        let store = Arc::new(DynamoEventStore::new(dynamodb.clone(), &resources.events_table));
        let read_models = Arc::new(DynamoReadModels::new(dynamodb.clone(), &resources.read_models_table));
        let audit = Arc::new(DynamoAuditLog::new(dynamodb.clone(), &resources.read_models_table));
        let search = Arc::new(DynamoSearchIndex::new(dynamodb.clone(), &resources.read_models_table));
        let idempotency = Arc::new(DynamoIdempotency::new(dynamodb.clone(), &resources.idempotency_table));
        let rate_limiter = Arc::new(DynamoRateLimiter::new(dynamodb.clone(), &resources.idempotency_table));
        let vault = Arc::new(KmsVault::new(
            aws_sdk_kms::Client::new(sdk),
            dynamodb,
            &resources.data_key_id,
            &resources.keys_table,
        ));
        let outbound = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &resources.outbound_queue_url, None));
        let bus: Arc<dyn IntegrationBus> =
            Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), &resources.event_bus));
        let blobs = Arc::new(S3BlobStore::new(S3BlobStore::client(sdk), &resources.blob_bucket));
        let mailer = Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), &config.mail_from));
        let api_base = config.whatsapp_api_base.clone().unwrap_or_else(|| "https://graph.facebook.com".into());
        let whatsapp = GraphClient::try_new(&api_base, &config.whatsapp_api_version, config.whatsapp_timeout)
            .map_err(|e| anyhow::anyhow!("PARLEY_WHATSAPP_API_BASE: {e}"))?;
        let app = App::new(
            Ports {
                store,
                vault,
                read_models: read_models.clone(),
                idempotency,
                outbound_queue: outbound.clone(),
                whatsapp: Arc::new(whatsapp),
                tokens: identity.tokens,
                clock: Arc::new(SystemClock),
                blobs,
                mailer,
                identity: identity.identity,
                audit: identity.audit,
                // Shared by every instance: the buckets live in DynamoDB.
                rate_limiter,
                search: search.clone(),
            },
            Settings::from_config(config)?,
        );
        let ops_models = Arc::new(DynamoOpsReadModels::new(
            aws_sdk_dynamodb_client(sdk),
            &resources.read_models_table,
            app.sealer.clone(),
        ));
        // The dead-letter queue is the queue's redrive policy's business in AWS.
        let jobs_queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &resources.jobs_queue_url, None));
        let ops = Ops::new(
            app.clone(),
            OpsPorts {
                jobs: ops_models.clone(),
                analytics: ops_models.clone(),
                billing: ops_models.clone(),
                job_queue: jobs_queue.clone(),
            },
            config.ops.clone(),
        )?;
        Ok(AwsRuntime { app, ops, read_models, ops_models, jobs_queue, audit, outbound, bus, resources })
    }

    /// The domain events each stream record carries, with its sequence number.
    fn record_events(event: &DynamoDbEvent) -> Vec<RecordEvents> {
        event
            .records
            .iter()
            .map(|record| {
                let events = recorded_events_from_stream(std::slice::from_ref(record)).unwrap_or_else(|e| {
                    // A record that is not an event item (the log, the counter)
                    // or cannot be read is skipped, not retried forever.
                    tracing::error!(error = %e, event_id = %record.event_id, "stream record skipped");
                    Vec::new()
                });
                RecordEvents { sequence_number: record.change.sequence_number.clone().unwrap_or_default(), events }
            })
            .collect()
    }

    /// Projector: stream records -> read models (messaging and back office),
    /// the search index and the audit log.
    pub async fn project(&self, event: DynamoDbEvent) -> DynamoDbEventResponse {
        let (read_models, ops_models, audit) = (&self.read_models, &self.ops_models, &self.audit);
        let indexer = self.app.search_indexer();
        streams::consume(Self::record_events(&event), |events| {
            let indexer = indexer.clone();
            async move {
                read_models.apply(&events).await?;
                ops_models.apply(&events).await?;
                self.app.blinder.index().apply(&indexer.changes(&events).await?).await?;
                audit.apply(&events).await
            }
        })
        .await
    }

    /// Reactor: stream records -> outbound jobs on SQS and integration events on the bus.
    pub async fn react(&self, event: DynamoDbEvent) -> DynamoDbEventResponse {
        let stage = self.resources.stage.as_str();
        streams::consume(Self::record_events(&event), |events| async move {
            for job in events.iter().filter_map(job_for) {
                self.outbound.send(&job.to_body(), std::time::Duration::ZERO).await?;
            }
            // Queued jobs, and failed attempts that will be retried after a pause.
            for (message, delay) in events.iter().filter_map(|e| job_message_for(e, self.ops.settings.job_retry_delay))
            {
                self.jobs_queue.send(&serde_json::to_string(&message)?, delay).await?;
            }
            let published: Vec<_> = events.iter().map(|e| IntegrationEvent::from_recorded(e, stage)).collect();
            self.bus.publish(&published).await?;
            Ok::<_, anyhow::Error>(())
        })
        .await
    }

    /// Sender: one SQS batch of outbound jobs.
    pub async fn send(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::handlers::sender::handle(&self.app, event).await
    }

    /// Job runner: one SQS batch of queued jobs.
    pub async fn run_jobs(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::handlers::jobs::handle(&self.ops, event).await
    }

    /// Invoicer: one scheduled run. The payload may name the month (`{"month": "YYYY-MM"}`);
    /// by default it is the month before this one.
    pub async fn invoice(&self, payload: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let month = schedule::invoice_month(payload, self.app.clock.now())?;
        let issued = schedule::issue_invoices(&self.ops, month).await?;
        Ok(serde_json::json!({ "month": month.to_string(), "issued": issued }))
    }

    /// Dunning: one scheduled run.
    pub async fn dun(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "sent": schedule::send_dunning_mails(&self.ops).await? }))
    }

    /// Usage notices: one scheduled run.
    pub async fn notify_usage(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "told": schedule::send_usage_notices(&self.ops).await? }))
    }

    /// One run of a scheduled handler, with EventBridge Scheduler's payload.
    pub async fn run_scheduled(
        &self,
        handler: crate::handlers::WorkerHandler,
        payload: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        use crate::handlers::WorkerHandler as H;
        match handler {
            H::WindowCloser => Ok(serde_json::json!({ "expired": schedule::close_windows(&self.app).await? })),
            H::Invoicer => self.invoice(payload).await,
            H::Dunning => self.dun().await,
            H::UsageNotices => self.notify_usage().await,
            H::Archiver => self.archive().await,
            H::MessageCleanup => self.clean_up().await,
            H::TemplatePoller => self.poll_templates().await,
            H::Projector | H::Reactor | H::Sender | H::JobRunner => {
                anyhow::bail!("{} is not a scheduled handler", handler.name())
            }
        }
    }

    /// Archiver: one scheduled run.
    pub async fn archive(&self) -> anyhow::Result<serde_json::Value> {
        let queued = schedule::queue_archive_runs(&self.ops, self.app.clock.now()).await?;
        Ok(serde_json::json!({ "queued": queued }))
    }

    /// Message cleanup: one scheduled run.
    pub async fn clean_up(&self) -> anyhow::Result<serde_json::Value> {
        let expired = schedule::expire_queued_messages(&self.ops, self.app.clock.now()).await?;
        Ok(serde_json::json!({ "expired": expired }))
    }

    /// Template poller: one scheduled run.
    pub async fn poll_templates(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "changes": schedule::poll_template_statuses(&self.ops).await? }))
    }

    /// The HTTP router of the API functions: the messaging API and the back office's routes.
    pub fn api_router(&self) -> axum::Router {
        parley_app::http::router(self.app.clone()).merge(parley_app::http::ops::router(self.ops.clone()))
    }
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

/// The SDK configuration of this process (the emulator's, when `PARLEY_AWS_ENDPOINT` is set).
pub async fn sdk_config() -> aws_config::SdkConfig {
    AwsTarget::from_env().sdk_config().await
}

/// Reads the configuration a function runs with.
pub fn config_from_env() -> anyhow::Result<Config> {
    Config::from_env().context("configuration")
}
