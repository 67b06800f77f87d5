//! The read models in one DynamoDB table (single-table design), with the
//! projector that keeps them up to date from the events.
//!
//! Every row is one item (`pk` = kind and id, `sk` = `#`) holding the row's
//! fields and `ver`, the version of the last event of its stream that
//! changed it. The projector folds a row's events in memory (the same rules
//! as the SQLite projections, see [`rows`]) and writes the row back with one
//! `PutItem` conditional on the row still being at the version it read, so
//! redelivered or replayed events (version ≤ `ver`) change nothing and two
//! projectors racing on a row cannot lose an update. Four global secondary
//! indexes answer the queries:
//!
//! | Index | Partition key | Sort key | Rows |
//! | --- | --- | --- | --- |
//! | `gsi1` | `CONV#tenant#conversation` | `created#id` | messages by conversation |
//! | `gsi2` | `MSGS#tenant`, `CONVS#tenant`, `NUMS#tenant`, `CTS#tenant` | `created#id`, `activity#id`, number, `wa_id` | a tenant's messages, conversations by activity, numbers, contacts |
//! | `gsi3` | `TOKEN#sha256` | number | numbers by verify-token hash |
//! | `gsi4` | `OPEN` | `closes#tenant#id` | conversation windows not yet expired (sparse) |
//!
//! Times in sort keys are zero-padded Unix microseconds, so text order is
//! time order; `events/docs/dynamodb.md` has the costs.
//!
//! Message tags have one more item per tag of a message (`pk` =
//! `MTAG#tenant#tag`, `sk` = `conversation#message`), written in the same
//! transaction as the message row, so the conversations holding a message
//! with a tag are one query of the table. Listing conversations by tag reads
//! that partition (one item per tagged message), then filters the tenant's
//! conversations by activity as the other filters do: its cost grows with
//! the tenant's conversations skipped before a page fills, like a state or
//! window filter, plus the tag's messages.

pub mod rows;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ReturnConsumedCapacity, ScalarAttributeType, Select, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use parley_app::error::AppError;
use parley_app::readmodel::{
    cursor, AssigneeFilter, ClosedWindow, ContactFilter, ContactView, ConversationFilter, ConversationView,
    MessageView, NumberActivity, NumberView, Page, QueuedMessage, ReadModels, TemplateView, WindowFilter,
};
use parley_events::RecordedEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use self::rows::{micros, ContactRow, ConversationRow, MessageRow, NumberRow, RowKey, TemplateRow};
use super::capacity::{CapacityMeter, CapacityUnits, Kind};
use super::event_store::Item;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
/// The sort key of every row item (the table keeps one item per row).
pub(crate) const ROW: &str = "#";
/// The stream version of the last event that changed the row.
pub(crate) const VERSION: &str = "ver";
/// The partition key of every open window in `g4`.
const OPEN_WINDOWS: &str = "OPEN";
/// The partition key of every outbound message still queued in `g4`.
const QUEUED_MESSAGES: &str = "QUEUED";
/// The partition key of every number in `g4`, sorted by tenant.
const NUMBERED_TENANTS: &str = "TENANTS";
/// How often a projector retries a row another projector changed meanwhile.
const MAX_ROW_ATTEMPTS: usize = 8;
/// The most rows one listing returns, as in the SQLite adapter.
const MAX_PAGE: usize = 200;

/// The global secondary indexes: name, partition key, sort key, projected attributes (`None` = all).
const INDEXES: [(&str, &str, &str, Option<&[&str]>); 4] = [
    ("gsi1", "g1pk", "g1sk", None),
    ("gsi2", "g2pk", "g2sk", None),
    ("gsi3", "g3pk", "g3sk", None),
    ("gsi4", "g4pk", "g4sk", Some(&["tenant_id", "id", "wa_id"])),
];

pub(crate) fn internal<E: std::error::Error>(error: E) -> AppError {
    AppError::internal(DisplayErrorContext(error))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A sort key that orders by time, then id, as text.
pub(crate) fn order_key(micros: i64, id: impl std::fmt::Display) -> String {
    format!("{:020}#{id}", micros.max(0))
}

/// The exclusive upper bound of a page after `cursor`.
pub(crate) fn before_cursor(cursor: Option<&str>) -> Result<Option<String>, AppError> {
    Ok(cursor.map(cursor::decode).transpose()?.map(|(micros, id)| order_key(micros, id)))
}

/// Items kept beside a row, written in the same transaction as the row.
#[derive(Default)]
pub(crate) struct SideItems {
    pub(crate) puts: Vec<Item>,
    /// Primary keys (`pk`, `sk`) of items to delete.
    pub(crate) deletes: Vec<(String, String)>,
}

/// Where a row lives and how the indexes find it.
pub(crate) trait Stored: Serialize + DeserializeOwned + Clone + PartialEq {
    fn index_keys(&self) -> Vec<(&'static str, String)>;

    /// The items beside the row that change when it changes from `before`.
    fn side_items(&self, _before: Option<&Self>) -> SideItems {
        SideItems::default()
    }
}

fn message_pk(tenant_id: &str, id: impl std::fmt::Display) -> String {
    format!("MSG#{tenant_id}#{id}")
}

fn conversation_pk(tenant_id: &str, id: impl std::fmt::Display) -> String {
    format!("CONV#{tenant_id}#{id}")
}

fn number_pk(phone_number_id: &str) -> String {
    format!("NUM#{phone_number_id}")
}

fn template_pk(tenant_id: &str, name: &str, language: &str) -> String {
    format!("TPL#{tenant_id}#{name}#{language}")
}

fn contact_pk(tenant_id: &str, wa_id: &str) -> String {
    format!("CONTACT#{tenant_id}#{wa_id}")
}

/// The partition of the tagged messages of a tenant with this tag.
fn message_tag_pk(tenant_id: &str, tag: &str) -> String {
    format!("MTAG#{tenant_id}#{tag}")
}

impl Stored for MessageRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        let order = order_key(self.created_at, &self.id);
        let mut keys = vec![
            ("g1pk", format!("CONV#{}#{}", self.tenant_id, self.conversation_id)),
            ("g1sk", order.clone()),
            ("g2pk", format!("MSGS#{}", self.tenant_id)),
            ("g2sk", order),
        ];
        // Sparse: only while the message waits to go out.
        if self.status == "queued" && self.direction == "outbound" {
            keys.push(("g4pk", QUEUED_MESSAGES.to_owned()));
            keys.push(("g4sk", format!("{}#{}", order_key(self.created_at, &self.tenant_id), self.id)));
        }
        keys
    }

    /// One item per tag, naming the conversation, for the tag filter.
    fn side_items(&self, before: Option<&Self>) -> SideItems {
        let (now, then) = (self.tag_list(), before.map(MessageRow::tag_list).unwrap_or_default());
        let sk = format!("{}#{}", self.conversation_id, self.id);
        SideItems {
            puts: now
                .iter()
                .filter(|tag| !then.contains(tag))
                .map(|tag| {
                    Item::from([
                        (PK.to_owned(), s(message_tag_pk(&self.tenant_id, tag))),
                        (SK.to_owned(), s(sk.clone())),
                        ("conversation_id".to_owned(), s(self.conversation_id.clone())),
                    ])
                })
                .collect(),
            deletes: then
                .iter()
                .filter(|tag| !now.contains(tag))
                .map(|tag| (message_tag_pk(&self.tenant_id, tag), sk.clone()))
                .collect(),
        }
    }
}

impl Stored for ConversationRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys =
            vec![("g2pk", format!("CONVS#{}", self.tenant_id)), ("g2sk", order_key(self.activity_at, &self.id))];
        if let Some(closes) = self.awaits_closing() {
            keys.push(("g4pk", OPEN_WINDOWS.to_owned()));
            keys.push(("g4sk", format!("{}#{}", order_key(closes, &self.tenant_id), self.id)));
        }
        keys
    }
}

impl Stored for TemplateRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        vec![("g2pk", format!("TPLS#{}", self.tenant_id)), ("g2sk", format!("{}#{}", self.name, self.language))]
    }
}

impl Stored for ContactRow {
    /// An erased contact leaves the directory's index: it is listed no more.
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        if self.erased {
            return Vec::new();
        }
        vec![("g2pk", format!("CTS#{}", self.tenant_id)), ("g2sk", self.wa_id.clone())]
    }
}

impl Stored for NumberRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("g2pk", format!("NUMS#{}", self.tenant_id)),
            ("g2sk", self.phone_number_id.clone()),
            ("g3pk", format!("TOKEN#{}", self.verify_token_sha256)),
            ("g3sk", self.phone_number_id.clone()),
            // gsi1 holds messages by conversation; numbers by business account share it.
            ("g1pk", format!("WABA#{}", self.waba_id)),
            ("g1sk", self.phone_number_id.clone()),
            ("g4pk", NUMBERED_TENANTS.to_owned()),
            ("g4sk", format!("{}#{}", self.tenant_id, self.phone_number_id)),
        ]
    }
}

pub(crate) fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, AppError> {
    serde_dynamo::from_item(item.clone()).map_err(|e| AppError::internal(format!("read model row: {e}")))
}

/// The DynamoDB [`ReadModels`] adapter and its projector.
#[derive(Debug, Clone)]
pub struct DynamoReadModels {
    client: Client,
    table: String,
    meter: Arc<CapacityMeter>,
}

/// One query of an index, newest (or last) first.
pub(crate) struct IndexQuery<'a> {
    pub(crate) index: &'a str,
    pub(crate) partition: String,
    /// Only sort keys below this.
    pub(crate) below: Option<String>,
    /// Only sort keys above this.
    pub(crate) above: Option<String>,
    pub(crate) forward: bool,
}

impl DynamoReadModels {
    /// The read models in table `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), meter: Arc::default() }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn meter(&self) -> &CapacityMeter {
        &self.meter
    }

    /// The capacity units the projector and the queries have consumed so far.
    pub fn consumed_capacity(&self) -> CapacityUnits {
        self.meter.total()
    }

    /// Creates a read-model table named `name` with its four indexes.
    pub async fn create_table(client: &Client, name: &str) -> Result<(), AppError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let mut create = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK).map_err(internal)?)
            .attribute_definitions(attribute(SK).map_err(internal)?)
            .key_schema(key(PK, KeyType::Hash).map_err(internal)?)
            .key_schema(key(SK, KeyType::Range).map_err(internal)?);
        for (index, pk, sk, projected) in INDEXES {
            let projection = match projected {
                None => Projection::builder().projection_type(ProjectionType::All).build(),
                Some(attributes) => attributes
                    .iter()
                    .fold(Projection::builder().projection_type(ProjectionType::Include), |p, a| {
                        p.non_key_attributes(*a)
                    })
                    .build(),
            };
            create = create
                .attribute_definitions(attribute(pk).map_err(internal)?)
                .attribute_definitions(attribute(sk).map_err(internal)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .key_schema(key(pk, KeyType::Hash).map_err(internal)?)
                        .key_schema(key(sk, KeyType::Range).map_err(internal)?)
                        .projection(projection)
                        .build()
                        .map_err(internal)?,
                );
        }
        create.send().await.map_err(internal)?;
        super::event_store::wait_until_active(client, name).await.map_err(AppError::internal)
    }

    /// Applies events to the rows they concern. Idempotent: events a row has
    /// already taken (by stream version) are skipped, so a stream batch may be
    /// delivered again, or a rebuild replay the log over existing rows.
    pub async fn apply(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        let mut groups: Vec<(RowKey, Vec<&RecordedEvent>)> = Vec::new();
        let mut index: HashMap<RowKey, usize> = HashMap::new();
        for event in events {
            let Some(key) = RowKey::of(event) else { continue };
            let slot = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(event);
        }
        for (key, mut events) in groups {
            events.sort_by_key(|event| event.version);
            match key {
                RowKey::Message { tenant_id, id } => {
                    self.apply_row(message_pk(&tenant_id, id), &events, |row, e| {
                        MessageRow::apply(row, &tenant_id, id, e)
                    })
                    .await?
                }
                RowKey::Conversation { tenant_id, id } => {
                    self.apply_row(conversation_pk(&tenant_id, id), &events, |row, e| {
                        ConversationRow::apply(row, &tenant_id, id, e)
                    })
                    .await?
                }
                RowKey::Number { phone_number_id } => {
                    self.apply_row(number_pk(&phone_number_id), &events, NumberRow::apply).await?
                }
                RowKey::Contact { tenant_id, wa_id } => {
                    self.apply_row(contact_pk(&tenant_id, &wa_id), &events, |row, e| {
                        ContactRow::apply(row, &tenant_id, &wa_id, e)
                    })
                    .await?
                }
                RowKey::Template { tenant_id, name, language } => {
                    self.apply_row(template_pk(&tenant_id, &name, &language), &events, |row, e| {
                        TemplateRow::apply(row, &tenant_id, &name, &language, e)
                    })
                    .await?
                }
            }
        }
        Ok(())
    }

    /// Folds `events` (one row's, in version order) into the row and writes
    /// it if it changed, conditional on nobody having written it meanwhile.
    pub(crate) async fn apply_row<T: Stored>(
        &self,
        pk: String,
        events: &[&RecordedEvent],
        fold: impl Fn(Option<T>, &RecordedEvent) -> Option<T>,
    ) -> Result<(), AppError> {
        for _ in 0..MAX_ROW_ATTEMPTS {
            let stored = self.get::<T>(&pk).await?;
            let read_version = stored.as_ref().map(|(_, version)| *version);
            let before = stored.map(|(row, _)| row);
            let (mut row, mut version) = (before.clone(), read_version.unwrap_or(0));
            for event in events.iter().filter(|e| e.version > read_version.unwrap_or(0)) {
                row = fold(row, event);
                if row.is_some() {
                    version = event.version;
                }
            }
            let Some(row) = row.filter(|row| before.as_ref() != Some(row)) else {
                // Nothing changed: a redelivery, or events that leave the row as it is.
                return Ok(());
            };
            let side = row.side_items(before.as_ref());
            let mut item: Item = serde_dynamo::to_item(&row).map_err(AppError::internal)?;
            item.insert(PK.into(), s(pk.clone()));
            item.insert(SK.into(), s(ROW));
            item.insert(VERSION.into(), AttributeValue::N(version.to_string()));
            for (name, value) in row.index_keys() {
                item.insert(name.into(), s(value));
            }
            if !side.puts.is_empty() || !side.deletes.is_empty() {
                if self.write_with_side_items(item, read_version, side).await? {
                    return Ok(());
                }
                continue;
            }
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let put = match read_version {
                Some(read) => put
                    .condition_expression("#ver = :read")
                    .expression_attribute_names("#ver", VERSION)
                    .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
                None => put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK),
            };
            match put.send().await {
                Ok(output) => {
                    self.meter.record(Kind::Write, output.consumed_capacity());
                    return Ok(());
                }
                Err(error)
                    if matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) =>
                {
                    continue;
                }
                Err(error) => return Err(internal(error)),
            }
        }
        Err(AppError::internal(format!("read model row {pk} kept changing under the projector")))
    }

    /// Writes a row and the items beside it in one transaction, conditional
    /// as a lone row write is. `false` when the row changed meanwhile.
    async fn write_with_side_items(
        &self,
        item: Item,
        read_version: Option<u64>,
        side: SideItems,
    ) -> Result<bool, AppError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match read_version {
            Some(read) => put
                .condition_expression("#ver = :read")
                .expression_attribute_names("#ver", VERSION)
                .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
            None => put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK),
        };
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.build().map_err(internal)?).build());
        for item in side.puts {
            let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(internal)?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        for (pk, sk) in side.deletes {
            let delete =
                Delete::builder().table_name(&self.table).key(PK, s(pk)).key(SK, s(sk)).build().map_err(internal)?;
            request = request.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        match request.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await {
            Ok(output) => {
                self.meter.record(Kind::Write, output.consumed_capacity());
                Ok(true)
            }
            // Canceled by the row's condition or a concurrent transaction: read again.
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

    /// The conversations of a tenant holding a message with `tag`.
    async fn conversations_tagged(&self, tenant_id: &str, tag: &str) -> Result<HashSet<String>, AppError> {
        let mut conversations = HashSet::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(message_tag_pk(tenant_id, tag)))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(internal)?;
            self.meter.record(Kind::Read, output.consumed_capacity());
            for item in output.items() {
                if let Some(AttributeValue::S(conversation)) = item.get("conversation_id") {
                    conversations.insert(conversation.clone());
                }
            }
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(conversations),
            }
        }
    }

    /// A row and its version.
    pub(crate) async fn get<T: DeserializeOwned>(&self, pk: &str) -> Result<Option<(T, u64)>, AppError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(ROW))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(internal)?;
        self.meter.record(Kind::Read, output.consumed_capacity());
        let Some(item) = output.item() else { return Ok(None) };
        let version = match item.get(VERSION) {
            Some(AttributeValue::N(n)) => n.parse().map_err(AppError::internal)?,
            _ => 0,
        };
        Ok(Some((from_item(item)?, version)))
    }

    /// Rows of an index in sort order, page by page, until `want` returns false.
    pub(crate) async fn scan_index<T: DeserializeOwned>(
        &self,
        query: IndexQuery<'_>,
        mut want: impl FnMut(T) -> bool,
    ) -> Result<(), AppError> {
        let (_, pk_name, sk_name, _) = INDEXES
            .iter()
            .find(|(name, ..)| *name == query.index)
            .copied()
            .ok_or_else(|| AppError::internal(format!("no index {}", query.index)))?;
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(query.index)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(query.partition.clone()))
                .scan_index_forward(query.forward)
                .set_exclusive_start_key(start.take());
            request = match (&query.below, &query.above) {
                (Some(below), _) => request
                    .key_condition_expression("#pk = :pk AND #sk < :below")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":below", s(below.clone())),
                (None, Some(above)) => request
                    .key_condition_expression("#pk = :pk AND #sk > :above")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":above", s(above.clone())),
                (None, None) => request.key_condition_expression("#pk = :pk"),
            };
            let output =
                request.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await.map_err(internal)?;
            self.meter.record(Kind::Read, output.consumed_capacity());
            for item in output.items() {
                if !want(from_item(item)?) {
                    return Ok(());
                }
            }
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(()),
            }
        }
    }

    /// Up to `limit` rows matching `keep`, newest first, with the next page's cursor.
    pub(crate) async fn page<T: DeserializeOwned, V>(
        &self,
        query: IndexQuery<'_>,
        limit: usize,
        keep: impl Fn(&T) -> bool,
        view: impl Fn(&T) -> Result<(V, String), AppError>,
    ) -> Result<Page<V>, AppError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows = Vec::new();
        self.scan_index(query, |row: T| {
            if keep(&row) {
                rows.push(row);
            }
            rows.len() <= limit
        })
        .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let mut items = Vec::with_capacity(rows.len());
        let mut next_cursor = None;
        for row in &rows {
            let (item, cursor) = view(row)?;
            items.push(item);
            next_cursor = Some(cursor);
        }
        Ok(Page { items, next_cursor: next_cursor.filter(|_| more) })
    }
}

#[async_trait]
impl ReadModels for DynamoReadModels {
    async fn message(&self, tenant_id: &str, id: Uuid) -> Result<Option<MessageView>, AppError> {
        self.get::<MessageRow>(&message_pk(tenant_id, id)).await?.map(|(row, _)| row.view()).transpose()
    }

    async fn messages(
        &self,
        tenant_id: &str,
        conversation_id: Option<Uuid>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<MessageView>, AppError> {
        let (index, partition) = match conversation_id {
            Some(conversation) => ("gsi1", format!("CONV#{tenant_id}#{conversation}")),
            None => ("gsi2", format!("MSGS#{tenant_id}")),
        };
        let query = IndexQuery { index, partition, below: before_cursor(cursor)?, above: None, forward: false };
        self.page(
            query,
            limit,
            |_: &MessageRow| true,
            |row| {
                let view = row.view()?;
                let cursor = cursor::encode(micros(view.created_at), view.id);
                Ok((view, cursor))
            },
        )
        .await
    }

    async fn conversation(&self, tenant_id: &str, id: Uuid) -> Result<Option<ConversationView>, AppError> {
        self.get::<ConversationRow>(&conversation_pk(tenant_id, id)).await?.map(|(row, _)| row.view()).transpose()
    }

    async fn conversations(
        &self,
        tenant_id: &str,
        filter: &ConversationFilter,
        now: DateTime<Utc>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ConversationView>, AppError> {
        let query = IndexQuery {
            index: "gsi2",
            partition: format!("CONVS#{tenant_id}"),
            below: before_cursor(cursor)?,
            above: None,
            forward: false,
        };
        let tagged = match &filter.tag {
            Some(tag) => Some(self.conversations_tagged(tenant_id, tag).await?),
            None => None,
        };
        let now = micros(now);
        let keep = |row: &ConversationRow| {
            let open = row.window_closes_at.unwrap_or(0) > now;
            filter.state.as_ref().is_none_or(|state| &row.state == state)
                && filter.number_id.as_ref().is_none_or(|number| &row.number_id == number)
                && match filter.window {
                    None => true,
                    Some(WindowFilter::Open) => open,
                    Some(WindowFilter::Closed) => !open,
                }
                && tagged.as_ref().is_none_or(|tagged| tagged.contains(&row.id))
                && match &filter.assignee {
                    None => true,
                    Some(AssigneeFilter::Unassigned) => row.assignee.is_none(),
                    Some(AssigneeFilter::User(user)) => row.assignee.as_ref() == Some(user),
                }
        };
        self.page(query, limit, keep, |row| {
            let view = row.view()?;
            let cursor = cursor::encode(micros(view.activity_at), view.id);
            Ok((view, cursor))
        })
        .await
    }

    async fn templates(&self, tenant_id: &str, name: Option<&str>) -> Result<Vec<TemplateView>, AppError> {
        let mut templates = Vec::new();
        // `name#language` sort keys: one name's rows lie between `name#` and `name$`.
        let (above, below) = match name {
            Some(name) => (Some(format!("{name}#")), Some(format!("{name}$"))),
            None => (None, None),
        };
        let query = IndexQuery { index: "gsi2", partition: format!("TPLS#{tenant_id}"), below, above, forward: true };
        self.scan_index(query, |row: TemplateRow| {
            if !row.deleted && name.is_none_or(|n| n == row.name) {
                templates.push(row.view());
            }
            true
        })
        .await?;
        Ok(templates)
    }

    async fn numbers_in_waba(&self, waba_id: &str) -> Result<Vec<NumberView>, AppError> {
        let mut numbers = Vec::new();
        let query =
            IndexQuery { index: "gsi1", partition: format!("WABA#{waba_id}"), below: None, above: None, forward: true };
        self.scan_index(query, |row: NumberRow| {
            numbers.push(row.view());
            true
        })
        .await?;
        Ok(numbers)
    }

    async fn numbers(&self, tenant_id: &str) -> Result<Vec<NumberView>, AppError> {
        let mut numbers = Vec::new();
        let query = IndexQuery {
            index: "gsi2",
            partition: format!("NUMS#{tenant_id}"),
            below: None,
            above: None,
            forward: true,
        };
        self.scan_index(query, |row: NumberRow| {
            numbers.push(row.view());
            true
        })
        .await?;
        Ok(numbers)
    }

    async fn contacts(
        &self,
        tenant_id: &str,
        filter: &ContactFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ContactView>, AppError> {
        let query = IndexQuery {
            index: "gsi2",
            partition: format!("CTS#{tenant_id}"),
            below: None,
            above: cursor.map(cursor::decode_key).transpose()?,
            forward: true,
        };
        let keep = |row: &ContactRow| {
            filter.opted_out.is_none_or(|opted_out| row.opted_out == opted_out)
                && filter.tag.as_ref().is_none_or(|tag| row.tags.contains(tag))
        };
        self.page(query, limit, keep, |row| Ok((row.view(), cursor::encode_key(&row.wa_id)))).await
    }

    async fn numbers_with_verify_token(&self, verify_token_sha256: &str) -> Result<Vec<NumberView>, AppError> {
        let mut numbers = Vec::new();
        let query = IndexQuery {
            index: "gsi3",
            partition: format!("TOKEN#{verify_token_sha256}"),
            below: None,
            above: None,
            forward: true,
        };
        self.scan_index(query, |row: NumberRow| {
            numbers.push(row.view());
            true
        })
        .await?;
        Ok(numbers)
    }

    async fn closed_windows(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ClosedWindow>, AppError> {
        #[derive(serde::Deserialize)]
        struct Open {
            tenant_id: String,
            id: String,
            wa_id: String,
        }
        let mut closed = Vec::new();
        if limit == 0 {
            return Ok(closed);
        }
        // Keys below the next microsecond's are the windows closed by `now`.
        let below = format!("{:020}", micros(now).max(0).saturating_add(1));
        let query = IndexQuery {
            index: "gsi4",
            partition: OPEN_WINDOWS.into(),
            below: Some(below),
            above: None,
            forward: true,
        };
        let mut failure = None;
        self.scan_index(query, |row: Open| {
            match row.id.parse() {
                Ok(conversation_id) => {
                    closed.push(ClosedWindow { tenant_id: row.tenant_id, conversation_id, wa_id: row.wa_id })
                }
                Err(_) => failure = Some(AppError::internal(format!("open window of {:?} has no uuid", row.id))),
            }
            failure.is_none() && closed.len() < limit
        })
        .await?;
        failure.map_or(Ok(closed), Err)
    }

    async fn queued_messages(&self, limit: usize) -> Result<Vec<QueuedMessage>, AppError> {
        #[derive(serde::Deserialize)]
        struct Queued {
            tenant_id: String,
            id: String,
        }
        let mut queued = Vec::new();
        if limit == 0 {
            return Ok(queued);
        }
        let query =
            IndexQuery { index: "gsi4", partition: QUEUED_MESSAGES.into(), below: None, above: None, forward: true };
        let mut failure = None;
        self.scan_index(query, |row: Queued| {
            match row.id.parse() {
                Ok(message_id) => queued.push(QueuedMessage { tenant_id: row.tenant_id, message_id }),
                Err(_) => failure = Some(AppError::internal(format!("queued message {:?} has no uuid", row.id))),
            }
            failure.is_none() && queued.len() < limit
        })
        .await?;
        failure.map_or(Ok(queued), Err)
    }

    async fn tenants(&self) -> Result<Vec<String>, AppError> {
        #[derive(serde::Deserialize)]
        struct Numbered {
            tenant_id: String,
        }
        let mut tenants: Vec<String> = Vec::new();
        let query =
            IndexQuery { index: "gsi4", partition: NUMBERED_TENANTS.into(), below: None, above: None, forward: true };
        self.scan_index(query, |row: Numbered| {
            // Sorted by tenant, so repeats are neighbours.
            if tenants.last() != Some(&row.tenant_id) {
                tenants.push(row.tenant_id);
            }
            true
        })
        .await?;
        Ok(tenants)
    }

    async fn remove_messages(&self, tenant_id: &str, ids: &[Uuid]) -> Result<(), AppError> {
        for id in ids {
            let pk = message_pk(tenant_id, id);
            let Some((row, _)) = self.get::<MessageRow>(&pk).await? else { continue };
            let sk = format!("{}#{}", row.conversation_id, row.id);
            let mut keys: Vec<(String, String)> =
                row.tag_list().iter().map(|tag| (message_tag_pk(tenant_id, tag), sk.clone())).collect();
            // The row last, so a removal cut short is finished by the next run.
            keys.push((pk, ROW.to_owned()));
            for (pk, sk) in keys {
                let output = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(PK, s(pk))
                    .key(SK, s(sk))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(internal)?;
                self.meter.record(Kind::Write, output.consumed_capacity());
            }
        }
        Ok(())
    }

    async fn restore_messages(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        let mut missing: HashMap<String, bool> = HashMap::new();
        let mut restore = Vec::new();
        for event in events {
            let Some(RowKey::Message { tenant_id, id }) = RowKey::of(event) else { continue };
            let absent = match missing.get(&event.stream_id) {
                Some(&absent) => absent,
                None => {
                    let absent = self.get::<MessageRow>(&message_pk(&tenant_id, id)).await?.is_none();
                    missing.insert(event.stream_id.clone(), absent);
                    absent
                }
            };
            if absent {
                restore.push(event.clone());
            }
        }
        self.apply(&restore).await
    }

    /// Reads the tenant's messages of the range newest first (one query of
    /// `gsi2`, bounded by the range) and keeps the number's outbound ones.
    async fn number_activity(
        &self,
        tenant_id: &str,
        phone_number_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<NumberActivity, AppError> {
        let (from, to) = (micros(from), micros(to));
        let query = IndexQuery {
            index: "gsi2",
            partition: format!("MSGS#{tenant_id}"),
            below: Some(order_key(to, "")),
            above: None,
            forward: false,
        };
        let mut activity = NumberActivity::default();
        self.scan_index(query, |row: MessageRow| {
            if row.created_at < from {
                return false;
            }
            let sender = row.sent_from.as_deref().unwrap_or(&row.number_id);
            if row.direction != "outbound" || sender != phone_number_id {
                return true;
            }
            let delivered = row.delivered_at.or(row.read_at);
            activity.messages += 1;
            activity.sent += u64::from(row.accepted_at.is_some());
            activity.delivered += u64::from(delivered.is_some());
            if row.failed_at.is_some() {
                let error: serde_json::Value =
                    row.error.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
                let kind = error.get("kind").and_then(serde_json::Value::as_str).unwrap_or("unknown").to_owned();
                *activity.failures.entry(kind).or_default() += 1;
            }
            if let (Some(accepted), Some(delivered)) = (row.accepted_at, delivered) {
                activity.delivery_latencies_ms.push((delivered - accepted).max(0) / 1000);
            }
            true
        })
        .await?;
        activity.delivery_latencies_ms.sort_unstable();
        Ok(activity)
    }

    async fn count_messages(&self, tenant_id: &str) -> Result<u64, AppError> {
        let mut count = 0u64;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi2")
                .key_condition_expression("g2pk = :pk")
                .expression_attribute_values(":pk", s(format!("MSGS#{tenant_id}")))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(internal)?;
            self.meter.record(Kind::Read, output.consumed_capacity());
            count += u64::try_from(output.count()).unwrap_or(0);
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(count),
            }
        }
    }
}
