//! Analytics (SPEC 5.8): counters per tenant, day and business number,
//! first-response samples and template sends, with the same rules as the
//! SQLite projection.
//!
//! Every message has an analytics row (its marker) remembering the day and
//! number it counts on and which statuses it has counted. The projector
//! folds a message's new events into the row and writes, in one
//! transaction, the row (conditional on the stream version it read) and the
//! additions to its day's counter. A redelivered event is at or below the
//! row's version and adds nothing; two projectors racing on one message
//! cannot both add.
//!
//! A conversation waiting for an answer has an item saying since when. The
//! message that answers it records its first-response time and deletes that
//! item in the same transaction. Messages of one conversation live in
//! different streams, so this relies on the inbound message being projected
//! before the answer, which stream order gives unless the two are written
//! within the same moment.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::NaiveDate;
use parley_app::error::AppError;
use parley_app::readmodel::analytics::{AnalyticsReadModel, DailyRows};
use parley_events::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::super::event_store::Item;
use super::super::read_models::rows::micros;
use super::super::read_models::{internal, s, PK, ROW, SK, VERSION};
use super::jobs::by_stream;
use super::{number_attribute, row_key, text_attribute, DynamoOpsReadModels, MAX_ATTEMPTS};

/// Counter attributes of template sends by name and failures by kind.
const TEMPLATE_PREFIX: &str = "t:";
const FAILURE_PREFIX: &str = "f:";
/// The attribute of a first-response sample (counter items have none).
const SECONDS: &str = "seconds";

fn message_pk(tenant_id: &str, message_id: &str) -> String {
    format!("AMSG#{tenant_id}#{message_id}")
}

fn counters_pk(tenant_id: &str) -> String {
    format!("ANL#{tenant_id}")
}

fn awaiting_pk(tenant_id: &str, conversation_id: &str) -> String {
    format!("AWAIT#{tenant_id}#{conversation_id}")
}

/// What one message counts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MessageRow {
    number_id: String,
    day: String,
    outbound: bool,
    delivered: bool,
    read: bool,
    failed: bool,
}

/// How a message's first event touches its conversation's waiting state.
#[derive(Debug, Clone, PartialEq)]
enum Conversation {
    /// A customer wrote at this time (Unix microseconds).
    Waits { conversation_id: String, since: i64 },
    /// The business answered at this time.
    Answered { conversation_id: String, at: i64 },
}

/// A message's row after some of its events, and what they add.
#[derive(Debug, Default)]
struct Fold {
    row: Option<MessageRow>,
    added: BTreeMap<String, i64>,
    conversation: Option<Conversation>,
}

fn time(v: &Value, event: &RecordedEvent) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(event.recorded_at, |t| t.with_timezone(&chrono::Utc))
}

impl Fold {
    fn add(&mut self, counter: impl Into<String>) {
        *self.added.entry(counter.into()).or_default() += 1;
    }

    fn apply(&mut self, event: &RecordedEvent, templates: &HashMap<Uuid, String>) {
        let d = &event.data;
        let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
        let t = event.event_type.as_str();
        match (t, self.row.as_mut()) {
            ("MessageReceived", None) => {
                let at = time(&d["sent_at"], event);
                self.row = Some(MessageRow {
                    number_id: text("number_id"),
                    day: at.date_naive().to_string(),
                    outbound: false,
                    delivered: false,
                    read: false,
                    failed: false,
                });
                self.add("inbound");
                self.conversation =
                    Some(Conversation::Waits { conversation_id: text("conversation_id"), since: micros(at) });
            }
            ("MessageQueued", None) => {
                let at = time(&d["queued_at"], event);
                self.row = Some(MessageRow {
                    number_id: text("number_id"),
                    day: at.date_naive().to_string(),
                    outbound: true,
                    delivered: false,
                    read: false,
                    failed: false,
                });
                self.add("outbound");
                let id: Option<Uuid> = d["message_id"].as_str().and_then(|id| id.parse().ok());
                if let Some(name) = id.and_then(|id| templates.get(&id)) {
                    self.add(format!("{TEMPLATE_PREFIX}{name}"));
                }
                self.conversation =
                    Some(Conversation::Answered { conversation_id: text("conversation_id"), at: micros(at) });
            }
            // A failure is counted once per message.
            ("MessageFailed", Some(row)) if row.outbound && !row.failed => {
                row.failed = true;
                let kind = d["failure"]["kind"].as_str().unwrap_or("unknown").to_owned();
                self.add("failed");
                self.add(format!("{FAILURE_PREFIX}{kind}"));
            }
            ("MessageDelivered" | "MessageRead" | "MessagePlayed", Some(row)) if row.outbound => {
                // A read message was delivered, whether or not `delivered` came.
                let (newly_delivered, newly_read) = (!row.delivered, t != "MessageDelivered" && !row.read);
                row.delivered = true;
                row.read |= newly_read;
                if newly_delivered {
                    self.add("delivered");
                }
                if newly_read {
                    self.add("read");
                }
            }
            _ => {}
        }
    }
}

impl DynamoOpsReadModels {
    pub(super) async fn apply_analytics(
        &self,
        events: &[RecordedEvent],
        templates: &HashMap<Uuid, String>,
    ) -> Result<(), AppError> {
        for ((tenant_id, message_id), events) in by_stream(events, "/message/") {
            self.apply_message(&tenant_id, &message_id, &events, templates).await?;
        }
        Ok(())
    }

    /// Folds one message's events into its row and counters, exactly once.
    async fn apply_message(
        &self,
        tenant_id: &str,
        message_id: &str,
        events: &[&RecordedEvent],
        templates: &HashMap<Uuid, String>,
    ) -> Result<(), AppError> {
        let pk = message_pk(tenant_id, message_id);
        for _ in 0..MAX_ATTEMPTS {
            let stored = self.rows.get::<MessageRow>(&pk).await?;
            let read_version = stored.as_ref().map(|(_, version)| *version);
            let mut fold = Fold { row: stored.map(|(row, _)| row), ..Fold::default() };
            let mut version = read_version.unwrap_or(0);
            for event in events.iter().filter(|e| e.version > read_version.unwrap_or(0)) {
                fold.apply(event, templates);
                version = event.version;
            }
            let Some(row) = fold.row.clone().filter(|_| !fold.added.is_empty()) else {
                // Nothing to count: a redelivery, or events analytics ignores.
                return Ok(());
            };
            let mut items = vec![self.put_row(&pk, &row, version, read_version)?];
            let counters = (counters_pk(tenant_id), format!("{}#{}", row.day, row.number_id));
            items.push(self.add_to_counter(&counters, &row, &fold.added)?);
            match &fold.conversation {
                Some(Conversation::Waits { conversation_id, since }) => {
                    let update = Update::builder()
                        .table_name(self.table())
                        .set_key(Some(row_key(awaiting_pk(tenant_id, conversation_id)).into_iter().collect()))
                        .update_expression("SET #since = if_not_exists(#since, :since)")
                        .expression_attribute_names("#since", "since")
                        .expression_attribute_values(":since", AttributeValue::N(since.to_string()))
                        .build()
                        .map_err(internal)?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
                Some(Conversation::Answered { conversation_id, at }) => {
                    let awaiting = awaiting_pk(tenant_id, conversation_id);
                    if let Some(waiting) = self.item(&awaiting, ROW).await? {
                        let since = number_attribute(&waiting, "since");
                        let response: Item = [
                            (PK.to_owned(), s(counters.0.clone())),
                            (SK.to_owned(), s(format!("{}#{message_id}", counters.1))),
                            ("day".to_owned(), s(row.day.clone())),
                            ("number_id".to_owned(), s(row.number_id.clone())),
                            (SECONDS.to_owned(), AttributeValue::N(((at - since) / 1_000_000).max(0).to_string())),
                        ]
                        .into();
                        let put = Put::builder().table_name(self.table()).set_item(Some(response)).build();
                        items.push(TransactWriteItem::builder().put(put.map_err(internal)?).build());
                        // Only the wait this answer saw: a newer one stays for the next answer.
                        let delete = Delete::builder()
                            .table_name(self.table())
                            .set_key(Some(row_key(awaiting).into_iter().collect()))
                            .condition_expression("#since = :since")
                            .expression_attribute_names("#since", "since")
                            .expression_attribute_values(":since", AttributeValue::N(since.to_string()))
                            .build()
                            .map_err(internal)?;
                        items.push(TransactWriteItem::builder().delete(delete).build());
                    }
                }
                None => {}
            }
            if self.transact(items).await? {
                return Ok(());
            }
        }
        Err(AppError::internal(format!("analytics of message {message_id} kept changing under the projector")))
    }

    /// The row's put, conditional on the version it was read at.
    fn put_row(
        &self,
        pk: &str,
        row: &MessageRow,
        version: u64,
        read_version: Option<u64>,
    ) -> Result<TransactWriteItem, AppError> {
        let mut item: Item = serde_dynamo::to_item(row).map_err(AppError::internal)?;
        item.extend(row_key(pk.to_owned()));
        item.insert(VERSION.into(), AttributeValue::N(version.to_string()));
        let put = Put::builder().table_name(self.table()).set_item(Some(item));
        let put = match read_version {
            Some(read) => put
                .condition_expression("#ver = :read")
                .expression_attribute_names("#ver", VERSION)
                .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
            None => put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(internal)?).build())
    }

    /// Adds `added` to the day-and-number counter item `key`.
    fn add_to_counter(
        &self,
        key: &(String, String),
        row: &MessageRow,
        added: &BTreeMap<String, i64>,
    ) -> Result<TransactWriteItem, AppError> {
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PK, s(key.0.clone()))
            .key(SK, s(key.1.clone()))
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#number", "number_id")
            .expression_attribute_values(":day", s(row.day.clone()))
            .expression_attribute_values(":number", s(row.number_id.clone()));
        let mut additions = Vec::new();
        for (i, (counter, n)) in added.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#c{i}"), counter)
                .expression_attribute_values(format!(":c{i}"), AttributeValue::N(n.to_string()));
            additions.push(format!("#c{i} :c{i}"));
        }
        let expression = format!("SET #day = :day, #number = :number ADD {}", additions.join(", "));
        Ok(TransactWriteItem::builder().update(update.update_expression(expression).build().map_err(internal)?).build())
    }
}

#[async_trait]
impl AnalyticsReadModel for DynamoOpsReadModels {
    async fn daily(
        &self,
        tenant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
        number_id: Option<&str>,
    ) -> Result<DailyRows, AppError> {
        let mut rows = DailyRows::new();
        if from > to {
            return Ok(rows);
        }
        // Sort keys are `day#number[#message]`: `~` sorts after all of them.
        let (first, last) = (from.to_string(), format!("{to}~"));
        for item in self.partition(&counters_pk(tenant_id), Some((&first, &last))).await? {
            let (Some(day), Some(number)) = (text_attribute(&item, "day"), text_attribute(&item, "number_id")) else {
                continue;
            };
            if number_id.is_some_and(|wanted| wanted != number) {
                continue;
            }
            let Ok(date) = day.parse::<NaiveDate>() else { continue };
            let entry = rows.entry((date, number.to_owned())).or_default();
            if item.contains_key(SECONDS) {
                entry.first_response_secs.push(number_attribute(&item, SECONDS));
                continue;
            }
            let count = |name: &str| number_attribute(&item, name).max(0) as u64;
            entry.inbound = count("inbound");
            entry.outbound = count("outbound");
            entry.delivered = count("delivered");
            entry.read = count("read");
            entry.failed = count("failed");
            for name in item.keys() {
                if let Some(template) = name.strip_prefix(TEMPLATE_PREFIX) {
                    entry.templates.insert(template.to_owned(), count(name));
                } else if let Some(kind) = name.strip_prefix(FAILURE_PREFIX) {
                    entry.failed_by_kind.insert(kind.to_owned(), count(name));
                }
            }
        }
        Ok(rows)
    }
}
