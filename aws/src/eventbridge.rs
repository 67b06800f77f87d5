//! The integration bus on Amazon EventBridge.
//!
//! [`EventBridgeBus`] publishes with `PutEvents`, at most ten entries and
//! 256 KiB per call (sized the way EventBridge counts: source, detail-type,
//! detail, and 14 bytes for the time). A call can succeed while some of its
//! entries fail (`FailedEntryCount`): those entries alone are sent again with
//! exponential backoff and jitter, a bounded number of times, and the publish
//! fails if any still does. Entries EventBridge rejects as malformed fail at
//! once: sending them again cannot help.
//!
//! [`from_envelope`] reads an integration event back from the JSON a rule
//! target receives (`detail-type`, `source`, `time`, `detail`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use chrono::{DateTime, Utc};
use parley_events::bus::{BusError, IntegrationBus, IntegrationEvent};
use rand::Rng;

use crate::batching::chunks;

/// EventBridge's cap on entries per `PutEvents` call.
const MAX_ENTRIES: usize = 10;
/// EventBridge's cap on the summed entry size of one `PutEvents` call.
const MAX_CALL_BYTES: usize = 256 * 1024;
/// What a set `Time` adds to an entry's size.
const TIME_BYTES: usize = 14;
/// Entry error codes that no retry will fix.
const PERMANENT_ERRORS: &[&str] = &["MalformedDetail", "InvalidArgument", "ValidationException"];

/// How failed entries are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls per chunk in all, the first included.
    pub attempts: u32,
    /// The backoff before the second call; it doubles for each call after.
    pub base_delay: Duration,
    /// No backoff is longer.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, base_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay up to the exponential bound, so publishers
    /// retrying together do not hit the service in step.
    fn delay(&self, retry: u32) -> Duration {
        let bound = self.base_delay.saturating_mul(1 << retry.min(16)).min(self.max_delay);
        bound.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// An [`IntegrationBus`] on an EventBridge event bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// Publishes to the bus named (or ARN) `bus_name`.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus { client, bus_name: bus_name.into(), retry: RetryPolicy::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn entry(&self, event: &IntegrationEvent) -> Result<PutEventsRequestEntry, BusError> {
        let detail = serde_json::to_string(&event.detail).map_err(|e| rejected(event, e.to_string()))?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .time(AwsDateTime::from_secs(event.time.timestamp()))
            .detail(detail)
            .build())
    }

    /// One `PutEvents` call; per entry, the error code if it failed.
    async fn put(&self, entries: Vec<PutEventsRequestEntry>) -> Result<Vec<Option<(String, String)>>, BusError> {
        let sent = entries.len();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| BusError::Unavailable(DisplayErrorContext(e).to_string()))?;
        let results: Vec<_> = out
            .entries()
            .iter()
            .map(|r| r.error_code().map(|code| (code.to_owned(), r.error_message().unwrap_or_default().to_owned())))
            .collect();
        if results.len() != sent {
            return Err(BusError::Unavailable(format!(
                "PutEvents answered {} results for {sent} entries",
                results.len()
            )));
        }
        if out.failed_entry_count() as usize != results.iter().filter(|r| r.is_some()).count() {
            tracing::warn!(failed = out.failed_entry_count(), "PutEvents FailedEntryCount disagrees with its entries");
        }
        Ok(results)
    }
}

/// An entry's size as EventBridge counts it against the 256 KiB of a call.
pub fn entry_size(event: &IntegrationEvent) -> usize {
    let detail = serde_json::to_string(&event.detail).map(|d| d.len()).unwrap_or(MAX_CALL_BYTES);
    TIME_BYTES + event.source.len() + event.detail_type.len() + detail
}

#[async_trait]
impl IntegrationBus for EventBridgeBus {
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        for event in events {
            if entry_size(event) > MAX_CALL_BYTES {
                return Err(rejected(event, format!("{} bytes is more than an event may have", entry_size(event))));
            }
        }
        for chunk in chunks(events, MAX_ENTRIES, MAX_CALL_BYTES, entry_size) {
            let entries = chunk.iter().map(|e| self.entry(e)).collect::<Result<Vec<_>, _>>()?;
            put_with_retries(chunk, entries, &self.retry, |batch| self.put(batch)).await?;
        }
        Ok(())
    }
}

/// Sends `entries` (one per event of `chunk`) with `put`, then again only
/// those that failed, until none does or the policy's attempts are spent.
async fn put_with_retries<E, P, Fut>(
    chunk: &[IntegrationEvent],
    entries: Vec<E>,
    retry: &RetryPolicy,
    put: P,
) -> Result<(), BusError>
where
    E: Clone,
    P: Fn(Vec<E>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Option<(String, String)>>, BusError>>,
{
    let mut pending: Vec<usize> = (0..chunk.len()).collect();
    let mut last_error = (String::new(), String::new());
    for attempt in 0..retry.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.delay(attempt - 1)).await;
        }
        let results = put(pending.iter().map(|&i| entries[i].clone()).collect()).await?;
        let mut still_failing = Vec::new();
        for (&i, result) in pending.iter().zip(results) {
            if let Some((code, message)) = result {
                if PERMANENT_ERRORS.contains(&code.as_str()) {
                    return Err(rejected(&chunk[i], format!("{code}: {message}")));
                }
                tracing::debug!(%code, attempt, "PutEvents entry failed; sending it again");
                last_error = (code, message);
                still_failing.push(i);
            }
        }
        pending = still_failing;
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(BusError::Unavailable(format!(
        "{} of {} events still failing after {} attempts (last: {} {})",
        pending.len(),
        chunk.len(),
        retry.attempts.max(1),
        last_error.0,
        last_error.1
    )))
}

fn rejected(event: &IntegrationEvent, reason: String) -> BusError {
    BusError::Rejected { event_id: event.event_id().unwrap_or("unknown").to_owned(), reason }
}

/// A rule target's JSON was not an EventBridge event.
#[derive(Debug, thiserror::Error)]
#[error("not an EventBridge event: {0}")]
pub struct EnvelopeError(String);

/// The integration event inside the JSON a rule target receives.
pub fn from_envelope(envelope: &serde_json::Value) -> Result<IntegrationEvent, EnvelopeError> {
    let text = |field: &str| {
        envelope
            .get(field)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| EnvelopeError(format!("no string `{field}`")))
    };
    let time: DateTime<Utc> = text("time")?.parse().map_err(|e| EnvelopeError(format!("time: {e}")))?;
    Ok(IntegrationEvent {
        source: text("source")?.to_owned(),
        detail_type: text("detail-type")?.to_owned(),
        time,
        detail: envelope.get("detail").cloned().ok_or_else(|| EnvelopeError("no `detail`".into()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_events::bus::conformance::sample;
    use std::sync::Mutex;

    fn fast() -> RetryPolicy {
        RetryPolicy { attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) }
    }

    fn fail(code: &str) -> Option<(String, String)> {
        Some((code.to_owned(), "boom".to_owned()))
    }

    #[tokio::test]
    async fn sends_again_only_the_entries_that_failed() {
        let chunk: Vec<_> = (0..4).map(|n| sample(n, 1)).collect();
        let calls = Mutex::new(Vec::new());
        let result = put_with_retries(&chunk, vec![0, 1, 2, 3], &fast(), |batch: Vec<i32>| {
            let call = {
                let mut calls = calls.lock().unwrap();
                calls.push(batch.clone());
                calls.len()
            };
            async move {
                Ok(batch
                    .iter()
                    .map(|n| match (call, n) {
                        (1, 1 | 3) | (2, 3) => fail("ThrottlingException"),
                        _ => None,
                    })
                    .collect())
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1, 2, 3], vec![1, 3], vec![3]]);
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt() {
        let chunk: Vec<_> = (0..2).map(|n| sample(n, 1)).collect();
        let calls = Mutex::new(0);
        let result = put_with_retries(&chunk, vec![0, 1], &fast(), |batch: Vec<i32>| {
            *calls.lock().unwrap() += 1;
            async move { Ok(batch.iter().map(|n| if *n == 0 { fail("InternalFailure") } else { None }).collect()) }
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), 4);
        match result {
            Err(BusError::Unavailable(msg)) => {
                assert!(msg.contains("1 of 2") && msg.contains("InternalFailure"), "{msg}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_malformed_entry_fails_at_once() {
        let chunk: Vec<_> = (0..2).map(|n| sample(n, 1)).collect();
        let calls = Mutex::new(0);
        let result = put_with_retries(&chunk, vec![0, 1], &fast(), |batch: Vec<i32>| {
            *calls.lock().unwrap() += 1;
            async move { Ok(batch.iter().map(|n| if *n == 1 { fail("MalformedDetail") } else { None }).collect()) }
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), 1);
        match result {
            Err(BusError::Rejected { event_id, .. }) => assert_eq!(Some(event_id.as_str()), chunk[1].event_id()),
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let policy =
            RetryPolicy { attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for retry in 0..10 {
            let d = policy.delay(retry);
            let bound = (Duration::from_millis(100) * (1 << retry)).min(Duration::from_secs(1));
            assert!(d <= bound && d >= bound / 2, "retry {retry}: {d:?} within {bound:?}");
        }
    }

    #[test]
    fn entries_are_sized_as_eventbridge_counts_them() {
        let event = sample(1, 100);
        let detail = serde_json::to_string(&event.detail).unwrap();
        assert_eq!(entry_size(&event), 14 + event.source.len() + event.detail_type.len() + detail.len());
    }

    #[test]
    fn reads_an_event_back_from_a_target_envelope() {
        let event = sample(7, 3);
        let envelope = serde_json::json!({
            "version": "0", "id": "e1", "detail-type": event.detail_type, "source": event.source,
            "account": "123456789012", "time": "2025-11-24T16:00:07Z", "region": "us-east-1",
            "resources": [], "detail": event.detail,
        });
        assert_eq!(from_envelope(&envelope).unwrap(), event);
        assert!(from_envelope(&serde_json::json!({ "source": "x" })).is_err());
    }
}
