//! Token buckets in DynamoDB: the [`RateLimiter`] adapter that paces sends
//! across every concurrent Lambda instance (SPEC 4.6).
//!
//! One item per bucket in the idempotency table (partition key `id` =
//! `rate#<key>`), holding the tokens left (`tk`) at a time (`at`, Unix
//! milliseconds). Taking a token is one conditional `PutItem` on the state
//! that was read (`tk` and `at` unchanged, or no item yet); a writer that
//! lost the race gets the winner's state back with the refusal
//! (`ReturnValuesOnConditionCheckFailure`) and decides again on it, so
//! racing instances never grant more than the bucket holds and a contended
//! take costs no extra read. Idle buckets carry a TTL past the moment they
//! are full again: a missing bucket is a full one, so expiry loses nothing.
//!
//! Cost: every take reads the bucket (strongly consistent, 1 RCU: items are
//! far under 4 KiB) and a granted one writes it (1 WCU); a send that must
//! wait writes nothing. At 80 sends/s per number that is 80 WCU/s and
//! 80 RCU/s per number, plus one read per lost race.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use parley_app::error::AppError;
use parley_app::ratelimit::{Acquire, RateLimiter};
use parley_domain::ratelimit::{take, Bucket, Limit};

use super::event_store::Item;
use super::idempotency::TTL_ATTRIBUTE;

const ID: &str = "id";
const TOKENS: &str = "tk";
const AT_MS: &str = "at";
/// Races lost in a row before a caller is told to come back shortly.
const MAX_RACES: usize = 16;
/// How long a caller that lost every race waits.
const CONTENDED_WAIT_MS: u64 = 5;

/// The DynamoDB [`RateLimiter`] adapter, over the idempotency table.
#[derive(Debug, Clone)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

fn internal<E: std::error::Error>(error: E) -> AppError {
    AppError::internal(DisplayErrorContext(error))
}

fn bucket_id(key: &str) -> AttributeValue {
    AttributeValue::S(format!("rate#{key}"))
}

fn bucket_from(item: &Item) -> Result<Bucket, AppError> {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => Ok(n.as_str()),
        other => Err(AppError::internal(format!("rate bucket attribute {name} is {other:?}"))),
    };
    Ok(Bucket {
        tokens: number(TOKENS)?.parse().map_err(AppError::internal)?,
        at_ms: number(AT_MS)?.parse().map_err(AppError::internal)?,
    })
}

/// Seconds since the epoch after which the bucket is full again (plus a
/// margin): the item's TTL.
fn expiry_secs(bucket: Bucket, limit: Limit) -> i64 {
    let refill_ms = ((limit.burst - bucket.tokens).max(0.0) * 1000.0 / limit.rate.max(f64::MIN_POSITIVE)).ceil();
    (bucket.at_ms + refill_ms.min(86_400_000.0) as i64) / 1000 + 3600
}

impl DynamoRateLimiter {
    /// The limiter over `table`, an idempotency table (its key `id` and TTL on `ttl`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn current(&self, key: &str) -> Result<Option<Bucket>, AppError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, bucket_id(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(internal)?;
        out.item().map(bucket_from).transpose()
    }

    /// Writes `next` if the bucket still is `seen`; on a lost race, the state that won.
    async fn replace(
        &self,
        key: &str,
        seen: Option<Bucket>,
        next: Bucket,
        limit: Limit,
    ) -> Result<Result<(), Option<Bucket>>, AppError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, bucket_id(key))
            .item(TOKENS, AttributeValue::N(next.tokens.to_string()))
            .item(AT_MS, AttributeValue::N(next.at_ms.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expiry_secs(next, limit).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = match seen {
            None => put.condition_expression("attribute_not_exists(#id)").expression_attribute_names("#id", ID),
            Some(b) => put
                .condition_expression("#tk = :tk AND #at = :at")
                .expression_attribute_names("#tk", TOKENS)
                .expression_attribute_names("#at", AT_MS)
                .expression_attribute_values(":tk", AttributeValue::N(b.tokens.to_string()))
                .expression_attribute_values(":at", AttributeValue::N(b.at_ms.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(Ok(())),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let winner = match failed.item() {
                        Some(item) => Some(bucket_from(item)?),
                        // Emulators without ALL_OLD on refusals: read it.
                        None => self.current(key).await?,
                    };
                    Ok(Err(winner))
                }
                _ => Err(internal(error)),
            },
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn acquire(&self, key: &str, limit: Limit, now_ms: i64) -> Result<Acquire, AppError> {
        let mut seen = self.current(key).await?;
        for _ in 0..MAX_RACES {
            let next = match take(seen, limit, now_ms) {
                Ok(next) => next,
                Err(wait_ms) => return Ok(Acquire::Wait(std::time::Duration::from_millis(wait_ms))),
            };
            match self.replace(key, seen, next, limit).await? {
                Ok(()) => return Ok(Acquire::Granted),
                Err(winner) => seen = winner,
            }
        }
        Ok(Acquire::Wait(std::time::Duration::from_millis(CONTENDED_WAIT_MS)))
    }
}
