//! The message aggregate (SPEC 3.4): an inbound message as received, or an
//! outbound message from queueing through dispatch to WhatsApp's statuses.
//!
//! Dispatch is designed so that no message is ever sent to WhatsApp twice:
//! the sender records `MessageDispatchStarted` (a claim, appended with the
//! expected version) *before* it calls the API. A dispatch that is still in
//! flight when the sender looks again (the sender crashed between the call and
//! recording its outcome) is never sent again; it becomes unconfirmed and is
//! settled by WhatsApp's own status webhooks, which echo Parley's message id in
//! `biz_opaque_callback_data`, or fails after a grace period.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::event::{Direction, Event, Failure, MessageQueued, MessageReceived, Pricing};
use crate::status::{DeliveryStatus, ReportedStatuses};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    #[default]
    NotStarted,
    InFlight {
        attempt: u32,
        since: DateTime<Utc>,
    },
    RetryScheduled {
        attempt: u32,
        retry_at: DateTime<Utc>,
    },
    Unconfirmed {
        attempt: u32,
        since: DateTime<Utc>,
    },
    Accepted,
    Abandoned,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub id: Option<Uuid>,
    pub direction: Option<Direction>,
    pub conversation_id: Option<Uuid>,
    pub number_id: String,
    pub wa_id: String,
    pub kind: String,
    pub wamid: Option<String>,
    pub reported: ReportedStatuses,
    pub failure: Option<Failure>,
    pub dispatch: Dispatch,
    /// Deleted by an agent: content redacted in read models.
    pub deleted: bool,
    pub tags: Vec<String>,
    /// When an outbound message was queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// The current reaction of the customer (inbound) and of the business
    /// (outbound), each the latest one set.
    pub reactions: Reactions,
    /// The kind of the last failed attempt that will be retried.
    pub last_retry_kind: Option<String>,
    /// An inbound media message's file in Parley's blob store.
    pub inbound_media: crate::media::InboundMedia,
    /// The media id WhatsApp gave an outbound message's uploaded file.
    pub whatsapp_media_id: Option<String>,
}

/// A reaction as last set by one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// Empty once removed.
    pub emoji: String,
    pub reaction_message_id: Uuid,
    pub at: DateTime<Utc>,
}

/// The reactions on a message, one per side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reactions {
    pub inbound: Option<Reaction>,
    pub outbound: Option<Reaction>,
}

impl Reactions {
    pub fn side(&self, direction: Direction) -> Option<&Reaction> {
        match direction {
            Direction::Inbound => self.inbound.as_ref(),
            Direction::Outbound => self.outbound.as_ref(),
        }
    }

    fn set(&mut self, direction: Direction, reaction: Reaction) {
        match direction {
            Direction::Inbound => self.inbound = Some(reaction),
            Direction::Outbound => self.outbound = Some(reaction),
        }
    }
}

impl Message {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_outbound(&self) -> bool {
        self.direction == Some(Direction::Outbound)
    }

    /// The status the API shows. An inbound message has arrived, so it is
    /// `delivered` until someone reads it.
    pub fn status(&self) -> DeliveryStatus {
        match self.direction {
            Some(Direction::Inbound) if self.reported.read => DeliveryStatus::Read,
            Some(Direction::Inbound) => DeliveryStatus::Delivered,
            _ => self.reported.current(),
        }
    }

    pub fn attempts(&self) -> u32 {
        match self.dispatch {
            Dispatch::InFlight { attempt, .. }
            | Dispatch::RetryScheduled { attempt, .. }
            | Dispatch::Unconfirmed { attempt, .. } => attempt,
            _ => 0,
        }
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::MessageReceived(e) => {
                self.id = Some(e.message_id);
                self.direction = Some(Direction::Inbound);
                self.conversation_id = Some(e.conversation_id);
                self.number_id = e.number_id.clone();
                self.wa_id = e.wa_id.clone();
                self.kind = e.kind.clone();
                self.wamid = Some(e.wamid.clone());
            }
            Event::MessageQueued(e) => {
                self.id = Some(e.message_id);
                self.direction = Some(Direction::Outbound);
                self.conversation_id = Some(e.conversation_id);
                self.number_id = e.number_id.clone();
                self.wa_id = e.wa_id.clone();
                self.kind = e.kind.clone();
                self.queued_at = Some(e.queued_at);
            }
            Event::MessageDispatchStarted { attempt, at } => {
                self.dispatch = Dispatch::InFlight { attempt: *attempt, since: *at };
            }
            Event::MessageAccepted { wamid, .. } => {
                self.wamid = Some(wamid.clone());
                self.dispatch = Dispatch::Accepted;
            }
            Event::MessageDispatchFailed { attempt, retry_at, failure, .. } => {
                self.dispatch = Dispatch::RetryScheduled { attempt: *attempt, retry_at: *retry_at };
                self.last_retry_kind = Some(failure.kind.clone());
            }
            Event::MessageReactionSet { direction, emoji, reaction_message_id, at } => {
                let reaction = Reaction { emoji: emoji.clone(), reaction_message_id: *reaction_message_id, at: *at };
                self.reactions.set(*direction, reaction);
            }
            Event::MessageDispatchUnconfirmed { attempt, at, .. } => {
                self.dispatch = Dispatch::Unconfirmed { attempt: *attempt, since: *at };
            }
            Event::MessageDeleted { .. } => self.deleted = true,
            Event::MessageTagged { tags, .. } => self.tags = tags.clone(),
            Event::MessageMediaStored { blob_key, mime_type, .. } => {
                self.inbound_media =
                    crate::media::InboundMedia::Stored { blob_key: blob_key.clone(), mime_type: mime_type.clone() };
            }
            Event::MessageMediaFetchFailed { reason, .. } => {
                self.inbound_media = crate::media::InboundMedia::Failed { reason: reason.clone() };
            }
            Event::MessageMediaUploaded { media_id, .. } => self.whatsapp_media_id = Some(media_id.clone()),
            Event::MessageFailed { failure, .. } => {
                self.reported.insert(DeliveryStatus::Failed);
                self.failure = Some(failure.clone());
                if self.dispatch != Dispatch::Accepted {
                    self.dispatch = Dispatch::Abandoned;
                }
            }
            other => {
                if let Some((status, _)) = other.reported_status() {
                    self.reported.insert(status);
                }
            }
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Message::default(), Message::evolve)
    }
}

/// Records an inbound message once; a second delivery of the same wamid maps
/// to the same stream and decides nothing.
pub fn receive(state: &Message, received: MessageReceived) -> Vec<Event> {
    if state.exists() {
        return Vec::new();
    }
    vec![Event::MessageReceived(received)]
}

/// Queues an outbound message. Send rules (window, opt-out) are checked by
/// `policy::check_send` against the conversation and contact first.
pub fn queue(state: &Message, queued: MessageQueued) -> Vec<Event> {
    if state.exists() {
        return Vec::new();
    }
    vec![Event::MessageQueued(queued)]
}

/// Why the sender must not call WhatsApp for a message now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchSkip {
    /// Unknown or inbound message: nothing to send.
    NotSendable,
    /// Already accepted by WhatsApp or failed for good.
    Settled,
    /// A previous attempt's outcome is unknown; sending again could duplicate it.
    OutcomeUnknown { attempt: u32 },
    /// A retry is scheduled later.
    NotDue { retry_at: DateTime<Utc> },
}

/// Claims the next dispatch attempt.
pub fn start_dispatch(state: &Message, now: DateTime<Utc>) -> Result<Vec<Event>, DispatchSkip> {
    if !state.exists() || !state.is_outbound() {
        return Err(DispatchSkip::NotSendable);
    }
    match state.dispatch {
        Dispatch::Accepted | Dispatch::Abandoned => Err(DispatchSkip::Settled),
        Dispatch::InFlight { attempt, .. } | Dispatch::Unconfirmed { attempt, .. } => {
            Err(DispatchSkip::OutcomeUnknown { attempt })
        }
        Dispatch::RetryScheduled { retry_at, .. } if now < retry_at => Err(DispatchSkip::NotDue { retry_at }),
        Dispatch::RetryScheduled { attempt, .. } => {
            Ok(vec![Event::MessageDispatchStarted { attempt: attempt + 1, at: now }])
        }
        Dispatch::NotStarted => Ok(vec![Event::MessageDispatchStarted { attempt: 1, at: now }]),
    }
}

/// WhatsApp accepted the send from `from_number_id` and gave it a wamid.
pub fn record_accepted(state: &Message, wamid: &str, from_number_id: &str, now: DateTime<Utc>) -> Vec<Event> {
    if state.wamid.is_some() || !state.is_outbound() {
        return Vec::new();
    }
    vec![Event::MessageAccepted { wamid: wamid.to_owned(), at: now, from_number_id: Some(from_number_id.to_owned()) }]
}

/// Sets one side's reaction on this message (an empty emoji removes it).
/// Reactions may arrive out of order: an older one than the current one
/// changes nothing, and so does the same reaction message twice.
pub fn react(
    state: &Message,
    direction: Direction,
    emoji: &str,
    reaction_message_id: Uuid,
    at: DateTime<Utc>,
) -> Vec<Event> {
    if !state.exists() {
        return Vec::new();
    }
    if let Some(current) = state.reactions.side(direction) {
        if current.reaction_message_id == reaction_message_id || current.at > at {
            return Vec::new();
        }
    }
    vec![Event::MessageReactionSet { direction, emoji: emoji.to_owned(), reaction_message_id, at }]
}

/// WhatsApp refused the attempt. `retry_at` is when a retry may go out, for
/// errors worth retrying; without it, or once `max_attempts` are used, the
/// message fails for good.
pub fn record_dispatch_failure(
    state: &Message,
    attempt: u32,
    failure: Failure,
    retry_at: Option<DateTime<Utc>>,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Vec<Event> {
    if !matches!(state.dispatch, Dispatch::InFlight { attempt: a, .. } if a == attempt) {
        return Vec::new();
    }
    match retry_at {
        Some(retry_at) if attempt < max_attempts => {
            vec![Event::MessageDispatchFailed { attempt, at: now, failure, retry_at }]
        }
        _ => vec![Event::MessageFailed { at: now, failure }],
    }
}

/// The attempt's outcome is unknown (timeout after the request was written,
/// or found in flight after a crash).
pub fn record_unconfirmed(state: &Message, attempt: u32, detail: &str, now: DateTime<Utc>) -> Vec<Event> {
    match state.dispatch {
        Dispatch::InFlight { attempt: a, .. } if a == attempt => {
            vec![Event::MessageDispatchUnconfirmed { attempt, at: now, detail: detail.to_owned() }]
        }
        _ => Vec::new(),
    }
}

/// Fails an unconfirmed dispatch that no status webhook settled within `grace`.
pub fn settle_unconfirmed(state: &Message, grace: Duration, now: DateTime<Utc>) -> Vec<Event> {
    match state.dispatch {
        Dispatch::Unconfirmed { since, .. } if since + grace <= now && state.wamid.is_none() => {
            vec![Event::MessageFailed {
                at: now,
                failure: Failure {
                    code: None,
                    kind: "delivery_unconfirmed".into(),
                    title: Some("No confirmation from WhatsApp".into()),
                    detail: Some("the send's outcome is unknown and WhatsApp reported no status for it".into()),
                },
            }]
        }
        _ => Vec::new(),
    }
}

/// Fails an outbound message that is still waiting to go out (never
/// started, or waiting for a retry) once it can no longer be sent: a
/// free-form message whose conversation window closed while it waited
/// (WhatsApp would refuse it with 131047), or any message queued longer than
/// `ttl`. A dispatch in flight or unconfirmed is left to the sender, which
/// alone knows whether WhatsApp has it.
pub fn expire_queued(
    state: &Message,
    window_closes_at: Option<DateTime<Utc>>,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let waiting = matches!(state.dispatch, Dispatch::NotStarted | Dispatch::RetryScheduled { .. });
    if !state.is_outbound() || !waiting || state.wamid.is_some() || state.failure.is_some() {
        return Vec::new();
    }
    let free_form = state.kind != "template";
    let failure = if free_form && !crate::window::is_open(window_closes_at, now) {
        let closed =
            window_closes_at.map_or_else(|| "never opened".to_owned(), |at| format!("closed at {}", at.to_rfc3339()));
        Failure {
            code: None,
            kind: "window_closed".into(),
            title: Some("The customer-service window closed before the message went out".into()),
            detail: Some(format!("the window {closed}; send an approved template instead")),
        }
    } else if state.queued_at.is_some_and(|queued| queued + ttl <= now) {
        Failure {
            code: None,
            kind: "expired".into(),
            title: Some("The message waited in the queue too long".into()),
            detail: Some(format!("queued longer than {} minutes without going out", ttl.num_minutes())),
        }
    } else {
        return Vec::new();
    };
    vec![Event::MessageFailed { at: now, failure }]
}

/// A status from WhatsApp's webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub wamid: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub pricing: Option<Pricing>,
    pub failure: Option<Failure>,
}

/// Records a status once per (wamid, status). A status for a message whose
/// send was unconfirmed also records the wamid: WhatsApp did accept it.
pub fn record_status(state: &Message, report: StatusReport) -> Vec<Event> {
    if !state.is_outbound() {
        return Vec::new();
    }
    let mut events = Vec::new();
    match &state.wamid {
        Some(w) if *w != report.wamid => return events,
        Some(_) => {}
        None => {
            events.push(Event::MessageAccepted { wamid: report.wamid.clone(), at: report.at, from_number_id: None })
        }
    }
    if state.reported.contains(report.status) {
        return events;
    }
    let at = report.at;
    events.push(match report.status {
        DeliveryStatus::Queued => return events,
        DeliveryStatus::Sent => Event::MessageSent { at, pricing: report.pricing },
        DeliveryStatus::Delivered => Event::MessageDelivered { at, pricing: report.pricing },
        DeliveryStatus::Read => Event::MessageRead { at },
        DeliveryStatus::Played => Event::MessagePlayed { at },
        DeliveryStatus::Failed => Event::MessageFailed {
            at,
            failure: report.failure.unwrap_or(Failure {
                code: None,
                kind: "unknown".into(),
                title: None,
                detail: None,
            }),
        },
    });
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn queued() -> Message {
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
        Message::fold(&queue(&Message::default(), q))
    }

    fn apply(state: Message, events: Vec<Event>) -> Message {
        events.iter().fold(state, Message::evolve)
    }

    fn failure(kind: &str) -> Failure {
        Failure { code: Some(130429), kind: kind.into(), title: None, detail: None }
    }

    #[test]
    fn queued_messages_expire_when_the_window_closes_or_the_ttl_passes() {
        let ttl = Duration::hours(1);
        let open_until = Some(t(600));
        let m = queued();
        assert!(expire_queued(&m, open_until, ttl, t(10)).is_empty(), "window open, young: stays");
        let closed = expire_queued(&m, open_until, ttl, t(600));
        assert!(matches!(&closed[..], [Event::MessageFailed { failure, .. }] if failure.kind == "window_closed"));
        let m = apply(m, closed);
        assert_eq!(m.status(), DeliveryStatus::Failed);
        assert_eq!(start_dispatch(&m, t(700)), Err(DispatchSkip::Settled), "never sent afterwards");
        assert!(expire_queued(&m, open_until, ttl, t(700)).is_empty(), "failed once");

        let mut template = queued();
        template.kind = "template".into();
        assert!(expire_queued(&template, None, ttl, t(3599)).is_empty(), "templates need no window");
        let old = expire_queued(&template, None, ttl, t(3600));
        assert!(matches!(&old[..], [Event::MessageFailed { failure, .. }] if failure.kind == "expired"));

        // In flight or accepted: the sender's business.
        let m = queued();
        let in_flight = apply(m.clone(), start_dispatch(&m, t(1)).unwrap());
        assert!(expire_queued(&in_flight, None, ttl, t(9999)).is_empty());
        let accepted = apply(in_flight.clone(), record_accepted(&in_flight, "wamid.1", "pn-1", t(2)));
        assert!(expire_queued(&accepted, None, ttl, t(9999)).is_empty());
        // Waiting for a retry: still queued, so it expires.
        let retrying = apply(
            in_flight.clone(),
            record_dispatch_failure(&in_flight, 1, failure("throughput_limit"), Some(t(50)), 5, t(3)),
        );
        assert_eq!(expire_queued(&retrying, Some(t(100)), ttl, t(100)).len(), 1);
    }

    #[test]
    fn dispatch_claims_then_accepts() {
        let m = queued();
        assert_eq!(m.status(), DeliveryStatus::Queued);
        let m = apply(m.clone(), start_dispatch(&m, t(1)).unwrap());
        assert_eq!(start_dispatch(&m, t(2)), Err(DispatchSkip::OutcomeUnknown { attempt: 1 }));
        let m = apply(m.clone(), record_accepted(&m, "wamid.1", "n", t(2)));
        assert_eq!(start_dispatch(&m, t(3)), Err(DispatchSkip::Settled));
        assert_eq!(m.wamid.as_deref(), Some("wamid.1"));
    }

    #[test]
    fn retryable_failure_schedules_until_attempts_run_out() {
        let mut m = queued();
        for attempt in 1..=3 {
            m = apply(m.clone(), start_dispatch(&m, t(attempt * 100)).unwrap());
            m = apply(
                m.clone(),
                record_dispatch_failure(
                    &m,
                    attempt as u32,
                    failure("throughput_limit"),
                    Some(t(attempt * 100 + 10)),
                    3,
                    t(attempt * 100),
                ),
            );
            if attempt < 3 {
                assert_eq!(
                    start_dispatch(&m, t(attempt * 100 + 5)),
                    Err(DispatchSkip::NotDue { retry_at: t(attempt * 100 + 10) })
                );
            }
        }
        assert_eq!(m.status(), DeliveryStatus::Failed);
        assert_eq!(m.failure.as_ref().unwrap().kind, "throughput_limit");
    }

    #[test]
    fn unconfirmed_dispatch_is_settled_by_a_status_or_fails_after_grace() {
        let m = queued();
        let m = apply(m.clone(), start_dispatch(&m, t(1)).unwrap());
        let m = apply(m.clone(), record_unconfirmed(&m, 1, "timeout", t(2)));
        assert!(settle_unconfirmed(&m, Duration::minutes(10), t(60)).is_empty());
        let settled = apply(
            m.clone(),
            record_status(
                &m,
                StatusReport {
                    wamid: "wamid.9".into(),
                    status: DeliveryStatus::Sent,
                    at: t(3),
                    pricing: None,
                    failure: None,
                },
            ),
        );
        assert_eq!(settled.wamid.as_deref(), Some("wamid.9"));
        assert_eq!(settled.status(), DeliveryStatus::Sent);
        let failed = apply(m.clone(), settle_unconfirmed(&m, Duration::minutes(10), t(2) + Duration::minutes(10)));
        assert_eq!(failed.status(), DeliveryStatus::Failed);
    }

    fn report(status: DeliveryStatus, at: i64) -> StatusReport {
        StatusReport { wamid: "wamid.1".into(), status, at: t(at), pricing: None, failure: None }
    }

    #[test]
    fn reactions_keep_the_latest_per_side_and_empty_removes() {
        let m = queued();
        let (r1, r2, r3) = (Uuid::from_u128(11), Uuid::from_u128(12), Uuid::from_u128(13));
        let m = apply(m.clone(), react(&m, Direction::Inbound, "👍", r1, t(10)));
        let m = apply(m.clone(), react(&m, Direction::Outbound, "❤", r2, t(11)));
        assert_eq!(m.reactions.inbound.as_ref().unwrap().emoji, "👍");
        assert_eq!(m.reactions.outbound.as_ref().unwrap().emoji, "❤");
        assert!(react(&m, Direction::Inbound, "👍", r1, t(10)).is_empty(), "the same reaction twice");
        assert!(react(&m, Direction::Inbound, "😮", r3, t(5)).is_empty(), "an older reaction arriving late");
        let m = apply(m.clone(), react(&m, Direction::Inbound, "", r3, t(20)));
        assert_eq!(m.reactions.inbound.as_ref().unwrap().emoji, "");
        assert_eq!(m.reactions.outbound.as_ref().unwrap().emoji, "❤", "the other side keeps its reaction");
        assert!(react(&Message::default(), Direction::Inbound, "👍", r1, t(1)).is_empty());
    }

    #[test]
    fn late_delivered_after_read_does_not_regress() {
        let m = queued();
        let m = apply(m.clone(), start_dispatch(&m, t(1)).unwrap());
        let m = apply(m.clone(), record_accepted(&m, "wamid.1", "n", t(1)));
        let m = apply(m.clone(), record_status(&m, report(DeliveryStatus::Read, 5)));
        let ev = record_status(&m, report(DeliveryStatus::Delivered, 3));
        assert_eq!(ev.len(), 1, "a late status is still recorded once with its own time");
        let m = apply(m, ev);
        assert_eq!(m.status(), DeliveryStatus::Read);
        assert!(record_status(&m, report(DeliveryStatus::Delivered, 3)).is_empty());
    }

    fn any_status() -> impl Strategy<Value = DeliveryStatus> {
        prop_oneof![
            Just(DeliveryStatus::Sent),
            Just(DeliveryStatus::Delivered),
            Just(DeliveryStatus::Read),
            Just(DeliveryStatus::Played),
            Just(DeliveryStatus::Failed),
        ]
    }

    proptest! {
        /// Any arrival order of a message's statuses, with duplicates, ends
        /// in the same status, and records each status exactly once.
        #[test]
        fn any_order_of_statuses_folds_to_the_same_status(
            statuses in proptest::collection::vec(any_status(), 1..12),
            seed in any::<u64>(),
        ) {
            let base = {
                let m = queued();
                let m = apply(m.clone(), start_dispatch(&m, t(1)).unwrap());
                apply(m.clone(), record_accepted(&m, "wamid.1", "n", t(1)))
            };
            let run = |order: &[DeliveryStatus]| {
                let mut m = base.clone();
                let mut recorded = Vec::new();
                for (i, s) in order.iter().enumerate() {
                    let ev = record_status(&m, report(*s, i as i64));
                    recorded.extend(ev.iter().filter_map(|e| e.reported_status().map(|(s, _)| s)));
                    m = apply(m, ev);
                }
                recorded.sort();
                (m.status(), recorded)
            };
            let mut shuffled = statuses.clone();
            // A deterministic shuffle driven by the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let (a, rec_a) = run(&statuses);
            let (b, rec_b) = run(&shuffled);
            prop_assert_eq!(a, b);
            prop_assert_eq!(&rec_a, &rec_b);
            let mut distinct = statuses.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(rec_a, distinct);
        }
    }
}
