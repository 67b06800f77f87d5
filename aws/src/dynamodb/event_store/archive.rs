//! Archival on DynamoDB. An archived stream's items get the TTL attribute
//! [`ARCHIVED`], so DynamoDB deletes them on its own (within days, at no
//! write cost); until then reads of the stream skip them. Restoring removes
//! the attribute again, or, once the items are gone, writes the events back
//! as the stream's items. Both writes also set the tip's `w` to its version,
//! so their stream records announce no events: the projections applied them
//! when they were first appended. `events/docs/dynamodb.md` has the costs.

use std::collections::HashSet;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};
use chrono::{DateTime, Utc};
use parley_events::{NewEvent, RecordedEvent, StoreError};

use super::item::{
    decode_item, kind, string, Item, ItemKind, PendingEvent, ARCHIVED, BASE, EVENTS, LAST_POSITION, PK, SIZE, SK,
    TIP_INDEX, VERSION, WRITTEN_AFTER,
};
use super::{DynamoEventStore, MAX_APPEND_BYTES};
use crate::dynamodb::capacity::Kind;
use crate::dynamodb::unavailable;

impl DynamoEventStore {
    /// Scans the table for the hot tips under `prefix`: archival is rare,
    /// scheduled work, and a scan spares every append an index write.
    pub(super) async fn dormant(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut dormant = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(#p, :prefix) AND #i = :tip AND attribute_not_exists(#x)")
                .expression_attribute_names("#p", PK)
                .expression_attribute_names("#i", SK)
                .expression_attribute_names("#x", ARCHIVED)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .expression_attribute_values(":tip", AttributeValue::N(TIP_INDEX.to_string()))
                .select(Select::AllAttributes)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.meter.record(Kind::Read, output.consumed_capacity());
            for tip in output.items() {
                // The tip holds the stream's newest events.
                let newest = decode_item(tip)?.iter().map(|event| event.occurred_at).max();
                if newest.is_some_and(|newest| newest < before) {
                    dormant.push(string(tip, PK)?.to_owned());
                }
            }
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        dormant.sort();
        dormant.truncate(limit);
        Ok(dormant)
    }

    /// Marks every item of the stream archived (TTL now).
    pub(super) async fn archive_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        let now = Utc::now().timestamp().to_string();
        for item in self.stream_items(stream_id).await? {
            if !item.contains_key(ARCHIVED) {
                self.mark(&item, Mark::Archived { expires: &now }).await?;
            }
        }
        Ok(())
    }

    /// Brings one stream's archived events back; returns how many were not hot before.
    pub(super) async fn restore_stream(
        &self,
        stream_id: &str,
        events: Vec<&RecordedEvent>,
    ) -> Result<usize, StoreError> {
        let items = self.stream_items(stream_id).await?;
        let mut hot = HashSet::new();
        for item in items.iter().filter(|item| !item.contains_key(ARCHIVED)) {
            hot.extend(decode_item(item)?.into_iter().map(|event| event.event_id));
        }
        let missing = events.iter().filter(|event| !hot.contains(&event.event_id)).count();
        if items.is_empty() {
            self.put_back(stream_id, &events).await?;
            return Ok(missing);
        }
        for item in items.iter().filter(|item| item.contains_key(ARCHIVED)) {
            self.mark(item, Mark::Hot).await?;
        }
        Ok(missing)
    }

    /// Sets or removes an item's archive TTL. On the tip it also sets `w` to
    /// the version, so the write's stream record announces no new events.
    async fn mark(&self, item: &Item, mark: Mark<'_>) -> Result<(), StoreError> {
        let tip = kind(item)? == ItemKind::Tip;
        let expression = match (mark, tip) {
            (Mark::Archived { .. }, false) => "SET #x = :x",
            (Mark::Archived { .. }, true) => "SET #x = :x, #w = #v",
            (Mark::Hot, false) => "REMOVE #x",
            (Mark::Hot, true) => "REMOVE #x SET #w = #v",
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, item[PK].clone())
            .key(SK, item[SK].clone())
            .update_expression(expression)
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#p", PK)
            .expression_attribute_names("#x", ARCHIVED)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Mark::Archived { expires } = mark {
            update = update.expression_attribute_values(":x", AttributeValue::N(expires.to_owned()));
        }
        if tip {
            update = update.expression_attribute_names("#w", WRITTEN_AFTER).expression_attribute_names("#v", VERSION);
        }
        let output = update.send().await.map_err(unavailable)?;
        self.meter.record(Kind::Write, output.consumed_capacity());
        Ok(())
    }

    /// Writes a whole stream whose items DynamoDB already deleted: older
    /// events in batch items, the newest in the tip, each item within the
    /// size one append may take.
    async fn put_back(&self, stream_id: &str, events: &[&RecordedEvent]) -> Result<(), StoreError> {
        let mut sorted = events.to_vec();
        sorted.sort_by_key(|event| event.version);
        sorted.dedup_by_key(|event| event.version);
        if sorted.iter().zip(1..).any(|(event, version)| event.version != version) {
            return Err(StoreError::Corrupt(format!("the events of {stream_id} to restore are not versions 1 to n")));
        }
        let mut chunks: Vec<(Vec<AttributeValue>, u64)> = vec![(Vec::new(), 0)];
        for event in &sorted {
            let new = NewEvent {
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                occurred_at: event.occurred_at,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                actor: event.actor.clone(),
                data: event.data.clone(),
            };
            let pending = PendingEvent::new(&event.tenant_id, &new, event.recorded_at)?;
            let full = chunks
                .last()
                .is_some_and(|(list, bytes)| !list.is_empty() && bytes + pending.bytes() > MAX_APPEND_BYTES);
            if full {
                chunks.push((Vec::new(), 0));
            }
            if let Some((list, bytes)) = chunks.last_mut() {
                list.push(pending.at(event.global_position));
                *bytes += pending.bytes();
            }
        }
        let (Some(last), count) = (sorted.last(), chunks.len()) else { return Ok(()) };
        let mut base = 0u64;
        for (index, (list, bytes)) in chunks.into_iter().enumerate() {
            let len = list.len() as u64;
            let mut item = Item::from([(PK.to_owned(), AttributeValue::S(stream_id.to_owned()))]);
            if index + 1 == count {
                let version = AttributeValue::N(last.version.to_string());
                item.insert(SK.into(), AttributeValue::N(TIP_INDEX.to_string()));
                item.insert(VERSION.into(), version.clone());
                item.insert(WRITTEN_AFTER.into(), version);
                item.insert(BASE.into(), AttributeValue::N(base.to_string()));
                item.insert(LAST_POSITION.into(), AttributeValue::N(last.global_position.to_string()));
                item.insert(SIZE.into(), AttributeValue::N(bytes.to_string()));
            } else {
                item.insert(SK.into(), AttributeValue::N((base + 1).to_string()));
            }
            item.insert(EVENTS.into(), AttributeValue::L(list));
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#p)")
                .expression_attribute_names("#p", PK)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match written {
                Ok(output) => self.meter.record(Kind::Write, output.consumed_capacity()),
                // Written by an earlier restore that stopped half way.
                Err(error)
                    if matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {}
                Err(error) => return Err(unavailable(error)),
            }
            base += len;
        }
        Ok(())
    }
}

/// What [`DynamoEventStore::mark`] does to an item.
#[derive(Clone, Copy)]
enum Mark<'a> {
    /// Archived: DynamoDB deletes it after `expires` (epoch seconds).
    Archived { expires: &'a str },
    /// Hot again.
    Hot,
}
