//! The DynamoDB event store, shaped after Equinox's DynamoStore.
//!
//! Each stream is one item collection (partition key = stream id). Its *tip*
//! item (sort key -1) holds the newest events and the stream's version; an
//! append is one conditional `UpdateItem` on the tip that checks the expected
//! version and appends to the events list. When the tip would pass
//! [`DynamoEventStore::DEFAULT_MAX_TIP_BYTES`], the refused update hands back
//! the old tip (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) and one
//! transaction *calves* its events into an immutable batch item (sort key =
//! first version) while the tip takes the new ones. A version conflict is
//! answered from the same returned tip, without a read. `read_stream` is one
//! (paged) Query of the collection.
//!
//! Positions in the store-wide log come from [`log`]: a counter item and one
//! small log entry per append. The design, its costs and its limits are in
//! `events/docs/dynamodb.md`.

mod archive;
mod item;
mod log;
mod table;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use parley_events::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use tokio::sync::watch;

pub(crate) use self::item::{decode_item, kind, number, Item, ItemKind, WRITTEN_AFTER};
use self::item::{
    events_list, PendingEvent, ARCHIVED, BASE, EVENTS, LAST_POSITION, PK, RESERVED_PREFIX, SIZE, SK, TIP_INDEX, VERSION,
};
use self::log::{GlobalLog, Reservation, APPEND_DEADLINE};
pub use self::log::{COUNTER_KEY, LOG_KEY, SETTLE_HORIZON};
pub use self::table::create_table;
pub(crate) use self::table::wait_until_active;
use super::capacity::{CapacityMeter, CapacityUnits, Kind};
use super::unavailable;

/// How often one append re-reserves positions before it gives up (each retry
/// follows a racing writer that changed the stream or took an earlier position).
const MAX_ATTEMPTS: usize = 8;
/// The most one append may write: a tip (or batch) item must stay well under
/// DynamoDB's 400 KB item limit.
const MAX_APPEND_BYTES: u64 = 300 * 1024;

/// The DynamoDB [`EventStore`] adapter.
#[derive(Debug)]
pub struct DynamoEventStore {
    client: Client,
    table: String,
    log: GlobalLog,
    max_tip_bytes: u64,
    head: watch::Sender<u64>,
    meter: Arc<CapacityMeter>,
}

/// Why a tip update did not commit.
enum TipRefused {
    /// The stream is not at the expected version.
    Stale {
        actual: u64,
    },
    /// The stream's last event has a later position than this attempt's
    /// first (a writer that reserved later committed first): reserve anew.
    Behind,
    /// Another writer changed the tip during a calve: try again.
    Raced,
    Failed(StoreError),
}

impl From<StoreError> for TipRefused {
    fn from(error: StoreError) -> Self {
        TipRefused::Failed(error)
    }
}

impl DynamoEventStore {
    /// The tip size past which its events are calved into a batch item.
    /// Smaller tips make appends cheaper (an update is billed by the larger of
    /// the item's sizes before and after), larger ones make calves rarer.
    /// Measured on a busy conversation (`events/docs/dynamodb.md`), 4 KiB
    /// costs 8.8 write units per inbound message where 32 KiB costs 20.8.
    pub const DEFAULT_MAX_TIP_BYTES: u64 = 4 * 1024;

    /// The store over the events table `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        let meter = Arc::new(CapacityMeter::default());
        Self {
            log: GlobalLog::new(client.clone(), table.clone(), Arc::clone(&meter)),
            client,
            table,
            max_tip_bytes: Self::DEFAULT_MAX_TIP_BYTES,
            head: watch::Sender::new(0),
            meter,
        }
    }

    /// The capacity units this store's requests have consumed so far.
    pub fn consumed_capacity(&self) -> CapacityUnits {
        self.meter.total()
    }

    /// The same store with another calve bound (see [`Self::DEFAULT_MAX_TIP_BYTES`]).
    pub fn with_max_tip_bytes(mut self, bytes: u64) -> Self {
        self.max_tip_bytes = bytes;
        self
    }

    /// Creates an events table named `name` (see [`create_table`]).
    pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
        create_table(client, name).await
    }

    fn tip_key(stream_id: &str) -> Item {
        Item::from([
            (PK.to_owned(), AttributeValue::S(stream_id.to_owned())),
            (SK.to_owned(), AttributeValue::N(TIP_INDEX.to_string())),
        ])
    }

    /// The stream's current version, read from its tip (0 when it has none).
    async fn tip_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::tip_key(stream_id)))
            .consistent_read(true)
            .projection_expression("#v")
            .expression_attribute_names("#v", VERSION)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter.record(Kind::Read, output.consumed_capacity());
        output.item().map_or(Ok(0), |tip| number(tip, VERSION))
    }

    /// The whole tip item, if the stream has one.
    async fn read_tip(&self, stream_id: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::tip_key(stream_id)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter.record(Kind::Read, output.consumed_capacity());
        Ok(output.item().cloned())
    }

    /// One conditional update of the tip: appends `events` (already carrying
    /// the positions of `reservation`) if the stream is at `expected`.
    async fn write_tip(
        &self,
        stream_id: &str,
        expected: u64,
        reservation: Reservation,
        events: Vec<AttributeValue>,
        bytes: u64,
    ) -> Result<(), TipRefused> {
        let version = expected + events.len() as u64;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::tip_key(stream_id)))
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#w", WRITTEN_AFTER)
            .expression_attribute_names("#g", LAST_POSITION)
            .expression_attribute_names("#z", SIZE)
            .expression_attribute_names("#e", EVENTS)
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .expression_attribute_values(":g", AttributeValue::N(reservation.last.to_string()))
            .expression_attribute_values(":z", AttributeValue::N(bytes.to_string()))
            .expression_attribute_values(":e", AttributeValue::L(events.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        update = if expected == 0 {
            update
                .condition_expression("attribute_not_exists(#v)")
                .update_expression("SET #v = :v, #b = :zero, #w = :zero, #g = :g, #z = :z, #e = :e")
                .expression_attribute_names("#b", BASE)
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        } else {
            let room = i128::from(self.max_tip_bytes) - i128::from(bytes);
            update
                .condition_expression("#v = :x AND #g < :f AND #z <= :room")
                .update_expression("SET #v = :v, #w = :x, #g = :g, #z = #z + :z, #e = list_append(#e, :e)")
                .expression_attribute_values(":x", AttributeValue::N(expected.to_string()))
                .expression_attribute_values(":f", AttributeValue::N(reservation.first.to_string()))
                .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
        };
        let refused = match update.send().await {
            Ok(output) => {
                self.meter.record(Kind::Write, output.consumed_capacity());
                return Ok(());
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
                _ => return Err(unavailable(error).into()),
            },
        };
        // DynamoDB returns the refusing tip; emulators that predate the
        // option return nothing, and then the tip is read.
        let tip = match refused {
            Some(tip) => Some(tip),
            None => self.read_tip(stream_id).await?,
        };
        let Some(tip) = tip else {
            return Err(TipRefused::Stale { actual: 0 });
        };
        let actual: u64 = number(&tip, VERSION)?;
        if actual != expected {
            return Err(TipRefused::Stale { actual });
        }
        if number::<u64>(&tip, LAST_POSITION)? >= reservation.first {
            return Err(TipRefused::Behind);
        }
        self.calve(stream_id, expected, reservation, &tip, events, bytes).await
    }

    /// Moves the events of the full `tip` into a batch item and makes the
    /// new events the tip's, in one transaction conditional on the tip being
    /// unchanged.
    async fn calve(
        &self,
        stream_id: &str,
        expected: u64,
        reservation: Reservation,
        tip: &Item,
        events: Vec<AttributeValue>,
        bytes: u64,
    ) -> Result<(), TipRefused> {
        let base: u64 = number(tip, BASE)?;
        let mut batch = Item::from([
            (PK.to_owned(), AttributeValue::S(stream_id.to_owned())),
            (SK.to_owned(), AttributeValue::N((base + 1).to_string())),
        ]);
        batch.insert(EVENTS.into(), AttributeValue::L(events_list(tip)?.to_vec()));
        let version = expected + events.len() as u64;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(batch))
            .condition_expression("attribute_not_exists(#p)")
            .expression_attribute_names("#p", PK)
            .build()
            .map_err(unavailable)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::tip_key(stream_id)))
            .condition_expression("#v = :x AND #g < :f")
            .update_expression("SET #b = :x, #w = :x, #v = :v, #g = :g, #z = :z, #e = :e")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#b", BASE)
            .expression_attribute_names("#w", WRITTEN_AFTER)
            .expression_attribute_names("#g", LAST_POSITION)
            .expression_attribute_names("#z", SIZE)
            .expression_attribute_names("#e", EVENTS)
            .expression_attribute_values(":x", AttributeValue::N(expected.to_string()))
            .expression_attribute_values(":f", AttributeValue::N(reservation.first.to_string()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .expression_attribute_values(":g", AttributeValue::N(reservation.last.to_string()))
            .expression_attribute_values(":z", AttributeValue::N(bytes.to_string()))
            .expression_attribute_values(":e", AttributeValue::L(events))
            .build()
            .map_err(unavailable)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => {
                self.meter.record(Kind::Write, output.consumed_capacity());
                Ok(())
            }
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => Err(TipRefused::Raced),
                _ => Err(unavailable(error).into()),
            },
        }
    }

    /// Every item of a stream's collection, archived ones included.
    async fn stream_items(&self, stream_id: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", PK)
                .expression_attribute_values(":p", AttributeValue::S(stream_id.to_owned()))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.meter.record(Kind::Read, output.consumed_capacity());
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(items),
            }
        }
    }

    /// Every event of a stream, in version order. The global log resolves
    /// its entries against archived events too (until DynamoDB deletes
    /// them), so that archiving never turns a settled entry back into a gap.
    async fn read_whole_stream(&self, stream_id: String, archived_too: bool) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        for item in self.stream_items(&stream_id).await? {
            if archived_too || !item.contains_key(ARCHIVED) {
                events.extend(decode_item(&item)?);
            }
        }
        // The tip (sort key -1) comes first in the collection, its events last.
        events.sort_by_key(|event| event.version);
        Ok(events)
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn append(
        &self,
        tenant_id: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Empty);
        }
        if stream_id.is_empty() || stream_id.starts_with(RESERVED_PREFIX) {
            return Err(StoreError::Unavailable(format!(
                "stream id {stream_id:?} is reserved: ids must be non-empty and not start with {RESERVED_PREFIX}"
            )));
        }
        let recorded_at = Utc::now();
        let pending =
            events.iter().map(|e| PendingEvent::new(tenant_id, e, recorded_at)).collect::<Result<Vec<_>, _>>()?;
        let bytes: u64 = pending.iter().map(PendingEvent::bytes).sum();
        if bytes > MAX_APPEND_BYTES {
            return Err(StoreError::Unavailable(format!(
                "an append of {bytes} bytes exceeds the {MAX_APPEND_BYTES} bytes one item can take"
            )));
        }
        let count = pending.len() as u64;
        let mut version = match expected {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(version) => version,
            ExpectedVersion::Any => self.tip_version(stream_id).await?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let started = Instant::now();
            let reservation = self.log.reserve(stream_id, version + 1, count).await?;
            let encoded = pending.iter().zip(reservation.first..).map(|(event, position)| event.at(position)).collect();
            if started.elapsed() > APPEND_DEADLINE {
                self.log.abandon(reservation).await;
                return Err(StoreError::Unavailable(format!(
                    "reserving positions took longer than {APPEND_DEADLINE:?}"
                )));
            }
            match self.write_tip(stream_id, version, reservation, encoded, bytes).await {
                Ok(()) => {
                    self.head.send_if_modified(|head| {
                        let newer = reservation.last > *head;
                        *head = (*head).max(reservation.last);
                        newer
                    });
                    return Ok(AppendOutcome { version: version + count, last_position: reservation.last });
                }
                // The outcome of a failed request is unknown: the entry stays
                // and readers settle it from the stream.
                Err(TipRefused::Failed(error)) => return Err(error),
                Err(refused) => {
                    self.log.abandon(reservation).await;
                    match refused {
                        TipRefused::Stale { actual } if expected == ExpectedVersion::Any => version = actual,
                        TipRefused::Stale { actual } => {
                            return Err(StoreError::Conflict { stream_id: stream_id.to_owned(), expected, actual });
                        }
                        TipRefused::Behind | TipRefused::Raced | TipRefused::Failed(_) => {}
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!("append to {stream_id} lost {MAX_ATTEMPTS} races in a row")))
    }

    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        if stream_id.starts_with(RESERVED_PREFIX) {
            return Ok(Vec::new());
        }
        let mut events = self.read_whole_stream(stream_id.to_owned(), false).await?;
        events.retain(|event| event.version > after_version);
        Ok(events)
    }

    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_after(after_position, max, |stream| self.read_whole_stream(stream, true)).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.log.head(|stream| self.read_whole_stream(stream, true)).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn dormant_streams(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.dormant(prefix, before, limit).await
    }

    async fn archive_streams(&self, stream_ids: &[String]) -> Result<(), StoreError> {
        for stream_id in stream_ids {
            self.archive_stream(stream_id).await?;
        }
        Ok(())
    }

    async fn restore_events(&self, events: &[RecordedEvent]) -> Result<usize, StoreError> {
        let mut streams: Vec<(&str, Vec<&RecordedEvent>)> = Vec::new();
        for event in events {
            match streams.iter_mut().find(|(stream_id, _)| *stream_id == event.stream_id) {
                Some((_, of_stream)) => of_stream.push(event),
                None => streams.push((&event.stream_id, vec![event])),
            }
        }
        let mut restored = 0;
        for (stream_id, of_stream) in streams {
            restored += self.restore_stream(stream_id, of_stream).await?;
        }
        Ok(restored)
    }
}
