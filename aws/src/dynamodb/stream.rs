//! Turning the events table's stream records back into the events that were
//! appended.
//!
//! The table streams new images only. A tip's new image holds every event
//! still in the tip, old and new; the tip's `w` attribute is the stream
//! version before the write, so the new events are exactly those above it.
//! Batch items are only ever created by calving events that were already in
//! the tip (and so already streamed), and the global log's items hold no
//! events: both are skipped.

use aws_lambda_events::event::dynamodb::EventRecord;
use parley_events::{RecordedEvent, StoreError};

use super::event_store::{decode_item, kind, number, Item, ItemKind, WRITTEN_AFTER};

/// Why a stream record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum StreamDecodeError {
    /// The record carries no new image (the stream is not NEW_IMAGE or NEW_AND_OLD_IMAGES).
    #[error("stream record {event_id} has no new image: the table's stream must include new images")]
    MissingImage { event_id: String },
    /// The image is not an item this store writes.
    #[error("stream record {event_id} does not hold a valid item: {source}")]
    Corrupt {
        event_id: String,
        #[source]
        source: StoreError,
    },
}

/// The events newly appended by the writes behind `records`, in record order
/// (which within a stream is version order).
pub fn recorded_events_from_stream(records: &[EventRecord]) -> Result<Vec<RecordedEvent>, StreamDecodeError> {
    let mut events = Vec::new();
    for record in records {
        if record.event_name != "INSERT" && record.event_name != "MODIFY" {
            continue;
        }
        if record.change.new_image.is_empty() {
            return Err(StreamDecodeError::MissingImage { event_id: record.event_id.clone() });
        }
        let item: Item = record.change.new_image.clone().into();
        let corrupt = |source| StreamDecodeError::Corrupt { event_id: record.event_id.clone(), source };
        // An image of the keys alone carries no events: moto streams one
        // when an update creates an item, before the update's own record.
        if kind(&item).map_err(corrupt)? != ItemKind::Tip || item.len() <= 2 {
            continue;
        }
        let written_after: u64 = number(&item, WRITTEN_AFTER).map_err(corrupt)?;
        let decoded = decode_item(&item).map_err(corrupt)?;
        events.extend(decoded.into_iter().filter(|event| event.version > written_after));
    }
    Ok(events)
}
