//! The back office's read models (jobs, analytics, billing) in the same
//! single table as [`DynamoReadModels`], with the projector that keeps them
//! up to date from the events.
//!
//! Rows that follow one stream (a job, an invoice) are written as the message
//! read models are: folded in memory and put back conditional on the stream
//! version they were read at, so redelivered events change nothing.
//!
//! Counters (analytics per day and number, usage per month and category)
//! add up events of many streams, so a version per counter cannot tell a new
//! event from a redelivered one. Each counted message has a marker item
//! instead (its analytics row, its meter), and the marker and the counter are
//! written in one `TransactWriteItems`, conditional on the marker: a
//! redelivered event finds its marker and adds nothing. The layout and the
//! cost of that choice are in `events/docs/dynamodb.md`.
//!
//! | Item | `pk` | `sk` | Indexes |
//! | --- | --- | --- | --- |
//! | job | `JOB#tenant#id` | `#` | `gsi2`: `JOBS#tenant`, `created#id` |
//! | invoice | `INV#tenant#month` | `#` | `gsi1`: `INVOICE#tenant#id`; `gsi2`: `INVS#tenant`, month; `gsi3`: `EXTINV#external id`; `gsi4`: `FAILED_INVOICES`, `tenant#month` (sparse) |
//! | analytics of a message | `AMSG#tenant#message` | `#` | |
//! | day counter | `ANL#tenant` | `day#number` | |
//! | first response | `ANL#tenant` | `day#number#message` | |
//! | waiting conversation | `AWAIT#tenant#conversation` | `#` | |
//! | meter of a message | `METER#tenant#message` | `#` | |
//! | month usage | `USAGE#tenant` | month | |
//! | billed tenant | `BILLED` | tenant | |
//!
//! [`DynamoReadModels`]: super::DynamoReadModels

mod analytics;
mod billing;
mod jobs;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use parley_app::error::AppError;
use parley_app::sealing::EventSealer;
use parley_events::{Projection, ProjectionError, RecordedEvent};

use super::capacity::{CapacityUnits, Kind};
use super::event_store::Item;
use super::read_models::{internal, s, PK, ROW, SK};
use super::DynamoReadModels;

/// How often a counter write is retried when another projector got there first.
const MAX_ATTEMPTS: usize = 8;

/// The DynamoDB adapter of [`JobReadModel`](parley_app::readmodel::jobs::JobReadModel),
/// [`AnalyticsReadModel`](parley_app::readmodel::analytics::AnalyticsReadModel) and
/// [`BillingReadModel`](parley_app::readmodel::billing::BillingReadModel), and its projector.
pub struct DynamoOpsReadModels {
    rows: DynamoReadModels,
    /// Opens sealed template sends to count them by name.
    sealer: Arc<EventSealer>,
}

impl std::fmt::Debug for DynamoOpsReadModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoOpsReadModels").field("table", &self.rows.table()).finish_non_exhaustive()
    }
}

impl DynamoOpsReadModels {
    /// The read models in the read-model table `table` (see [`DynamoReadModels::create_table`]).
    pub fn new(client: Client, table: impl Into<String>, sealer: Arc<EventSealer>) -> Self {
        DynamoOpsReadModels { rows: DynamoReadModels::new(client, table), sealer }
    }

    /// The capacity units the projector and the queries have consumed so far.
    pub fn consumed_capacity(&self) -> CapacityUnits {
        self.rows.consumed_capacity()
    }

    /// Applies events to the rows and counters they concern. Idempotent:
    /// a stream batch may be delivered again, or a rebuild replay the log.
    pub async fn apply(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        self.apply_jobs(events).await?;
        self.apply_invoices(events).await?;
        self.apply_usage(events).await?;
        let templates = parley_app::readmodel::analytics::template_names(&self.sealer, events).await?;
        self.apply_analytics(events, &templates).await
    }

    /// The projection the local [`ProjectionRunner`](parley_events::ProjectionRunner)
    /// and the conformance suite drive. It keeps no checkpoint (its items
    /// remember what they applied), so a runner hands it the whole log each
    /// time: which is what a redelivering stream does.
    pub fn projection(self: &Arc<Self>) -> Arc<dyn Projection> {
        Arc::new(OpsProjection(self.clone()))
    }

    fn client(&self) -> &Client {
        self.rows.client()
    }

    fn table(&self) -> &str {
        self.rows.table()
    }

    /// Runs one transaction; `false` when a condition failed or another
    /// transaction collided with it (the caller reads again and decides).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, AppError> {
        let request = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        match request.send().await {
            Ok(output) => {
                self.rows.meter().record(Kind::Write, output.consumed_capacity());
                Ok(true)
            }
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(internal(error)),
        }
    }

    /// The item with this key, read consistently.
    async fn item(&self, pk: &str, sk: &str) -> Result<Option<Item>, AppError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(internal)?;
        self.rows.meter().record(Kind::Read, output.consumed_capacity());
        Ok(output.item)
    }

    /// Every item of a partition with a sort key from `from` to `to` (both inclusive).
    async fn partition(&self, pk: &str, range: Option<(&str, &str)>) -> Result<Vec<Item>, AppError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client()
                .query()
                .table_name(self.table())
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            request = match range {
                Some((from, to)) => request
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to)),
                None => request.key_condition_expression("#pk = :pk"),
            };
            let output = request.send().await.map_err(internal)?;
            self.rows.meter().record(Kind::Read, output.consumed_capacity());
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(items),
            }
        }
    }
}

/// The key of a row item (one item per row, sort key `#`).
fn row_key(pk: String) -> [(String, AttributeValue); 2] {
    [(PK.to_owned(), s(pk)), (SK.to_owned(), s(ROW))]
}

fn number_attribute(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn text_attribute<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text),
        _ => None,
    }
}

/// The entity id at the end of a stream id (`tenant/kind/id`).
fn stream_entity(stream_id: &str) -> Option<&str> {
    stream_id.rsplit('/').next().filter(|id| !id.is_empty())
}

struct OpsProjection(Arc<DynamoOpsReadModels>);

#[async_trait]
impl Projection for OpsProjection {
    fn name(&self) -> &str {
        "dynamodb-ops"
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(0)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.0.apply(events).await.map_err(ProjectionError::read_model)
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        Err(ProjectionError::read_model(AppError::internal(
            "the DynamoDB back-office read models are rebuilt by replaying the log into a fresh table",
        )))
    }
}
