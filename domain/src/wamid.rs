//! A wamid's link to the Parley message it belongs to.
//!
//! Statuses name messages by wamid. Parley's own sends carry their message id
//! back in `biz_opaque_callback_data`, but a status may arrive without it, and
//! even before the sender has recorded the wamid. The wamid stream settles that
//! race: the sender assigns the wamid to its message, a status that finds no
//! assignment parks itself on the same stream, and optimistic concurrency on
//! that one stream guarantees that whichever comes second sees the other.

use uuid::Uuid;

use crate::event::Event;
use crate::message::StatusReport;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct WamidLink {
    pub message_id: Option<Uuid>,
    pub parked: Vec<StatusReport>,
}

impl WamidLink {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::WamidAssigned { message_id } => self.message_id = Some(*message_id),
            Event::StatusParked { report } => self.parked.push(report.clone().into()),
            _ => {}
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(WamidLink::default(), WamidLink::evolve)
    }
}

/// Links the wamid to its message once.
pub fn assign(state: &WamidLink, message_id: Uuid) -> Vec<Event> {
    if state.message_id.is_some() {
        return Vec::new();
    }
    vec![Event::WamidAssigned { message_id }]
}

/// Parks a status for a wamid not linked yet; if it is linked, nothing is
/// parked and the caller applies the status to the message instead.
pub fn park(state: &WamidLink, report: &StatusReport) -> Vec<Event> {
    if state.message_id.is_some() || state.parked.iter().any(|p| p.status == report.status) {
        return Vec::new();
    }
    vec![Event::StatusParked { report: report.clone().into() }]
}
