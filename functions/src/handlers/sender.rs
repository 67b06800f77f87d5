//! The outbound sender on SQS: one Lambda invocation handles one batch.
//!
//! Every message of the batch runs concurrently through the same
//! `App::handle_outbound_delivery` the local worker loop uses. A message that
//! must come back later (backoff) or whose bookkeeping failed is reported as a
//! batch item failure (`ReportBatchItemFailures`), so Lambda leaves it on the
//! queue; after the queue's `maxReceiveCount` it moves to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use parley_app::queue::Delivery;
use parley_app::services::sender::Handled;
use parley_app::App;

/// The queue delivery a record stands for; `None` for a record without a
/// receipt handle, which Lambda never sends.
pub fn delivery(record: &SqsMessage) -> Option<Delivery> {
    let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
    Some(Delivery {
        body: record.body.clone().unwrap_or_default(),
        receipt: record.receipt_handle.clone()?,
        receive_count,
    })
}

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let work = event.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(delivery) = delivery(record) else {
            return Some(id);
        };
        match app.handle_outbound_delivery(&delivery).await {
            Ok(Handled::Acked) => None,
            Ok(Handled::RetryLater) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, message_id = %id, "outbound delivery failed");
                Some(id)
            }
        }
    });
    let failed = futures::future::join_all(work).await.into_iter().flatten();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
