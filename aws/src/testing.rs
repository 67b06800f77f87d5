//! Helpers for tests that run against an AWS API emulator (feature `testing`).
//!
//! `PARLEY_AWS_ENDPOINT` must point at the emulator (`scripts/test.sh` starts
//! one and sets it). Without it these helpers panic with instructions: an
//! adapter test that silently passes without its service proves nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeDataType, ExplicitAuthFlowsType, PasswordPolicyType, SchemaAttributeType, StringAttributeConstraintsType,
    UserPoolPolicyType, UsernameAttributeType, VerifiedAttributeType,
};
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::config::AwsTarget;

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

/// A table (or queue, bucket...) name no other test or run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// An attribute value in DynamoDB's JSON form, as Lambda delivers images.
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": STANDARD.encode(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": image_json(map) }),
        AttributeValue::Ss(set) => json!({ "SS": set }),
        AttributeValue::Ns(set) => json!({ "NS": set }),
        other => panic!("no Lambda JSON form for {other:?} here"),
    }
}

fn image_json(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(image.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<_, _>>())
}

/// Stream records of `table` read through the DynamoDB Streams API, after the
/// first `skip` ones, each in the JSON shape Lambda delivers (NEW_IMAGE view).
pub async fn stream_records(config: &SdkConfig, table: &str, skip: usize) -> Vec<EventRecord> {
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let listed = streams.list_streams().table_name(table).send().await.expect("list streams");
    let arn = listed.streams()[0].stream_arn().expect("stream arn").to_owned();
    let described = streams.describe_stream().stream_arn(&arn).send().await.expect("describe stream");
    let shards = described.stream_description().expect("description").shards().to_vec();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().expect("shard id"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(current) = iterator.take() {
            let page = streams.get_records().shard_iterator(current).send().await.expect("get records");
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let change = record.dynamodb().expect("stream record");
                let lambda_shape = json!({
                    "eventID": record.event_id(),
                    "eventName": record.event_name().map(|n| n.as_str()),
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": arn,
                    "dynamodb": {
                        "ApproximateCreationDateTime": chrono::Utc::now().timestamp(),
                        "Keys": image_json(change.keys().unwrap_or(&Default::default())),
                        "NewImage": image_json(change.new_image().unwrap_or(&Default::default())),
                        "SequenceNumber": change.sequence_number(),
                        "SizeBytes": change.size_bytes().unwrap_or(0),
                        "StreamViewType": "NEW_IMAGE",
                    },
                });
                records.push(serde_json::from_value(lambda_shape).expect("a Lambda DynamoDB event record"));
            }
            iterator = page.next_shard_iterator;
        }
    }
    records.into_iter().skip(skip).collect()
}

/// A user pool and app client as `template.yaml` declares them.
pub async fn create_user_pool(client: &aws_sdk_cognitoidentityprovider::Client) -> (String, String) {
    let custom = |name: &str, min: &str, max: &str| {
        SchemaAttributeType::builder()
            .name(name)
            .attribute_data_type(AttributeDataType::String)
            .mutable(true)
            .string_attribute_constraints(
                StringAttributeConstraintsType::builder().min_length(min).max_length(max).build(),
            )
            .build()
    };
    let created = client
        .create_user_pool()
        .pool_name(unique_name("parley"))
        .username_attributes(UsernameAttributeType::Email)
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(12)
                        .require_lowercase(true)
                        .require_uppercase(true)
                        .require_numbers(true)
                        .require_symbols(false)
                        .build(),
                )
                .build(),
        )
        .schema(custom("tenant_id", "1", "64"))
        .schema(custom("role", "4", "6"))
        .send()
        .await
        .expect("create user pool");
    let pool_id = created.user_pool().and_then(|p| p.id()).expect("pool id").to_owned();
    let app = client
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("parley-api")
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .read_attributes("email")
        .read_attributes("email_verified")
        .read_attributes("custom:tenant_id")
        .read_attributes("custom:role")
        .write_attributes("email")
        .send()
        .await
        .expect("create user pool client");
    let client_id = app.user_pool_client().and_then(|c| c.client_id()).expect("client id").to_owned();
    (pool_id, client_id)
}
