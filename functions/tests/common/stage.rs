//! A stage's AWS resources, made in the emulator under fresh names the way
//! `template.yaml` declares them.

use parley_aws::dynamodb::{DynamoEventStore, DynamoIdempotency, DynamoReadModels};
use parley_aws::kms::KmsVault;
use parley_aws::s3::S3BlobStore;
use parley_aws::sqs::SqsQueue;
use parley_aws::testing::unique_name;
use parley_functions::lambda::AwsResources;

/// Creates the tables, key, queues, bus and bucket of one stage.
pub async fn create_stage(sdk: &aws_config::SdkConfig) -> AwsResources {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let resources = AwsResources {
        stage: "test".into(),
        events_table: unique_name("events"),
        read_models_table: unique_name("read-models"),
        idempotency_table: unique_name("idempotency"),
        keys_table: unique_name("keys"),
        data_key_id: aws_sdk_kms::Client::new(sdk)
            .create_key()
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .expect("key metadata")
            .key_id()
            .to_owned(),
        outbound_queue_url: SqsQueue::create_with_dlq(aws_sdk_sqs::Client::new(sdk), &unique_name("outbound"), 5)
            .await
            .expect("create queue")
            .queue_url()
            .to_owned(),
        jobs_queue_url: SqsQueue::create_with_dlq(aws_sdk_sqs::Client::new(sdk), &unique_name("jobs"), 3)
            .await
            .expect("create jobs queue")
            .queue_url()
            .to_owned(),
        event_bus: unique_name("bus"),
        blob_bucket: unique_name("blobs"),
    };
    DynamoEventStore::create_table(&dynamodb, &resources.events_table).await.expect("events table");
    DynamoReadModels::create_table(&dynamodb, &resources.read_models_table).await.expect("read-model table");
    DynamoIdempotency::create_table(&dynamodb, &resources.idempotency_table).await.expect("idempotency table");
    KmsVault::create_table(&dynamodb, &resources.keys_table).await.expect("keys table");
    aws_sdk_eventbridge::Client::new(sdk).create_event_bus().name(&resources.event_bus).send().await.expect("bus");
    S3BlobStore::client(sdk).create_bucket().bucket(&resources.blob_bucket).send().await.expect("bucket");
    resources
}

/// The environment `template.yaml` gives a function of the stage.
pub fn stage_env(r: &AwsResources) -> Vec<(&'static str, String)> {
    vec![
        ("PARLEY_STAGE", r.stage.clone()),
        ("PARLEY_EVENTS_TABLE", r.events_table.clone()),
        ("PARLEY_READ_MODELS_TABLE", r.read_models_table.clone()),
        ("PARLEY_IDEMPOTENCY_TABLE", r.idempotency_table.clone()),
        ("PARLEY_KEYS_TABLE", r.keys_table.clone()),
        ("PARLEY_DATA_KEY_ID", r.data_key_id.clone()),
        ("PARLEY_OUTBOUND_QUEUE_URL", r.outbound_queue_url.clone()),
        ("PARLEY_JOBS_QUEUE_URL", r.jobs_queue_url.clone()),
        ("PARLEY_EVENT_BUS", r.event_bus.clone()),
        ("PARLEY_BLOB_BUCKET", r.blob_bucket.clone()),
    ]
}
