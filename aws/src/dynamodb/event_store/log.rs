//! The global log: positions for every append and an entry per append that
//! `read_all` and `head_position` walk.
//!
//! An append reserves the positions of its events with one atomic `ADD` on a
//! counter item, then writes a small log entry (stream, first version, count,
//! reservation time) keyed by its first position, and only then commits its
//! events to the stream's tip. The entry therefore exists before the events
//! do; a reader decides for each entry whether its append is *committed* (the
//! stream holds the entry's first version at the entry's first position),
//! *dead* (marked so after a conflict, or the stream holds that version at
//! another position) or still *pending*. Readers stop at a pending entry, and
//! at a gap in the positions (a reservation whose entry is not written yet),
//! until it is older than [`SETTLE_HORIZON`]: an appender gives up on
//! reservations older than [`APPEND_DEADLINE`], so past the horizon an
//! unresolved entry or gap can no longer commit. This keeps `read_all` in
//! position order without ever skipping an event that commits later.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use parley_events::{RecordedEvent, StoreError};

use super::item::{number, string, Item, PK, SK};
use crate::dynamodb::capacity::{CapacityMeter, Kind};
use crate::dynamodb::unavailable;

/// The partition key of the position counter item.
pub const COUNTER_KEY: &str = "$pos";
/// The partition key of every log entry (sort key: the entry's first position).
pub const LOG_KEY: &str = "$log";
/// Counter: the last reserved position.
const COUNTER: &str = "c";
/// Entry: stream id, first version, number of events, reservation time (ms), dead flag.
const STREAM: &str = "s";
const FIRST_VERSION: &str = "v";
const COUNT: &str = "n";
const RESERVED_AT: &str = "w";
const DEAD: &str = "d";

/// How long after reserving its positions an append may still commit.
pub const APPEND_DEADLINE: Duration = Duration::from_secs(10);
/// How old an unresolved entry or gap must be before readers pass it as dead:
/// the deadline plus generous room for clock differences between writers.
pub const SETTLE_HORIZON: Duration = Duration::from_secs(60);

/// Positions reserved by one append attempt, with its log entry written.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    pub first: u64,
    pub last: u64,
}

/// One entry of the global log.
#[derive(Debug, Clone)]
struct Entry {
    first: u64,
    last: u64,
    stream_id: String,
    first_version: u64,
    reserved_at_ms: i64,
    dead: bool,
}

impl Entry {
    fn decode(item: &Item) -> Result<Self, StoreError> {
        let first: u64 = number(item, SK)?;
        let count: u64 = number(item, COUNT)?;
        Ok(Entry {
            first,
            last: first + count.saturating_sub(1),
            stream_id: string(item, STREAM)?.to_owned(),
            first_version: number(item, FIRST_VERSION)?,
            reserved_at_ms: number(item, RESERVED_AT)?,
            dead: matches!(item.get(DEAD), Some(AttributeValue::Bool(true))),
        })
    }

    /// Whether an append reserved at `reserved_at_ms` can no longer commit.
    fn settled(reserved_at_ms: i64) -> bool {
        let horizon = i64::try_from(SETTLE_HORIZON.as_millis()).unwrap_or(i64::MAX);
        Utc::now().timestamp_millis().saturating_sub(reserved_at_ms) > horizon
    }
}

/// What a log entry turned out to be.
enum State {
    Committed(Vec<RecordedEvent>),
    Dead,
    Pending,
}

/// The global log of one events table.
#[derive(Debug, Clone)]
pub struct GlobalLog {
    client: Client,
    table: String,
    meter: Arc<CapacityMeter>,
}

fn key(pk: &str, sk: u64) -> Item {
    Item::from([(PK.to_owned(), AttributeValue::S(pk.to_owned())), (SK.to_owned(), AttributeValue::N(sk.to_string()))])
}

impl GlobalLog {
    pub fn new(client: Client, table: String, meter: Arc<CapacityMeter>) -> Self {
        Self { client, table, meter }
    }

    /// Reserves `count` positions for an append of `stream_id` starting at
    /// `first_version`, and writes its (pending) log entry.
    pub async fn reserve(&self, stream_id: &str, first_version: u64, count: u64) -> Result<Reservation, StoreError> {
        let reserved_at = Utc::now().timestamp_millis();
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(COUNTER_KEY, 0)))
            .update_expression("ADD #c :n")
            .expression_attribute_names("#c", COUNTER)
            .expression_attribute_values(":n", AttributeValue::N(count.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter.record(Kind::Write, output.consumed_capacity());
        let last: u64 = number(output.attributes().unwrap_or(&Item::new()), COUNTER)?;
        let first = last + 1 - count;
        let mut entry = key(LOG_KEY, first);
        entry.insert(STREAM.into(), AttributeValue::S(stream_id.to_owned()));
        entry.insert(FIRST_VERSION.into(), AttributeValue::N(first_version.to_string()));
        entry.insert(COUNT.into(), AttributeValue::N(count.to_string()));
        entry.insert(RESERVED_AT.into(), AttributeValue::N(reserved_at.to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entry))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter.record(Kind::Write, put.consumed_capacity());
        Ok(Reservation { first, last })
    }

    /// Marks the entry of an attempt that did not commit, so readers pass it
    /// at once. Failing to mark is not an error: the entry still settles as
    /// dead once it is past the horizon.
    pub async fn abandon(&self, reservation: Reservation) {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(LOG_KEY, reservation.first)))
            .update_expression("SET #d = :t")
            .expression_attribute_names("#d", DEAD)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Ok(output) = &marked {
            self.meter.record(Kind::Write, output.consumed_capacity());
        }
        if let Err(error) = marked {
            tracing::warn!(position = reservation.first, error = %unavailable(error), "log entry not marked dead");
        }
    }

    /// One page of entries: ascending after `after`, or descending from `at_most`.
    async fn entries(
        &self,
        forward: bool,
        bound: u64,
        limit: Option<i32>,
        start: Option<Item>,
    ) -> Result<(Vec<Entry>, Option<Item>), StoreError> {
        let condition = if forward { "#p = :p AND #i > :b" } else { "#p = :p AND #i <= :b" };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression(condition)
            .expression_attribute_names("#p", PK)
            .expression_attribute_names("#i", SK)
            .expression_attribute_values(":p", AttributeValue::S(LOG_KEY.into()))
            .expression_attribute_values(":b", AttributeValue::N(bound.to_string()))
            .scan_index_forward(forward)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter.record(Kind::Read, output.consumed_capacity());
        let entries = output.items().iter().map(Entry::decode).collect::<Result<_, _>>()?;
        Ok((entries, output.last_evaluated_key().cloned()))
    }

    /// Decides an entry against the stream it names. `streams` caches the
    /// stream reads of one call; an entry that looks pending in a cached read
    /// is checked again against a fresh one, as it may have committed since.
    async fn resolve<F, Fut>(
        &self,
        entry: &Entry,
        streams: &mut HashMap<String, Vec<RecordedEvent>>,
        read_stream: &F,
    ) -> Result<State, StoreError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<RecordedEvent>, StoreError>>,
    {
        if entry.dead {
            return Ok(State::Dead);
        }
        let first_index = usize::try_from(entry.first_version.saturating_sub(1)).unwrap_or(usize::MAX);
        let count = usize::try_from(entry.last - entry.first + 1).unwrap_or(usize::MAX);
        for refresh in [false, true] {
            if refresh || !streams.contains_key(&entry.stream_id) {
                let events = read_stream(entry.stream_id.clone()).await?;
                streams.insert(entry.stream_id.clone(), events);
            }
            let events = streams.get(&entry.stream_id).map_or(&[][..], Vec::as_slice);
            match events.get(first_index) {
                Some(event) if event.global_position == entry.first => {
                    return Ok(State::Committed(events.iter().skip(first_index).take(count).cloned().collect()));
                }
                Some(_) => return Ok(State::Dead),
                None => {}
            }
        }
        Ok(if Entry::settled(entry.reserved_at_ms) { State::Dead } else { State::Pending })
    }

    /// Up to `max` committed events after `after`, in position order,
    /// stopping before anything still unresolved.
    pub async fn read_after<F, Fut>(
        &self,
        after: u64,
        max: usize,
        read_stream: F,
    ) -> Result<Vec<RecordedEvent>, StoreError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<RecordedEvent>, StoreError>>,
    {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let mut streams = HashMap::new();
        let mut next = after + 1;
        let mut queue = VecDeque::new();
        if after > 0 {
            // The entry holding `after` may hold later positions too.
            let (covering, _) = self.entries(false, after, Some(1), None).await?;
            queue.extend(covering.into_iter().filter(|entry| entry.last >= next));
        }
        let (mut start, mut exhausted) = (None, false);
        loop {
            let Some(entry) = queue.pop_front() else {
                if exhausted {
                    return Ok(out);
                }
                let (page, last_key) = self.entries(true, after, None, start.take()).await?;
                queue.extend(page);
                exhausted = last_key.is_none();
                start = last_key;
                continue;
            };
            if entry.first > next && !Entry::settled(entry.reserved_at_ms) {
                // Positions reserved before this entry's, whose entry is not
                // written yet: that append may still commit.
                return Ok(out);
            }
            match self.resolve(&entry, &mut streams, &read_stream).await? {
                State::Committed(events) => {
                    for event in events.into_iter().filter(|e| e.global_position > after) {
                        out.push(event);
                        if out.len() == max {
                            return Ok(out);
                        }
                    }
                }
                State::Dead => {}
                State::Pending => return Ok(out),
            }
            next = entry.last + 1;
        }
    }

    /// The last position of the newest committed append (0 when none).
    pub async fn head<F, Fut>(&self, read_stream: F) -> Result<u64, StoreError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<RecordedEvent>, StoreError>>,
    {
        let mut streams = HashMap::new();
        let mut start = None;
        loop {
            let (page, last_key) = self.entries(false, u64::MAX, Some(25), start.take()).await?;
            for entry in page {
                if let State::Committed(_) = self.resolve(&entry, &mut streams, &read_stream).await? {
                    return Ok(entry.last);
                }
            }
            match last_key {
                Some(key) => start = Some(key),
                None => return Ok(0),
            }
        }
    }
}
