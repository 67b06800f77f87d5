//! The DynamoDB token buckets against the emulator: the rate-limit port's
//! conformance suite, and what a bucket item holds.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use parley_app::ratelimit::conformance::run_rate_limiter_suite;
use parley_app::ratelimit::{Acquire, RateLimiter};
use parley_aws::dynamodb::{DynamoIdempotency, DynamoRateLimiter};
use parley_domain::ratelimit::Limit;

async fn limiter(client: &aws_sdk_dynamodb::Client) -> (DynamoRateLimiter, String) {
    let table = common::unique_name("rate");
    DynamoIdempotency::create_table(client, &table).await.expect("create table");
    (DynamoRateLimiter::new(client.clone(), &table), table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_rate_limiter_suite() {
    let client = common::dynamodb().await;
    run_rate_limiter_suite(|| {
        let client = client.clone();
        async move { Arc::new(limiter(&client).await.0) as Arc<dyn RateLimiter> }
    })
    .await;
}

#[tokio::test]
async fn a_bucket_is_one_small_item_that_expires_once_full_again() {
    let client = common::dynamodb().await;
    let (limiter, table) = limiter(&client).await;
    let limit = Limit::per_second(80);
    let now_ms = 1_800_000_000_000;
    for _ in 0..3 {
        assert_eq!(limiter.acquire("t1/number/106540352242922", limit, now_ms).await.unwrap(), Acquire::Granted);
    }
    let item = client
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S("rate#t1/number/106540352242922".into()))
        .send()
        .await
        .expect("get")
        .item()
        .cloned()
        .expect("the bucket item");
    let n = |name: &str| item[name].as_n().expect("a number").parse::<f64>().expect("numeric");
    assert_eq!(n("tk"), 77.0);
    assert_eq!(n("at"), now_ms as f64);
    // Three tokens refill in 37.5 ms; the TTL is an hour past that.
    assert_eq!(n("ttl") as i64, (now_ms + 38) / 1000 + 3600);
}
