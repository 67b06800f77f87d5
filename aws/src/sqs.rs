//! The work queue on Amazon SQS, and the glue for a Lambda function fed by one.
//!
//! [`SqsQueue`] implements [`WorkQueue`] on a standard queue. The port's
//! semantics map one to one: visibility timeout, `DelaySeconds`, long polling
//! (`WaitTimeSeconds`), `ChangeMessageVisibility` for [`WorkQueue::retry_later`],
//! and dead-lettering is the queue's redrive policy (`maxReceiveCount`) to a
//! dead-letter queue, which [`WorkQueue::dead_letters`] reads.
//!
//! SQS counts time in whole seconds: visibility timeouts and delays are
//! rounded up (a message never comes back sooner than asked), waits are
//! rounded down and capped at SQS's 20 seconds.
//!
//! In Lambda the service polls the queue itself: [`batch_items`] turns the
//! [`SqsEvent`] into [`Delivery`]s, and [`batch_response`] reports the
//! messages that failed so that only those come back (`ReportBatchItemFailures`).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use parley_app::queue::{Delivery, QueueError, WorkQueue};

use crate::batching::chunks;

/// SQS's cap on entries per batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's cap on the summed body size of one `SendMessageBatch` call.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// SQS's cap on `WaitTimeSeconds`.
const MAX_WAIT_SECONDS: u64 = 20;
/// SQS's cap on the visibility timeout (12 hours).
const MAX_VISIBILITY_SECONDS: u64 = 12 * 60 * 60;
/// SQS's cap on `DelaySeconds` (15 minutes).
const MAX_DELAY_SECONDS: u64 = 15 * 60;
/// How often `send_batch` resends entries that failed on the service's side.
const BATCH_ATTEMPTS: u32 = 4;

/// A [`WorkQueue`] on an SQS standard queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: Option<String>,
}

impl SqsQueue {
    /// A queue by URL, with the URL of its dead-letter queue if it has one.
    /// Makes no calls, so a Lambda function can build it at init from its environment.
    pub fn new(client: Client, queue_url: impl Into<String>, dlq_url: Option<String>) -> Self {
        SqsQueue { client, queue_url: queue_url.into(), dlq_url }
    }

    /// A queue by URL; its dead-letter queue is found through its redrive policy.
    pub async fn open(client: Client, queue_url: impl Into<String>) -> Result<Self, QueueError> {
        let queue_url = queue_url.into();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(sdk_error)?;
        let dlq_url = match attrs.attributes().and_then(|a| a.get(&QueueAttributeName::RedrivePolicy)) {
            Some(policy) => {
                let policy: serde_json::Value = serde_json::from_str(policy).map_err(unavailable)?;
                let arn = policy["deadLetterTargetArn"]
                    .as_str()
                    .ok_or_else(|| QueueError::Unavailable("redrive policy without deadLetterTargetArn".into()))?;
                Some(url_of_arn(&client, arn).await?)
            }
            None => None,
        };
        Ok(SqsQueue { client, queue_url, dlq_url })
    }

    /// Creates (or finds) the queue `name` and its dead-letter queue `{name}-dlq`;
    /// a message goes to the dead-letter queue on its `max_receives + 1`st receive.
    /// For tests and tools: deployed queues come from the template.
    pub async fn create_with_dlq(client: Client, name: &str, max_receives: u32) -> Result<Self, QueueError> {
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(sdk_error)?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable("CreateQueue returned no URL".into()))?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sdk_error)?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::Unavailable("GetQueueAttributes returned no QueueArn".into()))?;
        let policy = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives });
        let queue_url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(sdk_error)?
            .queue_url
            .ok_or_else(|| QueueError::Unavailable("CreateQueue returned no URL".into()))?;
        Ok(SqsQueue { client, queue_url, dlq_url: Some(dlq_url) })
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dead_letter_queue_url(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }

    /// Sends many bodies with `SendMessageBatch`, ten (and at most 256 KiB) per
    /// call. Entries the service failed on its side are sent again, a bounded
    /// number of times; an entry it rejects as the sender's fault fails the call.
    pub async fn send_batch(&self, bodies: &[String], delay: Duration) -> Result<(), QueueError> {
        let delay = ceil_seconds(delay, MAX_DELAY_SECONDS);
        for chunk in chunks(bodies, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES, |b| b.len()) {
            // Entry ids are the positions within the chunk, so failures map back to bodies.
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            for attempt in 0..BATCH_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                let entries = pending
                    .iter()
                    .map(|&i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&chunk[i])
                            .delay_seconds(delay)
                            .build()
                            .map_err(unavailable)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                if let Some(rejected) = out.failed().iter().find(|f| f.sender_fault()) {
                    return Err(QueueError::Unavailable(format!(
                        "SendMessageBatch rejected an entry: {} {}",
                        rejected.code(),
                        rejected.message().unwrap_or_default()
                    )));
                }
                pending = out.failed().iter().filter_map(|f| f.id().parse().ok()).collect();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(QueueError::Unavailable(format!(
                    "SendMessageBatch still failing for {} entries after {BATCH_ATTEMPTS} attempts",
                    pending.len()
                )));
            }
        }
        Ok(())
    }

    /// Reads every message of the dead-letter queue once without consuming it:
    /// received messages are hidden while the read goes on, so none is counted
    /// twice, then made visible again at once.
    async fn peek_dead_letters(&self, dlq_url: &str) -> Result<Vec<String>, QueueError> {
        let mut seen = HashSet::new();
        let mut found: Vec<(i64, String)> = Vec::new();
        let mut receipts = Vec::new();
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(MAX_BATCH_ENTRIES as i32)
                .visibility_timeout(30)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(sdk_error)?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                if let Some(receipt) = m.receipt_handle {
                    receipts.push(receipt);
                }
                if m.message_id.is_some_and(|id| seen.insert(id)) {
                    let sent = m
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    found.push((sent, m.body.unwrap_or_default()));
                }
            }
        }
        for batch in receipts.chunks(MAX_BATCH_ENTRIES) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .build()
                        .map_err(unavailable)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .change_message_visibility_batch()
                .queue_url(dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        found.sort_by_key(|(sent, _)| *sent);
        Ok(found.into_iter().map(|(_, body)| body).collect())
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(ceil_seconds(delay, MAX_DELAY_SECONDS))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let max = max.clamp(1, MAX_BATCH_ENTRIES) as i32;
        let wait = wait.as_secs().min(MAX_WAIT_SECONDS) as i32;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .visibility_timeout(ceil_seconds(visibility, MAX_VISIBILITY_SECONDS))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sdk_error)?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let receipt =
                    m.receipt_handle.ok_or_else(|| QueueError::Unavailable("message without receipt handle".into()))?;
                Ok(Delivery { body: m.body.unwrap_or_default(), receipt, receive_count })
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let result = self.client.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await;
        match result {
            Ok(_) => Ok(()),
            // Acknowledging twice, or after the message left, is not an error (as in the local queues).
            Err(e) if is_stale_receipt(e.code()) => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(ceil_seconds(delay, MAX_VISIBILITY_SECONDS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_stale_receipt(e.code()) => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        match &self.dlq_url {
            Some(dlq) => self.peek_dead_letters(dlq).await,
            // Without a redrive policy nothing is ever dead-lettered.
            None => Ok(Vec::new()),
        }
    }
}

/// One record of an [`SqsEvent`], as the handler works on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// What [`batch_response`] reports when this item failed.
    pub message_id: String,
    /// Its `receipt` is the receipt handle, so [`SqsQueue::retry_later`] can back it off.
    pub delivery: Delivery,
}

/// A record of an SQS event lacked a field Lambda always sets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("SQS record {index} has no {field}")]
pub struct MalformedRecord {
    pub index: usize,
    pub field: &'static str,
}

/// The records of an SQS event Lambda delivered, in order.
pub fn batch_items(event: &SqsEvent) -> Result<Vec<BatchItem>, MalformedRecord> {
    event
        .records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let missing = |field| MalformedRecord { index, field };
            Ok(BatchItem {
                message_id: r.message_id.clone().ok_or(missing("messageId"))?,
                delivery: Delivery {
                    body: r.body.clone().ok_or(missing("body"))?,
                    receipt: r.receipt_handle.clone().ok_or(missing("receiptHandle"))?,
                    receive_count: r
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                },
            })
        })
        .collect()
}

/// The answer of a handler with `ReportBatchItemFailures`: Lambda deletes every
/// message of the batch except the ones named here, which come back after their
/// visibility timeout (and reach the dead-letter queue after `maxReceiveCount`).
pub fn batch_response<I, S>(failed_message_ids: I) -> SqsBatchResponse
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed_message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.into();
            failure
        })
        .collect();
    response
}

/// Whole seconds for an SQS time field, rounded up and capped.
fn ceil_seconds(d: Duration, cap: u64) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(cap) as i32
}

fn is_stale_receipt(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ReceiptHandleIsInvalid"
                | "InvalidParameterValue"
                | "MessageNotInflight"
                | "AWS.SimpleQueueService.MessageNotInflight"
        )
    )
}

/// The URL of a queue named by its ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
async fn url_of_arn(client: &Client, arn: &str) -> Result<String, QueueError> {
    let mut parts = arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(QueueError::Unavailable(format!("not a queue ARN: {arn}")));
    };
    client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .ok_or_else(|| QueueError::Unavailable(format!("no URL for {arn}")))
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> QueueError {
    QueueError::Unavailable(DisplayErrorContext(e).to_string())
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessage;

    #[test]
    fn time_fields_round_up_to_whole_seconds_within_the_cap() {
        assert_eq!(ceil_seconds(Duration::ZERO, 20), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1), 20), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(2), 20), 2);
        assert_eq!(ceil_seconds(Duration::from_millis(2001), 20), 3);
        assert_eq!(ceil_seconds(Duration::from_secs(3600), 900), 900);
    }

    #[test]
    fn batch_response_names_each_failed_message() {
        let json = serde_json::to_value(batch_response(["m-1", "m-3"])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "batchItemFailures": [ { "itemIdentifier": "m-1" }, { "itemIdentifier": "m-3" } ] })
        );
        let none = serde_json::to_value(batch_response(Vec::<String>::new())).unwrap();
        assert_eq!(none, serde_json::json!({ "batchItemFailures": [] }));
    }

    fn record(id: &str, body: &str, count: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.receipt_handle = Some(format!("rh-{id}"));
        m.body = Some(body.into());
        m.attributes.insert("ApproximateReceiveCount".into(), count.into());
        m
    }

    #[test]
    fn an_sqs_event_becomes_deliveries_in_order() {
        let mut event = SqsEvent::default();
        event.records = vec![record("a", "{\"n\":1}", "1"), record("b", "{\"n\":2}", "4")];
        let items = batch_items(&event).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].message_id, "a");
        assert_eq!(items[0].delivery, Delivery { body: "{\"n\":1}".into(), receipt: "rh-a".into(), receive_count: 1 });
        assert_eq!(items[1].delivery.receive_count, 4);
    }

    #[test]
    fn a_record_without_a_body_is_reported_not_skipped() {
        let mut event = SqsEvent::default();
        let mut broken = record("b", "", "1");
        broken.body = None;
        event.records = vec![record("a", "x", "1"), broken];
        assert_eq!(batch_items(&event), Err(MalformedRecord { index: 1, field: "body" }));
    }

    #[test]
    fn the_lambda_fixture_parses_into_deliveries() {
        let event: SqsEvent = serde_json::from_str(include_str!("../tests/fixtures/sqs-event.json")).unwrap();
        let items = batch_items(&event).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| !i.delivery.receipt.is_empty() && i.delivery.receive_count >= 1));
    }
}
