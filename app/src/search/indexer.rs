//! From recorded message events to changes of the search index.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parley_domain::search::{message_texts, words, MAX_WORDS_PER_MESSAGE};
use parley_domain::Event;
use parley_events::RecordedEvent;
use uuid::Uuid;

use super::{Blinder, SearchChange};
use crate::error::AppError;
use crate::sealing::EventSealer;

/// Reads what a message says (opening its sealed content) and hands the
/// index its terms. Every adapter's projection goes through this, so all
/// index the same words.
#[derive(Clone)]
pub struct SearchIndexer {
    sealer: Arc<EventSealer>,
    blinder: Arc<Blinder>,
}

impl SearchIndexer {
    pub fn new(sealer: Arc<EventSealer>, blinder: Arc<Blinder>) -> Self {
        SearchIndexer { sealer, blinder }
    }

    /// The index changes `events` make, in order. Events of other streams
    /// and types make none; a message whose contact was erased has no
    /// readable text and adds no terms.
    pub async fn changes(&self, events: &[RecordedEvent]) -> Result<Vec<SearchChange>, AppError> {
        let mut changes = Vec::new();
        // When each message of the batch was created: a template's text
        // arrives rendered after its queued event, and its entry takes the
        // message's time, not the rendering's.
        let mut created: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        for e in events {
            if !matches!(
                e.event_type.as_str(),
                "MessageReceived" | "MessageQueued" | "MessageRendered" | "MessageDeleted"
            ) {
                continue;
            }
            let Some(message_id) = message_of(e) else { continue };
            let tenant_id = e.tenant_id.clone();
            let (texts, created_at): (Vec<String>, DateTime<Utc>) = match self.sealer.decode(e).await? {
                Event::MessageReceived(m) => (message_texts(&m.kind, &m.content), m.sent_at),
                Event::MessageQueued(m) => (message_texts(&m.kind, &m.content), m.queued_at),
                // An existing entry keeps its own time whatever this says.
                Event::MessageRendered { text } => {
                    (vec![text], created.get(&message_id).copied().unwrap_or(e.occurred_at))
                }
                Event::MessageDeleted { .. } => {
                    changes.push(SearchChange::Forget { tenant_id, message_id });
                    continue;
                }
                _ => continue,
            };
            created.entry(message_id).or_insert(created_at);
            let words = words(&texts.join("\n"));
            if words.is_empty() {
                continue;
            }
            debug_assert!(words.len() <= MAX_WORDS_PER_MESSAGE);
            let terms = self.blinder.terms(&tenant_id, &words, true).await?.unwrap_or_default();
            changes.push(SearchChange::Add { tenant_id, message_id, created_at, terms });
        }
        Ok(changes)
    }
}

/// The message of an event of a `{tenant}/message/{id}` stream.
fn message_of(e: &RecordedEvent) -> Option<Uuid> {
    let (_, id) = e.stream_id.rsplit_once("/message/")?;
    id.parse().ok()
}
