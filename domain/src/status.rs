//! Message delivery statuses and their order (SPEC 4.4).
//!
//! WhatsApp reports statuses out of order and may skip some (`read` without
//! `delivered`). A message's status is therefore a function of the *set* of
//! statuses recorded, never of their arrival order: the furthest point on
//! `sent < delivered < read < played` that was reported, and `failed` only if
//! the message never reached the phone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => DeliveryStatus::Queued,
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "played" => DeliveryStatus::Played,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// The statuses WhatsApp has reported for one message, each at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedStatuses {
    pub sent: bool,
    pub delivered: bool,
    pub read: bool,
    pub played: bool,
    pub failed: bool,
}

impl ReportedStatuses {
    pub fn contains(&self, status: DeliveryStatus) -> bool {
        match status {
            DeliveryStatus::Queued => true,
            DeliveryStatus::Sent => self.sent,
            DeliveryStatus::Delivered => self.delivered,
            DeliveryStatus::Read => self.read,
            DeliveryStatus::Played => self.played,
            DeliveryStatus::Failed => self.failed,
        }
    }

    pub fn insert(&mut self, status: DeliveryStatus) {
        match status {
            DeliveryStatus::Queued => {}
            DeliveryStatus::Sent => self.sent = true,
            DeliveryStatus::Delivered => self.delivered = true,
            DeliveryStatus::Read => self.read = true,
            DeliveryStatus::Played => self.played = true,
            DeliveryStatus::Failed => self.failed = true,
        }
    }

    /// The message's current status. Reaching the phone outranks a failure
    /// report, so the answer is the same for every arrival order.
    pub fn current(&self) -> DeliveryStatus {
        if self.played {
            DeliveryStatus::Played
        } else if self.read {
            DeliveryStatus::Read
        } else if self.delivered {
            DeliveryStatus::Delivered
        } else if self.failed {
            DeliveryStatus::Failed
        } else if self.sent {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Queued
        }
    }
}
