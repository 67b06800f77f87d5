//! The rules every outbound send obeys before it is queued (SPEC 4.1, 4.2).

use chrono::{DateTime, Utc};

use crate::contact::Contact;
use crate::content;
use crate::conversation::Conversation;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefusal {
    /// Free-form messages need an open customer-service window.
    #[error("the 24-hour customer service window is closed")]
    WindowClosed { closed_at: Option<DateTime<Utc>> },
    #[error("the contact has opted out")]
    OptedOut { since: Option<DateTime<Utc>> },
}

/// Whether a message of `kind` may go to this contact in this conversation at `now`.
pub fn check_send(
    kind: &str,
    contact: &Contact,
    conversation: &Conversation,
    now: DateTime<Utc>,
) -> Result<(), SendRefusal> {
    if contact.is_opted_out() {
        return Err(SendRefusal::OptedOut { since: contact.opted_out_since() });
    }
    if !content::is_template(kind) && !conversation.is_window_open(now) {
        return Err(SendRefusal::WindowClosed { closed_at: conversation.window_closes_at });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{record_inbound, RecordInbound};
    use crate::event::{Direction, Preview};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn conversation_with_inbound(times: &[i64]) -> Conversation {
        let mut c = Conversation::default();
        for (i, at) in times.iter().enumerate() {
            let id = Uuid::from_u128(i as u128 + 1);
            let cmd = RecordInbound {
                conversation_id: Uuid::from_u128(99),
                number_id: "n".into(),
                wa_id: "c".into(),
                message_id: id,
                sent_at: t(*at),
                preview: Preview {
                    message_id: id,
                    direction: Direction::Inbound,
                    kind: "text".into(),
                    text: None,
                    at: t(*at),
                },
                contact_name: None,
                referral: None,
            };
            // Recorded when it arrives, which is never before it was sent.
            let arrived = t(*at);
            c = record_inbound(&c, cmd, arrived).iter().fold(c, Conversation::evolve);
        }
        c
    }

    #[test]
    fn templates_pass_a_closed_window_but_not_an_opt_out() {
        let conv = Conversation::default();
        let contact = Contact::default();
        assert!(matches!(
            check_send("text", &contact, &conv, t(0)),
            Err(SendRefusal::WindowClosed { closed_at: None })
        ));
        assert!(check_send("template", &contact, &conv, t(0)).is_ok());
        let opted_out = contact.evolve(&crate::Event::ContactOptedOut {
            at: t(0),
            source: crate::event::OptSource::Keyword,
            keyword: Some("STOP".into()),
            message_id: None,
        });
        assert!(matches!(check_send("template", &opted_out, &conv, t(1)), Err(SendRefusal::OptedOut { .. })));
    }

    proptest! {
        /// The window check agrees with a plain reading of the rule: a
        /// free-form send at `now` is allowed iff some inbound message arrived
        /// at most 24 hours before (the window closes at exactly 24h), for any
        /// history of inbound messages in any arrival order.
        #[test]
        fn window_check_agrees_with_reference_model(
            now in 0i64..500_000,
            fractions in proptest::collection::vec(0.0f64..=1.0, 0..8),
        ) {
            let times: Vec<i64> = fractions.iter().map(|f| (f * now as f64) as i64).collect();
            let conv = conversation_with_inbound(&times);
            let now = t(now);
            let reference = times.iter().any(|at| now - t(*at) < Duration::hours(24));
            prop_assert_eq!(conv.is_window_open(now), reference);
            prop_assert_eq!(check_send("text", &Contact::default(), &conv, now).is_ok(), reference);
            prop_assert!(check_send("template", &Contact::default(), &conv, now).is_ok());
        }
    }
}
