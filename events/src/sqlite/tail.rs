//! The tail cache: the newest committed events, kept in memory by the writer
//! so that consumers following right behind it (projections, reactors) read
//! them without a trip through SQLite and JSON.
//!
//! The cache is a ring of consecutive global positions: the writer adds each
//! commit's events in position order after the commit, and whenever a
//! position does not follow the newest one held (another connection wrote to
//! the file in between) the ring starts over. So a read that starts inside
//! the ring gets exactly what the log holds there; a read that starts before
//! it, or at or after its newest event, is left to SQLite. Streams are not
//! served from here: a stream's older events may have left the ring, and
//! nothing in it could tell.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::envelope::RecordedEvent;

/// How many events the ring holds by default: about a second and a half of
/// the busiest traffic the local server is built for (10,000 messages of a
/// little over two events each per second).
pub(crate) const DEFAULT_CAPACITY: usize = 32_768;

/// The most memory the ring may hold (estimated, see [`footprint`]),
/// whatever its capacity in events: large payloads shorten it instead.
const MAX_BYTES: usize = 64 << 20;

/// One committed event and the memory it was estimated to take.
#[derive(Debug)]
struct Cached {
    event: Arc<RecordedEvent>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Cached>,
    bytes: usize,
}

/// The newest committed events, shared by the writer and the readers.
#[derive(Debug)]
pub(super) struct Tail {
    capacity: usize,
    ring: Mutex<Ring>,
}

/// A committed event on its way into the ring, with the length of its data's
/// JSON text (which stands in for the size of the parsed data).
#[derive(Debug)]
pub(super) struct Committed {
    pub event: RecordedEvent,
    pub data_len: usize,
}

impl Tail {
    /// A ring of at most `capacity` events; 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, ring: Mutex::new(Ring::default()) }
    }

    /// The ring, even if a thread panicked while holding it: every change
    /// leaves it consistent, so what it holds is still right.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds the events of one commit, in position order. Called by the
    /// writer after the commit and before it tells anyone about it.
    pub fn extend(&self, committed: impl IntoIterator<Item = Committed>) {
        if self.capacity == 0 {
            return;
        }
        // Build the shared events before taking the lock, and drop evicted
        // ones after releasing it: readers wait only for the pointer moves.
        let fresh: Vec<Cached> = committed
            .into_iter()
            .map(|c| {
                let bytes = footprint(&c.event, c.data_len);
                Cached { event: Arc::new(c.event), bytes }
            })
            .collect();
        let mut evicted = Vec::new();
        {
            let mut ring = self.lock();
            for cached in fresh {
                let follows = ring.events.back().is_none_or(|newest| {
                    newest.event.global_position.checked_add(1) == Some(cached.event.global_position)
                });
                if !follows {
                    evicted.extend(ring.events.drain(..));
                    ring.bytes = 0;
                }
                ring.bytes += cached.bytes;
                ring.events.push_back(cached);
                while ring.events.len() > self.capacity || (ring.bytes > MAX_BYTES && ring.events.len() > 1) {
                    let Some(oldest) = ring.events.pop_front() else { break };
                    ring.bytes -= oldest.bytes;
                    evicted.push(oldest);
                }
            }
        }
        drop(evicted);
    }

    /// Forgets every cached event (after events were archived away): reads
    /// go to the file until the next commit starts the ring anew.
    pub fn clear(&self) {
        let evicted: Vec<Cached> = {
            let mut ring = self.lock();
            ring.bytes = 0;
            ring.events.drain(..).collect()
        };
        drop(evicted);
    }

    /// Up to `max` events after position `after`, if the ring holds the
    /// event right after it and a newer one is not known to be missing;
    /// `None` when SQLite has to answer.
    pub fn read_after(&self, after: u64, max: usize) -> Option<Vec<RecordedEvent>> {
        let shared: Vec<Arc<RecordedEvent>> = {
            let ring = self.lock();
            let oldest = ring.events.front()?.event.global_position;
            let newest = ring.events.back()?.event.global_position;
            // Before the ring, some events may be missing from it; at or
            // past its newest event, another connection may have written
            // what this writer never saw.
            if after.checked_add(1)? < oldest || after >= newest {
                return None;
            }
            let start = usize::try_from(after + 1 - oldest).ok()?;
            ring.events.range(start..).take(max).map(|c| Arc::clone(&c.event)).collect()
        };
        // The deep copies the port hands out are made outside the lock.
        Some(shared.iter().map(|event| RecordedEvent::clone(event)).collect())
    }
}

/// A rough size of an event in memory: the envelope, its strings, and its
/// parsed data at about three times the length of its JSON text (maps and
/// strings of `serde_json::Value` carry that much overhead on small values).
fn footprint(event: &RecordedEvent, data_len: usize) -> usize {
    size_of::<Cached>()
        + size_of::<RecordedEvent>()
        + event.stream_id.len()
        + event.tenant_id.len()
        + event.event_type.len()
        + event.actor.len()
        + 3 * data_len
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn recorded(position: u64) -> Committed {
        let event = RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: format!("s-{position}"),
            version: 1,
            tenant_id: "t".into(),
            event_type: "Counted".into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "test".into(),
            data: json!({ "n": position }),
            global_position: position,
        };
        Committed { data_len: event.data.to_string().len(), event }
    }

    fn positions(events: Option<Vec<RecordedEvent>>) -> Option<Vec<u64>> {
        events.map(|events| events.iter().map(|e| e.global_position).collect())
    }

    #[test]
    fn serves_reads_that_start_inside_the_ring() {
        let tail = Tail::new(4);
        tail.extend((1..=6).map(recorded));
        // The ring holds 3..=6.
        assert_eq!(positions(tail.read_after(2, 10)), Some(vec![3, 4, 5, 6]));
        assert_eq!(positions(tail.read_after(3, 2)), Some(vec![4, 5]));
        assert_eq!(positions(tail.read_after(5, 10)), Some(vec![6]));
    }

    #[test]
    fn leaves_reads_before_or_past_the_ring_to_sqlite() {
        let tail = Tail::new(4);
        assert_eq!(positions(tail.read_after(0, 10)), None, "an empty ring knows nothing");
        tail.extend((1..=6).map(recorded));
        assert_eq!(positions(tail.read_after(1, 10)), None, "position 2 has left the ring");
        assert_eq!(positions(tail.read_after(0, 10)), None);
        assert_eq!(positions(tail.read_after(6, 10)), None, "newer events could come from elsewhere");
        assert_eq!(positions(tail.read_after(60, 10)), None);
        assert_eq!(positions(tail.read_after(u64::MAX, 10)), None);
    }

    #[test]
    fn starts_over_when_positions_skip() {
        let tail = Tail::new(8);
        tail.extend((1..=3).map(recorded));
        // Positions 4 and 5 were written by another connection.
        tail.extend((6..=7).map(recorded));
        assert_eq!(positions(tail.read_after(2, 10)), None, "the ring cannot vouch for 4 and 5");
        assert_eq!(positions(tail.read_after(3, 10)), None);
        assert_eq!(positions(tail.read_after(5, 10)), Some(vec![6, 7]));
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let tail = Tail::new(0);
        tail.extend((1..=3).map(recorded));
        assert_eq!(positions(tail.read_after(1, 10)), None);
    }

    #[test]
    fn the_byte_budget_shortens_the_ring() {
        let tail = Tail::new(1000);
        let big = MAX_BYTES / 3;
        tail.extend((1..=5).map(|position| Committed { data_len: big, ..recorded(position) }));
        // Each event takes a little over the whole budget: only the newest stays.
        assert_eq!(positions(tail.read_after(3, 10)), None);
        assert_eq!(positions(tail.read_after(4, 10)), Some(vec![5]));
    }
}
