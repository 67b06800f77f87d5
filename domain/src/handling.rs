//! Everyday handling of messages and conversations by agents: deleting and
//! tagging messages, resolving, assigning and reading conversations.
//!
//! Each decision is idempotent: asking for the state that already holds
//! decides nothing, so a retried request appends no second event.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::conversation::{Conversation, ConversationState};
use crate::event::Event;
use crate::message::Message;

/// At most this many tags on one message.
pub const MAX_TAGS: usize = 20;
/// At most this many characters in one tag.
pub const MAX_TAG_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlingError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

fn invalid(field: &'static str, message: impl Into<String>) -> HandlingError {
    HandlingError::Invalid { field, message: message.into() }
}

/// Deletes a message: its content is redacted from every read model, its
/// events stay. The conversation's preview is redacted by
/// [`redact_preview`].
pub fn delete_message(state: &Message, by: &str, now: DateTime<Utc>) -> Result<Vec<Event>, HandlingError> {
    if !state.exists() {
        return Err(HandlingError::NotFound("message"));
    }
    if state.deleted {
        return Ok(Vec::new());
    }
    Ok(vec![Event::MessageDeleted { at: now, by: by.to_owned() }])
}

/// Redacts a deleted message from its conversation's preview.
pub fn redact_preview(state: &Conversation, message_id: Uuid, now: DateTime<Utc>) -> Vec<Event> {
    if !state.exists() {
        return Vec::new();
    }
    vec![Event::ConversationMessageDeleted { message_id, at: now }]
}

/// Normalises tags: trimmed, lower-cased, sorted, without duplicates; each 1
/// to 40 letters, digits, `-`, `_`, `:` or `.`; at most 20.
pub fn normalise_tags(tags: &[String]) -> Result<Vec<String>, HandlingError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let t = tag.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS {
            return Err(invalid("tags", format!("each tag has 1 to {MAX_TAG_CHARS} characters")));
        }
        if !t.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')) {
            return Err(invalid("tags", format!("`{t}` may hold only letters, digits, `-`, `_`, `:` and `.`")));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

/// Sets a message's tags to exactly `tags`.
pub fn tag_message(
    state: &Message,
    tags: &[String],
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, HandlingError> {
    if !state.exists() {
        return Err(HandlingError::NotFound("message"));
    }
    let tags = normalise_tags(tags)?;
    if tags == state.tags {
        return Ok(Vec::new());
    }
    Ok(vec![Event::MessageTagged { tags, at: now, by: by.to_owned() }])
}

fn existing(state: &Conversation) -> Result<(), HandlingError> {
    if state.exists() {
        Ok(())
    } else {
        Err(HandlingError::NotFound("conversation"))
    }
}

/// Resolves an open conversation; the next inbound message reopens it.
pub fn resolve(state: &Conversation, by: &str, now: DateTime<Utc>) -> Result<Vec<Event>, HandlingError> {
    existing(state)?;
    if state.state == Some(ConversationState::Resolved) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ConversationResolved { at: now, by: by.to_owned() }])
}

/// Assigns the conversation to a user, or unassigns it with `None`.
pub fn assign(
    state: &Conversation,
    assignee: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, HandlingError> {
    existing(state)?;
    if let Some(a) = assignee {
        if a.trim().is_empty() || a.len() > 128 || a.chars().any(char::is_control) {
            return Err(invalid("assignee", "must be a user id of 1 to 128 characters"));
        }
    }
    if state.assignee.as_deref() == assignee {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ConversationAssigned { assignee: assignee.map(str::to_owned), at: now, by: by.to_owned() }])
}

/// Marks the conversation read by an agent. Decides nothing when no inbound
/// message arrived since the last read, so WhatsApp is told only once.
pub fn mark_read(
    state: &Conversation,
    wamid: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, HandlingError> {
    existing(state)?;
    if state.unread == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ConversationMarkedRead { at: now, by: by.to_owned(), wamid: wamid.map(str::to_owned) }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{record_inbound, RecordInbound};
    use crate::event::{Direction, MessageQueued, Preview};
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn message() -> Message {
        let q = MessageQueued {
            message_id: Uuid::from_u128(1),
            conversation_id: Uuid::from_u128(2),
            number_id: "n".into(),
            wa_id: "c".into(),
            kind: "text".into(),
            content: serde_json::json!({"body": "hi"}),
            reply_to: None,
            queued_at: t(0),
        };
        Message::fold(&crate::message::queue(&Message::default(), q))
    }

    fn conversation() -> Conversation {
        let cmd = RecordInbound {
            conversation_id: Uuid::from_u128(7),
            number_id: "n".into(),
            wa_id: "c".into(),
            message_id: Uuid::from_u128(3),
            sent_at: t(0),
            preview: Preview {
                message_id: Uuid::from_u128(3),
                direction: Direction::Inbound,
                kind: "text".into(),
                text: None,
                at: t(0),
            },
            contact_name: None,
            referral: None,
        };
        Conversation::fold(&record_inbound(&Conversation::default(), cmd, t(1)))
    }

    fn apply<S>(s: S, events: Vec<Event>, f: fn(S, &Event) -> S) -> S {
        events.iter().fold(s, f)
    }

    #[test]
    fn delete_is_once_and_needs_a_message() {
        assert_eq!(delete_message(&Message::default(), "u", t(1)), Err(HandlingError::NotFound("message")));
        let m = message();
        let ev = delete_message(&m, "u", t(1)).unwrap();
        assert_eq!(ev.len(), 1);
        let m = apply(m, ev, Message::evolve);
        assert!(m.deleted);
        assert!(delete_message(&m, "u", t(2)).unwrap().is_empty());
    }

    #[test]
    fn tags_are_normalised_validated_and_idempotent() {
        let m = message();
        let ev = tag_message(&m, &[" VIP ".into(), "billing".into(), "vip".into()], "u", t(1)).unwrap();
        assert_eq!(
            ev,
            vec![Event::MessageTagged { tags: vec!["billing".into(), "vip".into()], at: t(1), by: "u".into() }]
        );
        let m = apply(m, ev, Message::evolve);
        assert!(tag_message(&m, &["vip".into(), "billing".into()], "u", t(2)).unwrap().is_empty());
        assert!(matches!(tag_message(&m, &["a b".into()], "u", t(2)), Err(HandlingError::Invalid { .. })));
        assert!(matches!(tag_message(&m, &["".into()], "u", t(2)), Err(HandlingError::Invalid { .. })));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(matches!(tag_message(&m, &many, "u", t(2)), Err(HandlingError::Invalid { .. })));
        assert_eq!(tag_message(&m, &[], "u", t(3)).unwrap().len(), 1, "clearing tags is a change");
    }

    #[test]
    fn resolve_assign_and_read_are_idempotent() {
        assert!(resolve(&Conversation::default(), "u", t(1)).is_err());
        let c = conversation();
        let c = apply(c.clone(), resolve(&c, "u", t(2)).unwrap(), Conversation::evolve);
        assert!(resolve(&c, "u", t(3)).unwrap().is_empty());

        let c = apply(c.clone(), assign(&c, Some("agent-1"), "u", t(3)).unwrap(), Conversation::evolve);
        assert_eq!(c.assignee.as_deref(), Some("agent-1"));
        assert!(assign(&c, Some("agent-1"), "u", t(4)).unwrap().is_empty());
        assert!(assign(&c, Some(" "), "u", t(4)).is_err());
        let c = apply(c.clone(), assign(&c, None, "u", t(4)).unwrap(), Conversation::evolve);
        assert_eq!(c.assignee, None);

        assert_eq!(c.unread, 1);
        let c = apply(c.clone(), mark_read(&c, Some("wamid.1"), "u", t(5)).unwrap(), Conversation::evolve);
        assert_eq!(c.unread, 0);
        assert!(mark_read(&c, Some("wamid.1"), "u", t(6)).unwrap().is_empty());
    }
}
