//! The blind search index (`parley_app::search`) in the read-model table.
//!
//! | Item | `pk` | `sk` | Attributes |
//! | --- | --- | --- | --- |
//! | key | `SKEY#tenant` | `#` | `sealed`: the tenant's sealed search key |
//! | entry | `SDOC#tenant#message` | `#` | `at`: order key; `terms`: every term of the message |
//! | posting | `STERM#tenant#term` | `created#message` | none |
//!
//! A posting is its key alone (about 130 bytes), so indexing a message of
//! N distinct words writes N postings of 1 WCU each plus its entry: the cost
//! grows with the words, not with their square. A query reads the postings
//! of one term, newest first, and checks each candidate against the other
//! terms by key (`BatchGetItem` of the postings it would have), so a query of
//! several words costs the reads of one word's postings plus half a read
//! unit per candidate and further word. The application puts the likely
//! rarest word first (words with digits, then the longest). One message's
//! changes come from one stream, which DynamoDB Streams delivers in order to
//! one projector at a time.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use parley_app::error::AppError;
use parley_app::readmodel::{cursor, Page};
use parley_app::search::{SearchChange, SearchHit, SearchIndex};
use parley_vault::Sealed;
use uuid::Uuid;

use super::capacity::{CapacityMeter, CapacityUnits, Kind};
use super::read_models::rows::from_micros;
use super::read_models::{before_cursor, internal, order_key, s, PK, ROW, SK};

/// Items per `BatchWriteItem` call.
const BATCH: usize = 25;
/// Keys per `BatchGetItem` call.
const BATCH_GET: usize = 100;
/// Postings read per query page.
const PAGE_READ: i32 = 100;
/// Query pages one search reads at most before answering with what it
/// found and a cursor to go on from: a rare combination of common words
/// cannot make one request read a whole partition.
const MAX_PAGES_READ: usize = 10;
/// How often unprocessed batch items are sent again.
const MAX_BATCH_RETRIES: usize = 8;

pub struct DynamoSearchIndex {
    client: Client,
    table: String,
    page_read: i32,
    max_pages_read: usize,
    meter: CapacityMeter,
}

fn key_pk(tenant_id: &str) -> String {
    format!("SKEY#{tenant_id}")
}

fn entry_pk(tenant_id: &str, message_id: Uuid) -> String {
    format!("SDOC#{tenant_id}#{message_id}")
}

fn posting_pk(tenant_id: &str, term: &str) -> String {
    format!("STERM#{tenant_id}#{term}")
}

fn item(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// An entry as stored: its order key and terms.
struct Entry {
    order: String,
    terms: BTreeSet<String>,
}

impl DynamoSearchIndex {
    /// `table` is the read-model table (`DynamoReadModels::create_table` makes it).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSearchIndex {
            client,
            table: table.into(),
            page_read: PAGE_READ,
            max_pages_read: MAX_PAGES_READ,
            meter: CapacityMeter::default(),
        }
    }

    /// The capacity units this index's requests consumed so far.
    pub fn consumed_capacity(&self) -> CapacityUnits {
        self.meter.total()
    }

    /// Reads at most `pages` query pages of `page_size` postings per search.
    pub fn with_read_budget(mut self, page_size: i32, pages: usize) -> Self {
        (self.page_read, self.max_pages_read) = (page_size.max(1), pages.max(1));
        self
    }

    /// One row item (`sk` = `#`) by its partition key, read consistently.
    async fn row(&self, pk: String) -> Result<Option<HashMap<String, AttributeValue>>, AppError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item(pk, ROW.into())))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(internal)?;
        self.meter.record(Kind::Read, out.consumed_capacity());
        Ok(out.item)
    }

    async fn entry(&self, tenant_id: &str, message_id: Uuid) -> Result<Option<Entry>, AppError> {
        let Some(found) = self.row(entry_pk(tenant_id, message_id)).await? else { return Ok(None) };
        let order = found.get("at").and_then(|v| v.as_s().ok()).cloned();
        let terms = found.get("terms").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
        Ok(order.map(|order| Entry { order, terms: terms.into_iter().collect() }))
    }

    async fn add(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        created_at: chrono::DateTime<chrono::Utc>,
        terms: &[String],
    ) -> Result<(), AppError> {
        let existing = self.entry(tenant_id, message_id).await?;
        let order =
            existing.as_ref().map_or_else(|| order_key(created_at.timestamp_micros(), message_id), |e| e.order.clone());
        let before = existing.map(|e| e.terms).unwrap_or_default();
        let new: BTreeSet<&String> = terms.iter().filter(|t| !before.contains(*t)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut writes: Vec<WriteRequest> =
            new.iter().map(|term| put(item(posting_pk(tenant_id, term), order.clone()))).collect();
        // The entry last: until it lists a term, a retry writes that term's posting again.
        let all: Vec<String> = before.iter().cloned().chain(new.into_iter().cloned()).collect();
        let mut entry = item(entry_pk(tenant_id, message_id), ROW.into());
        entry.insert("at".into(), s(order));
        entry.insert("terms".into(), AttributeValue::Ss(all));
        writes.push(put(entry));
        self.write(writes).await
    }

    async fn forget(&self, tenant_id: &str, message_id: Uuid) -> Result<(), AppError> {
        let Some(entry) = self.entry(tenant_id, message_id).await? else { return Ok(()) };
        let mut writes: Vec<WriteRequest> =
            entry.terms.iter().map(|term| delete(item(posting_pk(tenant_id, term), entry.order.clone()))).collect();
        writes.push(delete(item(entry_pk(tenant_id, message_id), ROW.into())));
        self.write(writes).await
    }

    /// Writes in batches, sending unprocessed items again.
    async fn write(&self, writes: Vec<WriteRequest>) -> Result<(), AppError> {
        for chunk in writes.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(internal)?;
                self.meter.record(Kind::Write, out.consumed_capacity());
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == MAX_BATCH_RETRIES {
                    return Err(AppError::internal("search index: batch writes stayed unprocessed"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }
}

impl DynamoSearchIndex {
    /// The candidates (posting sort keys) that also have a posting of every
    /// one of `terms`.
    async fn having_all(
        &self,
        tenant_id: &str,
        candidates: &[String],
        terms: &[String],
    ) -> Result<BTreeSet<String>, AppError> {
        let keys: Vec<HashMap<String, AttributeValue>> = candidates
            .iter()
            .flat_map(|sk| terms.iter().map(move |term| item(posting_pk(tenant_id, term), sk.clone())))
            .collect();
        let mut found: HashMap<String, usize> = HashMap::new();
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending =
                Some(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).build().map_err(internal)?);
            for attempt in 0.. {
                let Some(request) = pending.take() else { break };
                let out =
                    self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(internal)?;
                let items = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
                for got in items {
                    if let Some(sk) = got.get(SK).and_then(|v| v.as_s().ok()) {
                        *found.entry(sk.clone()).or_default() += 1;
                    }
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
                if pending.is_some() {
                    if attempt == MAX_BATCH_RETRIES {
                        return Err(AppError::internal("search index: batch reads stayed unprocessed"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        Ok(found.into_iter().filter(|(_, n)| *n == terms.len()).map(|(sk, _)| sk).collect())
    }
}

fn put(item: HashMap<String, AttributeValue>) -> WriteRequest {
    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("item set")).build()
}

fn delete(key: HashMap<String, AttributeValue>) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("key set"))
        .build()
}

/// A posting's message and time, from its sort key `created#message`.
fn hit(sort_key: &str) -> Result<SearchHit, AppError> {
    let bad = || AppError::internal(format!("search posting with sort key {sort_key}"));
    let (micros, id) = sort_key.split_once('#').ok_or_else(bad)?;
    Ok(SearchHit {
        message_id: id.parse().map_err(|_| bad())?,
        created_at: from_micros(micros.parse().map_err(|_| bad())?),
    })
}

#[async_trait]
impl SearchIndex for DynamoSearchIndex {
    async fn key(&self, tenant_id: &str) -> Result<Option<Sealed>, AppError> {
        let found = self.row(key_pk(tenant_id)).await?;
        let sealed = found.as_ref().and_then(|i| i.get("sealed")).and_then(|v| v.as_s().ok());
        sealed.map(|json| serde_json::from_str(json).map_err(AppError::from)).transpose()
    }

    async fn put_key(&self, tenant_id: &str, key: &Sealed) -> Result<Sealed, AppError> {
        let mut new = item(key_pk(tenant_id), ROW.into());
        new.insert("sealed".into(), s(serde_json::to_string(key)?));
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(new))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(out) => {
                self.meter.record(Kind::Write, out.consumed_capacity());
                Ok(key.clone())
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.key(tenant_id).await?.ok_or_else(|| AppError::internal("search key vanished"))
            }
            Err(e) => Err(internal(e)),
        }
    }

    async fn apply(&self, changes: &[SearchChange]) -> Result<(), AppError> {
        for change in changes {
            match change {
                SearchChange::Add { tenant_id, message_id, created_at, terms } => {
                    self.add(tenant_id, *message_id, *created_at, terms).await?
                }
                SearchChange::Forget { tenant_id, message_id } => self.forget(tenant_id, *message_id).await?,
            }
        }
        Ok(())
    }

    async fn search(
        &self,
        tenant_id: &str,
        terms: &[String],
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<SearchHit>, AppError> {
        let Some((first, rest)) = terms.split_first() else {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        };
        let mut before = before_cursor(cursor)?;
        let mut items = Vec::new();
        for _ in 0..self.max_pages_read {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(posting_pk(tenant_id, first)))
                .scan_index_forward(false)
                .limit(self.page_read)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            query = match &before {
                Some(b) => query
                    .key_condition_expression("#pk = :pk AND #sk < :before")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":before", s(b.clone())),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let out = query.send().await.map_err(internal)?;
            self.meter.record(Kind::Read, out.consumed_capacity());
            let candidates: Vec<String> =
                out.items().iter().filter_map(|found| found.get(SK).and_then(|v| v.as_s().ok()).cloned()).collect();
            let matching = if rest.is_empty() {
                candidates.iter().cloned().collect()
            } else {
                self.having_all(tenant_id, &candidates, rest).await?
            };
            for sort_key in candidates.iter().filter(|sk| matching.contains(*sk)) {
                items.push(hit(sort_key)?);
                // One more than asked for: there is a next page.
                if items.len() > limit {
                    items.truncate(limit);
                    let last = &items[limit - 1];
                    return Ok(Page {
                        next_cursor: Some(cursor::encode(last.created_at.timestamp_micros(), last.message_id)),
                        items,
                    });
                }
            }
            // Where this page's reading stopped; none when the partition is done.
            let evaluated = out.last_evaluated_key.as_ref().and_then(|k| k.get(SK)).and_then(|v| v.as_s().ok());
            match evaluated {
                Some(sk) => before = Some(sk.clone()),
                None => return Ok(Page { items, next_cursor: None }),
            }
        }
        // Out of reading budget: go on from where the reading stopped.
        let next_cursor = before
            .as_deref()
            .map(hit)
            .transpose()?
            .map(|h| cursor::encode(h.created_at.timestamp_micros(), h.message_id));
        Ok(Page { items, next_cursor })
    }
}
