//! Consumers of the events table's DynamoDB stream.
//!
//! A stream batch is handled in order. When applying one record fails, the
//! response names that record's sequence number (`ReportBatchItemFailures`):
//! Lambda then retries the shard from there, so earlier records are not seen
//! again and later ones are not skipped. Every consumer is idempotent, so a
//! record that was half applied before a failure is safe to apply again.

use std::future::Future;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use parley_events::RecordedEvent;

/// The domain events one stream record carries.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEvents {
    pub sequence_number: String,
    pub events: Vec<RecordedEvent>,
}

/// Applies each record's events in order; stops at the first failure and reports it.
pub async fn consume<F, Fut, E>(records: Vec<RecordEvents>, mut apply: F) -> DynamoDbEventResponse
where
    F: FnMut(Vec<RecordedEvent>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut response = DynamoDbEventResponse::default();
    for record in records {
        if record.events.is_empty() {
            continue;
        }
        if let Err(e) = apply(record.events).await {
            tracing::error!(error = %e, sequence_number = %record.sequence_number, "stream record failed; the shard retries from it");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(record.sequence_number);
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn event(position: u64) -> RecordedEvent {
        let json = serde_json::json!({
            "event_id": uuid::Uuid::now_v7(), "stream_id": "t/message/1", "version": position,
            "global_position": position, "tenant_id": "t", "type": "MessageQueued", "schema_version": 1,
            "occurred_at": "2026-11-01T00:00:00Z", "recorded_at": "2026-11-01T00:00:00Z",
            "correlation_id": uuid::Uuid::now_v7(), "causation_id": null, "actor": "test", "data": {}
        });
        serde_json::from_value(json).expect("a recorded event")
    }

    #[tokio::test]
    async fn stops_at_the_first_failure_and_names_it() {
        let records: Vec<_> = (1..=4)
            .map(|n| RecordEvents { sequence_number: format!("seq-{n}"), events: vec![event(n)] })
            .collect();
        let applied = Mutex::new(Vec::new());
        let response = consume(records, |events| {
            let position = events[0].global_position;
            applied.lock().unwrap().push(position);
            async move {
                if position == 3 {
                    Err("read model unavailable")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(*applied.lock().unwrap(), vec![1, 2, 3], "nothing after the failed record is applied");
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, vec![Some("seq-3".to_string())]);
    }

    #[tokio::test]
    async fn a_clean_batch_reports_nothing() {
        let records = vec![RecordEvents { sequence_number: "seq-1".into(), events: vec![event(1)] }];
        let response = consume(records, |_| async { Ok::<_, String>(()) }).await;
        assert!(response.batch_item_failures.is_empty());
    }
}
