//! An event store held in process memory: for tests and for tools that need
//! a throwaway log. It keeps every guarantee of the port except durability.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

/// The in-memory [`EventStore`] adapter.
#[derive(Debug)]
pub struct MemoryEventStore {
    log: Mutex<Log>,
    head: watch::Sender<u64>,
}

/// The global log plus, per stream, the indexes of its events in the log.
/// An archived event leaves an empty slot, so positions stay indexes.
#[derive(Debug, Default)]
struct Log {
    events: Vec<Option<RecordedEvent>>,
    streams: HashMap<String, Vec<usize>>,
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self { log: Mutex::new(Log::default()), head: watch::Sender::new(0) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Log>, StoreError> {
        // A panic while holding the lock happens between checks and pushes,
        // which could leave a half-applied append: refuse to go on with it.
        self.log.lock().map_err(|_| StoreError::Unavailable("in-memory log poisoned by a panic".into()))
    }
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
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
        let outcome = {
            let mut log = self.lock()?;
            let actual = log.streams.get(stream_id).map_or(0, |indexes| indexes.len() as u64);
            if !expected.admits(actual) {
                return Err(StoreError::Conflict { stream_id: stream_id.to_owned(), expected, actual });
            }
            let recorded_at = Utc::now();
            let first_index = log.events.len();
            let mut version = actual;
            for event in events {
                version += 1;
                let global_position = log.events.len() as u64 + 1;
                log.events.push(Some(RecordedEvent {
                    event_id: event.event_id,
                    stream_id: stream_id.to_owned(),
                    version,
                    tenant_id: tenant_id.to_owned(),
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    occurred_at: event.occurred_at,
                    recorded_at,
                    correlation_id: event.correlation_id,
                    causation_id: event.causation_id,
                    actor: event.actor,
                    data: event.data,
                    global_position,
                }));
            }
            let last_index = log.events.len();
            log.streams.entry(stream_id.to_owned()).or_default().extend(first_index..last_index);
            AppendOutcome { version, last_position: last_index as u64 }
        };
        self.head.send_replace(outcome.last_position);
        Ok(outcome)
    }

    async fn read_stream(&self, stream_id: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock()?;
        let Some(indexes) = log.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        // Versions are 1-based and gapless, so version v sits at indexes[v - 1].
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        Ok(indexes.iter().skip(skip).filter_map(|&index| log.events.get(index).cloned().flatten()).collect())
    }

    async fn read_all(&self, after_position: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock()?;
        // Positions are 1-based and dense, so position p sits at index p - 1.
        let skip = usize::try_from(after_position).unwrap_or(usize::MAX);
        Ok(log.events.iter().skip(skip).flatten().take(max).cloned().collect())
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.events.len() as u64)
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
        let log = self.lock()?;
        let mut dormant: Vec<String> = log
            .streams
            .iter()
            .filter(|(stream_id, _)| stream_id.starts_with(prefix))
            .filter_map(|(stream_id, indexes)| {
                let newest = indexes.iter().filter_map(|&i| log.events[i].as_ref()).map(|e| e.occurred_at).max()?;
                (newest < before).then(|| stream_id.clone())
            })
            .collect();
        dormant.sort();
        dormant.truncate(limit);
        Ok(dormant)
    }

    async fn archive_streams(&self, stream_ids: &[String]) -> Result<(), StoreError> {
        let mut log = self.lock()?;
        for stream_id in stream_ids {
            let indexes = log.streams.get(stream_id).cloned().unwrap_or_default();
            for index in indexes {
                log.events[index] = None;
            }
        }
        Ok(())
    }

    async fn restore_events(&self, events: &[RecordedEvent]) -> Result<usize, StoreError> {
        let mut log = self.lock()?;
        // Check everything first, so a bad event restores nothing.
        for event in events {
            let index = usize::try_from(event.global_position).unwrap_or(usize::MAX).wrapping_sub(1);
            let belongs = log.streams.get(&event.stream_id).and_then(|indexes| {
                indexes.get(usize::try_from(event.version).ok()?.checked_sub(1)?).map(|&i| i == index)
            });
            if belongs != Some(true) {
                return Err(StoreError::Corrupt(format!(
                    "event {} (stream {} version {} position {}) was never recorded in this store",
                    event.event_id, event.stream_id, event.version, event.global_position
                )));
            }
        }
        let mut restored = 0;
        for event in events {
            let slot = &mut log.events[event.global_position as usize - 1];
            if slot.is_none() {
                *slot = Some(event.clone());
                restored += 1;
            }
        }
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryEventStore;
    use crate::conformance::run_event_store_suite;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_event_store_suite() {
        run_event_store_suite(|| async { MemoryEventStore::new() }).await;
    }
}
