//! The customer-service window (SPEC 4.1): free-form messages may be sent
//! only within 24 hours of the contact's last inbound message.

use chrono::{DateTime, Duration, Utc};

/// Length of WhatsApp's customer-service window.
pub fn customer_service_window() -> Duration {
    Duration::hours(24)
}

/// Length of the free entry point window a click-to-WhatsApp ad opens.
/// It is about pricing (free messages), not about what may be sent: the
/// 24h rule still decides free-form sends.
pub fn entry_point_window() -> Duration {
    Duration::hours(72)
}

/// When a window opened by an inbound message at `last_inbound_at` closes.
pub fn closes_at(last_inbound_at: DateTime<Utc>) -> DateTime<Utc> {
    last_inbound_at + customer_service_window()
}

/// Whether a window that closes at `closes_at` is still open at `now`.
/// The window is half-open: at exactly `closes_at` it is closed.
pub fn is_open(closes_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    matches!(closes_at, Some(c) if now < c)
}
