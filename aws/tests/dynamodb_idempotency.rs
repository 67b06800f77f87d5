//! The DynamoDB idempotency store against the emulator: the port's conformance suite.

mod common;

use std::sync::Arc;

use parley_app::idempotency::conformance::run_idempotency_suite;
use parley_app::idempotency::IdempotencyStore;
use parley_aws::dynamodb::DynamoIdempotency;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_idempotency_suite() {
    let client = common::dynamodb().await;
    run_idempotency_suite(|| {
        let client = client.clone();
        async move {
            let table = common::unique_name("idempotency");
            DynamoIdempotency::create_table(&client, &table).await.expect("create table");
            Arc::new(DynamoIdempotency::new(client, table)) as Arc<dyn IdempotencyStore>
        }
    })
    .await;
}

#[tokio::test]
async fn expired_records_are_left_to_the_tables_ttl() {
    let client = common::dynamodb().await;
    let table = common::unique_name("idempotency");
    DynamoIdempotency::create_table(&client, &table).await.expect("create table");
    let described = client.describe_time_to_live().table_name(&table).send().await.expect("describe ttl");
    let ttl = described.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some(parley_aws::dynamodb::idempotency::TTL_ATTRIBUTE));

    let store = DynamoIdempotency::new(client.clone(), &table);
    let now_ms = 1_700_000_000_000;
    store.claim("t1", "k", "fp", now_ms).await.expect("claim");
    let item = client
        .get_item()
        .table_name(&table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S("t1#k".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("record");
    let ttl_seconds: i64 = item["ttl"].as_n().expect("number").parse().expect("seconds");
    let expiry = (now_ms + parley_app::idempotency::IN_PROGRESS_EXPIRY.as_millis() as i64) / 1000;
    assert!((expiry..=expiry + 1).contains(&ttl_seconds), "TTL in Unix seconds at the claim's expiry: {ttl_seconds}");
}
