//! The job runner on SQS: one Lambda invocation handles one batch of queued
//! jobs (exports), through the same `Ops::run_job` the local worker runs.
//!
//! A job whose attempt ended (succeeded, failed, or failed to be retried) is
//! done with its message: retries are new messages, sent by the reactor
//! after the pause the job's failure asks for. Only an attempt whose
//! bookkeeping failed is reported as a batch item failure, so Lambda leaves
//! the message on the queue; after the queue's `maxReceiveCount` it moves to
//! the dead-letter queue. A runner that finds its job running was
//! interrupted, and counts that attempt as failed.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use parley_app::ops::Ops;
use parley_app::services::jobs::JobMessage;

pub async fn handle(ops: &Ops, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    // One at a time: a job is a long export, and the function's memory is sized for one.
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let Ok(message) = serde_json::from_str::<JobMessage>(body) else {
            tracing::error!(message_id = %id, body, "dropping a malformed job message");
            continue;
        };
        if let Err(e) = ops.run_job(&message.tenant_id, message.job_id).await {
            tracing::error!(job_id = %message.job_id, error = %e, "job runner failed; the queue delivers it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
