//! The contact aggregate (SPEC 3.2): one per tenant and `wa_id`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Event, OptSource};
use crate::optout::{KeywordAction, Keywords};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptState {
    OptedIn,
    OptedOut { at: DateTime<Utc>, source: OptSource },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    pub exists: bool,
    pub wa_id: String,
    pub name: Option<String>,
    pub opt: Option<OptState>,
    pub tags: Vec<String>,
    /// Custom attributes set by the tenant.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: Option<DateTime<Utc>>,
    /// The contact stopped marketing messages (and when); other messages still go.
    pub marketing_stopped: Option<DateTime<Utc>>,
    /// When the marketing preference last changed, so a late report never overrides a newer one.
    marketing_changed: Option<DateTime<Utc>>,
    /// When the contact was last erased (GDPR), until it is created again.
    pub erased_at: Option<DateTime<Utc>>,
    /// Ordering key of the last opt change made by a message: (sent time,
    /// message id). An older keyword message, redelivered or late, never
    /// overrides a newer one.
    last_keyword: Option<(DateTime<Utc>, Uuid)>,
}

impl Contact {
    pub fn is_opted_out(&self) -> bool {
        matches!(self.opt, Some(OptState::OptedOut { .. }))
    }

    pub fn opted_out_since(&self) -> Option<DateTime<Utc>> {
        match self.opt {
            Some(OptState::OptedOut { at, .. }) => Some(at),
            _ => None,
        }
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            // Nothing of the contact is kept; a later message starts a new one.
            Event::ContactErased { at, .. } => self = Contact { erased_at: Some(*at), ..Contact::default() },
            Event::ContactCreated { wa_id, name, at } => {
                self.exists = true;
                self.erased_at = None;
                self.created_at = Some(*at);
                self.wa_id = wa_id.clone();
                self.name = name.clone();
                self.opt = Some(OptState::OptedIn);
            }
            Event::ContactRenamed { name, .. } => self.name = name.clone(),
            Event::ContactMarketingPreferenceChanged { stopped, at, .. } => {
                self.marketing_stopped = stopped.then_some(*at);
                self.marketing_changed = Some(*at);
            }
            Event::ContactUpdated { tags, attributes, .. } => {
                if let Some(tags) = tags {
                    self.tags = tags.clone();
                }
                if let Some(attributes) = attributes {
                    self.attributes = attributes.clone();
                }
            }
            Event::ContactOptedOut { at, source, message_id, .. } => {
                self.opt = Some(OptState::OptedOut { at: *at, source: *source });
                if let Some(id) = message_id {
                    self.last_keyword = Some((*at, *id));
                }
            }
            Event::ContactOptedIn { at, message_id, .. } => {
                self.opt = Some(OptState::OptedIn);
                if let Some(id) = message_id {
                    self.last_keyword = Some((*at, *id));
                }
            }
            _ => {}
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Contact::default(), Contact::evolve)
    }
}

/// An inbound message as the contact aggregate sees it.
#[derive(Debug, Clone)]
pub struct ObserveInbound<'a> {
    pub wa_id: &'a str,
    pub profile_name: Option<&'a str>,
    pub message_id: Uuid,
    pub sent_at: DateTime<Utc>,
    pub text: Option<&'a str>,
    pub keywords: &'a Keywords,
}

/// Creates the contact on first contact, follows profile name changes and
/// applies opt-out / opt-in keywords.
pub fn observe_inbound(state: &Contact, cmd: &ObserveInbound<'_>) -> Vec<Event> {
    let mut events = Vec::new();
    let name = cmd.profile_name.map(str::to_owned);
    if !state.exists {
        events.push(Event::ContactCreated { wa_id: cmd.wa_id.to_owned(), name: name.clone(), at: cmd.sent_at });
    } else if name.is_some() && name != state.name {
        events.push(Event::ContactRenamed { name, at: cmd.sent_at });
    }
    let key = (cmd.sent_at, cmd.message_id);
    let newer = state.last_keyword.is_none_or(|last| key > last);
    if let (Some(action), true) = (cmd.text.and_then(|t| cmd.keywords.classify(t)), newer) {
        let opted_out = state.is_opted_out();
        match action {
            KeywordAction::OptOut(keyword) if !opted_out => events.push(Event::ContactOptedOut {
                at: cmd.sent_at,
                source: OptSource::Keyword,
                keyword: Some(keyword),
                message_id: Some(cmd.message_id),
            }),
            KeywordAction::OptIn(keyword) if opted_out => events.push(Event::ContactOptedIn {
                at: cmd.sent_at,
                source: OptSource::Keyword,
                keyword: Some(keyword),
                message_id: Some(cmd.message_id),
            }),
            _ => {}
        }
    }
    events
}

/// Records a marketing stop or resume reported by WhatsApp at `at`. A
/// report older than the last change, or one that changes nothing, decides
/// nothing. Creates the contact when WhatsApp knows them before Parley does.
pub fn marketing_preference(state: &Contact, wa_id: &str, stopped: bool, at: DateTime<Utc>) -> Vec<Event> {
    if state.marketing_changed.is_some_and(|last| at < last) || state.marketing_stopped.is_some() == stopped {
        return Vec::new();
    }
    let mut events = Vec::new();
    if !state.exists {
        events.push(Event::ContactCreated { wa_id: wa_id.to_owned(), name: None, at });
    }
    events.push(Event::ContactMarketingPreferenceChanged { stopped, at, source: OptSource::WhatsApp });
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn observe(state: &Contact, text: &str, at: i64, id: u128) -> (Contact, Vec<Event>) {
        let keywords = Keywords::default();
        let cmd = ObserveInbound {
            wa_id: "16505551234",
            profile_name: Some("Sheena"),
            message_id: Uuid::from_u128(id),
            sent_at: t(at),
            text: Some(text),
            keywords: &keywords,
        };
        let events = observe_inbound(state, &cmd);
        let next = events.iter().fold(state.clone(), Contact::evolve);
        (next, events)
    }

    #[test]
    fn first_message_creates_and_stop_opts_out() {
        let (c, ev) = observe(&Contact::default(), "hello", 0, 1);
        assert_eq!(ev.len(), 1);
        assert!(c.exists && !c.is_opted_out());
        let (c, ev) = observe(&c, "STOP", 10, 2);
        assert!(matches!(ev[0], Event::ContactOptedOut { .. }));
        assert!(c.is_opted_out());
        // A second STOP changes nothing.
        let (c, ev) = observe(&c, "stop", 20, 3);
        assert!(ev.is_empty() && c.is_opted_out());
        let (c, _) = observe(&c, "START", 30, 4);
        assert!(!c.is_opted_out());
    }

    #[test]
    fn late_stop_does_not_override_newer_start() {
        let (c, _) = observe(&Contact::default(), "STOP", 10, 1);
        let (c, _) = observe(&c, "START", 20, 2);
        let (c, ev) = observe(&c, "STOP", 10, 1);
        assert!(ev.is_empty());
        assert!(!c.is_opted_out());
    }

    #[test]
    fn marketing_stop_and_resume_follow_the_newest_report() {
        let c = Contact::default();
        let ev = marketing_preference(&c, "1650", true, t(10));
        assert_eq!(ev.len(), 2, "creates the contact first");
        let c = ev.iter().fold(c, Contact::evolve);
        assert_eq!(c.marketing_stopped, Some(t(10)));
        assert!(!c.is_opted_out(), "other messages still go");
        assert!(marketing_preference(&c, "1650", true, t(11)).is_empty());
        assert!(marketing_preference(&c, "1650", false, t(5)).is_empty(), "an older resume is stale");
        let c = marketing_preference(&c, "1650", false, t(20)).iter().fold(c, Contact::evolve);
        assert_eq!(c.marketing_stopped, None);
    }

    #[test]
    fn renames_only_on_change() {
        let (c, _) = observe(&Contact::default(), "hi", 0, 1);
        let (_, ev) = observe(&c, "hi again", 1, 2);
        assert!(ev.is_empty());
    }
}
