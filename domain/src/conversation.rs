//! The conversation aggregate (SPEC 3.3): one per tenant, business number and
//! contact. It owns the customer-service window.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Direction, Event, Preview, Referral};
use crate::window;

/// How many recent inbound message ids a conversation remembers so that
/// recording the same message twice (a retried request, a redelivered
/// webhook racing its first delivery) changes nothing.
const RECENT_INBOUND: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationState {
    Open,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    pub id: Option<Uuid>,
    pub number_id: String,
    pub wa_id: String,
    pub state: Option<ConversationState>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub window_closes_at: Option<DateTime<Utc>>,
    /// The `closes_at` for which `ConversationWindowExpired` was last emitted.
    pub expired_window: Option<DateTime<Utc>>,
    /// The user handling the conversation.
    pub assignee: Option<String>,
    /// Inbound messages recorded since an agent last read the conversation.
    pub unread: u32,
    /// When the free entry point window of a click-to-WhatsApp ad closes.
    pub entry_point_closes_at: Option<DateTime<Utc>>,
    recent_inbound: VecDeque<Uuid>,
}

impl Conversation {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_window_open(&self, now: DateTime<Utc>) -> bool {
        window::is_open(self.window_closes_at, now)
    }

    pub fn has_recorded(&self, message_id: Uuid) -> bool {
        self.recent_inbound.contains(&message_id)
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::ConversationOpened { conversation_id, number_id, wa_id, .. } => {
                self.id = Some(*conversation_id);
                self.number_id = number_id.clone();
                self.wa_id = wa_id.clone();
                self.state = Some(ConversationState::Open);
            }
            Event::InboundMessageRecorded { message_id, at, window_closes_at, .. } => {
                self.last_inbound_at = Some(self.last_inbound_at.map_or(*at, |l| l.max(*at)));
                self.window_closes_at =
                    Some(self.window_closes_at.map_or(*window_closes_at, |w| w.max(*window_closes_at)));
                if self.recent_inbound.len() == RECENT_INBOUND {
                    self.recent_inbound.pop_front();
                }
                self.recent_inbound.push_back(*message_id);
                self.unread = self.unread.saturating_add(1);
            }
            Event::EntryPointWindowOpened { closes_at, .. } => {
                self.entry_point_closes_at = Some(self.entry_point_closes_at.map_or(*closes_at, |c| c.max(*closes_at)));
            }
            Event::ConversationAssigned { assignee, .. } => self.assignee = assignee.clone(),
            Event::ConversationMarkedRead { .. } => self.unread = 0,
            Event::ConversationWindowExpired { closed_at } => self.expired_window = Some(*closed_at),
            Event::ConversationResolved { .. } => self.state = Some(ConversationState::Resolved),
            Event::ConversationReopened { .. } => self.state = Some(ConversationState::Open),
            _ => {}
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Conversation::default(), Conversation::evolve)
    }
}

#[derive(Debug, Clone)]
pub struct RecordInbound {
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub message_id: Uuid,
    /// When the contact sent it (WhatsApp's timestamp).
    pub sent_at: DateTime<Utc>,
    pub preview: Preview,
    pub contact_name: Option<String>,
    /// The ad the contact came from, for click-to-WhatsApp messages.
    pub referral: Option<Referral>,
}

/// Records an inbound message: opens (or reopens) the conversation and moves
/// the window to 24h after the message; a message from an ad also opens the
/// 72h entry point window. Idempotent per message id.
pub fn record_inbound(state: &Conversation, cmd: RecordInbound, now: DateTime<Utc>) -> Vec<Event> {
    if state.has_recorded(cmd.message_id) {
        return Vec::new();
    }
    let mut events = Vec::new();
    open_or_reopen(state, &cmd.conversation_id, &cmd.number_id, &cmd.wa_id, Direction::Inbound, now, &mut events);
    // A timestamp from the future (clock skew) must not stretch the window.
    let sent_at = cmd.sent_at.min(now);
    events.push(Event::InboundMessageRecorded {
        message_id: cmd.message_id,
        at: sent_at,
        window_closes_at: window::closes_at(sent_at),
        preview: cmd.preview,
        contact_name: cmd.contact_name,
    });
    if let Some(referral) = cmd.referral {
        events.push(Event::EntryPointWindowOpened {
            message_id: cmd.message_id,
            at: sent_at,
            closes_at: sent_at + window::entry_point_window(),
            referral,
        });
    }
    events
}

#[derive(Debug, Clone)]
pub struct RecordOutbound {
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub preview: Preview,
}

/// Records an outbound message queued in this conversation, opening it if the
/// business starts it.
pub fn record_outbound(state: &Conversation, cmd: RecordOutbound, now: DateTime<Utc>) -> Vec<Event> {
    let mut events = Vec::new();
    if !state.exists() {
        open_or_reopen(state, &cmd.conversation_id, &cmd.number_id, &cmd.wa_id, Direction::Outbound, now, &mut events);
    }
    events.push(Event::OutboundMessageRecorded { message_id: cmd.preview.message_id, at: now, preview: cmd.preview });
    events
}

fn open_or_reopen(
    state: &Conversation,
    id: &Uuid,
    number_id: &str,
    wa_id: &str,
    origin: Direction,
    now: DateTime<Utc>,
    events: &mut Vec<Event>,
) {
    match state.state {
        None => events.push(Event::ConversationOpened {
            conversation_id: *id,
            number_id: number_id.to_owned(),
            wa_id: wa_id.to_owned(),
            origin,
            at: now,
        }),
        Some(ConversationState::Resolved) => events.push(Event::ConversationReopened { at: now }),
        Some(ConversationState::Open) => {}
    }
}

/// Emits `ConversationWindowExpired` once per window that has closed by `now`.
pub fn expire_window(state: &Conversation, now: DateTime<Utc>) -> Vec<Event> {
    match state.window_closes_at {
        Some(closes) if closes <= now && state.expired_window != Some(closes) => {
            vec![Event::ConversationWindowExpired { closed_at: closes }]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn inbound(id: u128, at: i64) -> RecordInbound {
        RecordInbound {
            conversation_id: Uuid::from_u128(7),
            number_id: "n".into(),
            wa_id: "c".into(),
            message_id: Uuid::from_u128(id),
            sent_at: t(at),
            preview: Preview {
                message_id: Uuid::from_u128(id),
                direction: Direction::Inbound,
                kind: "text".into(),
                text: None,
                at: t(at),
            },
            contact_name: None,
            referral: None,
        }
    }

    fn apply(state: Conversation, events: &[Event]) -> Conversation {
        events.iter().fold(state, Conversation::evolve)
    }

    #[test]
    fn inbound_opens_window_for_24h_and_is_idempotent() {
        let s = Conversation::default();
        let ev = record_inbound(&s, inbound(1, 0), t(5));
        assert_eq!(ev.len(), 2);
        let s = apply(s, &ev);
        assert!(s.is_window_open(t(5)));
        assert!(s.is_window_open(t(0) + Duration::hours(24) - Duration::seconds(1)));
        assert!(!s.is_window_open(t(0) + Duration::hours(24)));
        assert!(record_inbound(&s, inbound(1, 0), t(6)).is_empty());
    }

    #[test]
    fn late_older_message_does_not_shrink_window() {
        let s = apply(Conversation::default(), &record_inbound(&Conversation::default(), inbound(2, 100), t(100)));
        let s = apply(s.clone(), &record_inbound(&s, inbound(1, 0), t(101)));
        assert_eq!(s.window_closes_at, Some(t(100) + Duration::hours(24)));
    }

    #[test]
    fn a_referral_opens_the_72h_entry_point_window_beside_the_24h_one() {
        let mut cmd = inbound(1, 0);
        cmd.referral = Some(Referral { source_type: Some("ad".into()), ..Referral::default() });
        let ev = record_inbound(&Conversation::default(), cmd, t(5));
        assert!(
            matches!(ev.last(), Some(Event::EntryPointWindowOpened { closes_at, .. }) if *closes_at == t(0) + Duration::hours(72))
        );
        let s = apply(Conversation::default(), &ev);
        assert_eq!(s.entry_point_closes_at, Some(t(0) + Duration::hours(72)));
        assert!(!s.is_window_open(t(0) + Duration::hours(25)), "free-form sends still follow the 24h window");
        let plain = record_inbound(&Conversation::default(), inbound(2, 0), t(5));
        assert!(!plain.iter().any(|e| matches!(e, Event::EntryPointWindowOpened { .. })));
    }

    #[test]
    fn window_expiry_is_emitted_once() {
        let s = apply(Conversation::default(), &record_inbound(&Conversation::default(), inbound(1, 0), t(0)));
        assert!(expire_window(&s, t(10)).is_empty());
        let later = t(0) + Duration::hours(25);
        let ev = expire_window(&s, later);
        assert_eq!(ev.len(), 1);
        let s = apply(s, &ev);
        assert!(expire_window(&s, later + Duration::hours(1)).is_empty());
    }
}
