//! The items of the events table and how events are encoded in them.
//!
//! Attribute names are one letter: DynamoDB bills every attribute name in
//! every item, and an event is repeated in its tip, in stream records and in
//! reads. `events/docs/dynamodb.md` lists them all.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use parley_events::{NewEvent, RecordedEvent, StoreError};
use uuid::Uuid;

/// A DynamoDB item as the SDK sees it.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key: the stream id (or a reserved `$` key of the global log).
pub const PK: &str = "p";
/// Sort key: `TIP_INDEX` for the tip, else the first version held by a calved batch.
pub const SK: &str = "i";
/// The sort key of a stream's tip item.
pub const TIP_INDEX: i64 = -1;

/// Tip: the stream's version (its last event's version).
pub const VERSION: &str = "v";
/// Tip: the version before the tip's first event (events `b+1..=v` are in the tip).
pub const BASE: &str = "b";
/// Tip: the stream version before the last write, so a stream record's new
/// image alone tells which events that write added.
pub const WRITTEN_AFTER: &str = "w";
/// Tip: the global position of the stream's last event.
pub const LAST_POSITION: &str = "g";
/// Tip: the estimated size in bytes of the events list, for the calve bound.
pub const SIZE: &str = "z";
/// Tip and batch: the list of events.
pub const EVENTS: &str = "e";
/// Tip and batch: when the stream was archived (Unix seconds). It is the
/// table's TTL attribute, so DynamoDB deletes archived items on its own.
pub const ARCHIVED: &str = "x";

// Attributes of one event in the list. The version is not stored: it is the
// item's base plus the event's place in the list.
const EVENT_ID: &str = "i";
const TYPE: &str = "c";
const SCHEMA: &str = "s";
const OCCURRED: &str = "o";
const RECORDED: &str = "r";
const CORRELATION: &str = "k";
const CAUSATION: &str = "u";
const ACTOR: &str = "a";
const TENANT: &str = "t";
const DATA: &str = "d";
const POSITION: &str = "g";

/// The parts of a new event that do not change between attempts of one append.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    fields: Item,
    bytes: u64,
}

impl PendingEvent {
    /// Encodes everything but the global position, which each attempt allocates anew.
    pub fn new(tenant_id: &str, event: &NewEvent, recorded_at: DateTime<Utc>) -> Result<Self, StoreError> {
        let data = serde_json::to_string(&event.data)
            .map_err(|e| StoreError::Corrupt(format!("event data does not serialize: {e}")))?;
        let mut fields = Item::new();
        fields.insert(EVENT_ID.into(), uuid_value(event.event_id));
        fields.insert(TYPE.into(), AttributeValue::S(event.event_type.clone()));
        fields.insert(SCHEMA.into(), AttributeValue::N(event.schema_version.to_string()));
        fields.insert(OCCURRED.into(), AttributeValue::N(nanos(event.occurred_at)?.to_string()));
        fields.insert(RECORDED.into(), AttributeValue::N(nanos(recorded_at)?.to_string()));
        fields.insert(CORRELATION.into(), uuid_value(event.correlation_id));
        if let Some(causation) = event.causation_id {
            fields.insert(CAUSATION.into(), uuid_value(causation));
        }
        fields.insert(ACTOR.into(), AttributeValue::S(event.actor.clone()));
        fields.insert(TENANT.into(), AttributeValue::S(tenant_id.to_owned()));
        fields.insert(DATA.into(), AttributeValue::S(data));
        let bytes = fields.iter().map(|(name, value)| name.len() as u64 + value_bytes(value)).sum::<u64>()
            // The position added per attempt, and the map's own overhead.
            + 1 + 11 + 3;
        Ok(Self { fields, bytes })
    }

    /// The billed size of the event in a list.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The event with its global position, ready for a list.
    pub fn at(&self, position: u64) -> AttributeValue {
        let mut fields = self.fields.clone();
        fields.insert(POSITION.into(), AttributeValue::N(position.to_string()));
        AttributeValue::M(fields)
    }
}

/// The size DynamoDB bills for a value, following its documented rules
/// (strings and binaries by length, numbers by about half their digits,
/// one byte per list or map element besides its contents, three per container).
pub fn value_bytes(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => n.len().div_ceil(2) as u64 + 1,
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_bytes(v)).sum::<u64>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() as u64 + value_bytes(v)).sum::<u64>(),
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) as u64 + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len() as u64).sum(),
        _ => 0,
    }
}

fn uuid_value(id: Uuid) -> AttributeValue {
    AttributeValue::B(Blob::new(id.as_bytes().to_vec()))
}

fn nanos(time: DateTime<Utc>) -> Result<i64, StoreError> {
    time.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::Corrupt(format!("time {time} is outside the range the store keeps (1677..2262)")))
}

/// A number attribute of an item.
pub fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| StoreError::Corrupt(format!("attribute {name} is {n}"))),
        other => Err(StoreError::Corrupt(format!("attribute {name} should be a number, is {other:?}"))),
    }
}

/// A string attribute of an item.
pub fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(StoreError::Corrupt(format!("attribute {name} should be a string, is {other:?}"))),
    }
}

fn uuid(item: &Item, name: &str) -> Result<Uuid, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(b)) => {
            Uuid::from_slice(b.as_ref()).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
        }
        other => Err(StoreError::Corrupt(format!("attribute {name} should be 16 bytes, is {other:?}"))),
    }
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(DateTime::from_timestamp_nanos(number(item, name)?))
}

/// The events list of a tip or batch item.
pub fn events_list(item: &Item) -> Result<&[AttributeValue], StoreError> {
    match item.get(EVENTS) {
        Some(AttributeValue::L(list)) => Ok(list),
        other => Err(StoreError::Corrupt(format!("attribute {EVENTS} should be a list, is {other:?}"))),
    }
}

/// Decodes the events of a tip or batch item of `stream_id` whose first
/// event has version `base + 1`.
pub fn decode_events(stream_id: &str, base: u64, item: &Item) -> Result<Vec<RecordedEvent>, StoreError> {
    events_list(item)?
        .iter()
        .zip(base + 1..)
        .map(|(value, version)| {
            let AttributeValue::M(event) = value else {
                return Err(StoreError::Corrupt(format!("event {version} of {stream_id} is not a map")));
            };
            decode_event(stream_id, version, event)
        })
        .collect()
}

fn decode_event(stream_id: &str, version: u64, event: &Item) -> Result<RecordedEvent, StoreError> {
    let data = string(event, DATA)?;
    Ok(RecordedEvent {
        event_id: uuid(event, EVENT_ID)?,
        stream_id: stream_id.to_owned(),
        version,
        tenant_id: string(event, TENANT)?.to_owned(),
        event_type: string(event, TYPE)?.to_owned(),
        schema_version: number(event, SCHEMA)?,
        occurred_at: time(event, OCCURRED)?,
        recorded_at: time(event, RECORDED)?,
        correlation_id: uuid(event, CORRELATION)?,
        causation_id: if event.contains_key(CAUSATION) { Some(uuid(event, CAUSATION)?) } else { None },
        actor: string(event, ACTOR)?.to_owned(),
        data: serde_json::from_str(data)
            .map_err(|e| StoreError::Corrupt(format!("data of {stream_id} version {version}: {e}")))?,
        global_position: number(event, POSITION)?,
    })
}

/// Which kind of item of the events table an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// The newest events of a stream.
    Tip,
    /// Older events of a stream, moved out of its tip; the number is the first version.
    Batch(u64),
    /// An item of the global log (position counter or log entry).
    Log,
}

/// Tells the kind of an item from its key.
pub fn kind(item: &Item) -> Result<ItemKind, StoreError> {
    if string(item, PK)?.starts_with(RESERVED_PREFIX) {
        return Ok(ItemKind::Log);
    }
    let index: i64 = number(item, SK)?;
    match u64::try_from(index) {
        Ok(first) if first >= 1 => Ok(ItemKind::Batch(first)),
        _ if index == TIP_INDEX => Ok(ItemKind::Tip),
        _ => Err(StoreError::Corrupt(format!("sort key {index} names no item kind"))),
    }
}

/// Partition keys starting with this belong to the global log, not to streams.
pub const RESERVED_PREFIX: &str = "$";

/// The events of a tip or batch item, in version order.
pub fn decode_item(item: &Item) -> Result<Vec<RecordedEvent>, StoreError> {
    let stream_id = string(item, PK)?;
    match kind(item)? {
        ItemKind::Tip => decode_events(stream_id, number(item, BASE)?, item),
        ItemKind::Batch(first) => decode_events(stream_id, first - 1, item),
        ItemKind::Log => Ok(Vec::new()),
    }
}
