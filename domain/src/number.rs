//! Business numbers (SPEC 3.1, 5.6): a tenant's WhatsApp numbers and their
//! credentials. A number belongs to exactly one tenant.

use chrono::{DateTime, Utc};

use crate::event::{Event, NumberRegistered};

/// Default messages per second a number may send (Cloud API default).
pub const DEFAULT_THROUGHPUT: u32 = 80;
/// The throughput a tenant may set: WhatsApp raises numbers up to 1000/s.
pub const THROUGHPUT_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

/// Quality ratings WhatsApp gives a number.
pub const QUALITY_RATINGS: &[&str] = &["GREEN", "YELLOW", "RED", "UNKNOWN"];
/// The standing of a number that can send.
pub const STATUS_CONNECTED: &str = "CONNECTED";
/// Standings in which a number should not send: its queued messages go out
/// from the alternate number when there is one.
pub const BLOCKED_STATUSES: &[&str] = &["FLAGGED", "RESTRICTED", "DISABLED"];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Number {
    pub registered: Option<NumberRegistered>,
    /// GREEN, YELLOW, RED or UNKNOWN (before WhatsApp reported any).
    pub quality_rating: Option<String>,
    pub messaging_limit: Option<String>,
    /// CONNECTED, FLAGGED, RESTRICTED or DISABLED; `None` until reported.
    pub account_status: Option<String>,
    /// Set by the tenant; the registered default otherwise.
    pub throughput_per_second: Option<u32>,
    pub alternate_number_id: Option<String>,
}

impl Number {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::NumberRegistered(e) => self.registered = Some(e.clone()),
            Event::NumberQualityUpdated { quality_rating, messaging_limit, .. } => {
                self.quality_rating = Some(quality_rating.clone());
                if messaging_limit.is_some() {
                    self.messaging_limit = messaging_limit.clone();
                }
            }
            Event::NumberAccountStatusChanged { status, .. } => self.account_status = Some(status.clone()),
            Event::NumberSettingsChanged { throughput_per_second, alternate_number_id, .. } => {
                self.throughput_per_second = Some(*throughput_per_second);
                self.alternate_number_id = alternate_number_id.clone();
            }
            _ => {}
        }
        self
    }

    /// Messages per second this number may send now.
    pub fn throughput(&self) -> u32 {
        self.throughput_per_second
            .or(self.registered.as_ref().map(|r| r.throughput_per_second))
            .unwrap_or(DEFAULT_THROUGHPUT)
    }

    /// Whether WhatsApp reported the number flagged, restricted or disabled.
    pub fn is_blocked(&self) -> bool {
        self.account_status.as_deref().is_some_and(|s| BLOCKED_STATUSES.contains(&s))
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Number::default(), Number::evolve)
    }

    pub fn tenant_id(&self) -> Option<&str> {
        self.registered.as_ref().map(|r| r.tenant_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    /// SHA-256 (hex) of the webhook verify token: Parley only ever compares it.
    pub verify_token_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: &'static str },
    /// The number is registered already (by this tenant or another one).
    #[error("this phone number is already registered")]
    AlreadyRegistered { same_tenant: bool },
}

pub fn register(state: &Number, cmd: Register, now: DateTime<Utc>) -> Result<Vec<Event>, RegisterError> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&cmd.phone_number_id) {
        return Err(RegisterError::Invalid { field: "phone_number_id", message: "must be digits" });
    }
    if !digits(cmd.display_phone_number.trim_start_matches('+')) {
        return Err(RegisterError::Invalid {
            field: "display_phone_number",
            message: "must be a phone number in digits",
        });
    }
    if !digits(&cmd.waba_id) {
        return Err(RegisterError::Invalid { field: "waba_id", message: "must be digits" });
    }
    for (field, value) in [("access_token", &cmd.access_token), ("app_secret", &cmd.app_secret)] {
        if value.trim().is_empty() || value.len() > 4096 {
            return Err(RegisterError::Invalid { field, message: "is required (at most 4096 characters)" });
        }
    }
    if cmd.verify_token_sha256.len() != 64 || !cmd.verify_token_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegisterError::Invalid { field: "verify_token", message: "is required" });
    }
    if let Some(existing) = &state.registered {
        return Err(RegisterError::AlreadyRegistered { same_tenant: existing.tenant_id == cmd.tenant_id });
    }
    Ok(vec![Event::NumberRegistered(NumberRegistered {
        tenant_id: cmd.tenant_id,
        phone_number_id: cmd.phone_number_id,
        display_phone_number: cmd.display_phone_number,
        waba_id: cmd.waba_id,
        access_token: cmd.access_token,
        app_secret: cmd.app_secret,
        verify_token_sha256: cmd.verify_token_sha256,
        throughput_per_second: DEFAULT_THROUGHPUT,
        at: now,
    })])
}

/// What the tenant asks to change; `None` keeps the current value. The
/// alternate is `Some(None)` to remove it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSettings {
    pub throughput_per_second: Option<u32>,
    pub alternate_number_id: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: &'static str },
    #[error("no such number")]
    UnknownNumber,
}

/// Changes the number's throughput or alternate. The caller has checked
/// that the alternate is another registered number of the same tenant
/// (`alternate_owner` is its tenant, if it is registered at all).
pub fn change_settings(
    state: &Number,
    tenant_id: &str,
    cmd: &ChangeSettings,
    alternate_owner: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, SettingsError> {
    let registered =
        state.registered.as_ref().filter(|r| r.tenant_id == tenant_id).ok_or(SettingsError::UnknownNumber)?;
    let throughput = cmd.throughput_per_second.unwrap_or(state.throughput());
    if !THROUGHPUT_RANGE.contains(&throughput) {
        return Err(SettingsError::Invalid { field: "throughput_per_second", message: "must be 1 to 1000" });
    }
    let alternate = match &cmd.alternate_number_id {
        None => state.alternate_number_id.clone(),
        Some(None) => None,
        Some(Some(id)) if *id == registered.phone_number_id => {
            return Err(SettingsError::Invalid {
                field: "alternate_number_id",
                message: "must be another number than this one",
            })
        }
        Some(Some(id)) if alternate_owner != Some(tenant_id) => {
            return Err(SettingsError::Invalid {
                field: "alternate_number_id",
                message: "must be another registered number of this tenant",
            })
        }
        Some(Some(id)) => Some(id.clone()),
    };
    if throughput == state.throughput() && alternate == state.alternate_number_id {
        return Ok(Vec::new());
    }
    Ok(vec![Event::NumberSettingsChanged {
        throughput_per_second: throughput,
        alternate_number_id: alternate,
        at: now,
        by: by.to_owned(),
    }])
}

/// A `phone_number_quality_update` webhook, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityReport {
    /// FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ...
    pub event: String,
    /// An explicit rating, when the payload carries one.
    pub quality_rating: Option<String>,
    pub current_limit: Option<String>,
    pub at: DateTime<Utc>,
}

/// Records a quality update. FLAGGED means the quality dropped to low (RED)
/// and the number is flagged; UNFLAGGED means it recovered. Tier changes keep
/// the rating. A flagged number is also recorded as such in its standing, so
/// sends move to the alternate number; UNFLAGGED lifts only that flag.
pub fn record_quality(state: &Number, report: &QualityReport) -> Vec<Event> {
    if state.registered.is_none() {
        return Vec::new();
    }
    let current = state.quality_rating.clone().unwrap_or_else(|| "UNKNOWN".into());
    let rating = match (report.quality_rating.as_deref().map(str::to_ascii_uppercase), report.event.as_str()) {
        (Some(r), _) if QUALITY_RATINGS.contains(&r.as_str()) => r,
        (_, "FLAGGED") => "RED".into(),
        (_, "UNFLAGGED") => "GREEN".into(),
        _ => current,
    };
    let mut events = Vec::new();
    // A redelivered update (same rating, same limit) records nothing again.
    let limit_changes = report.current_limit.is_some() && report.current_limit != state.messaging_limit;
    if state.quality_rating.as_deref() != Some(rating.as_str()) || limit_changes {
        events.push(Event::NumberQualityUpdated {
            event: report.event.clone(),
            quality_rating: rating,
            messaging_limit: report.current_limit.clone(),
            at: report.at,
        });
    }
    let status = state.account_status.as_deref();
    match report.event.as_str() {
        "FLAGGED" if !state.is_blocked() => events.push(Event::NumberAccountStatusChanged {
            status: "FLAGGED".into(),
            reason: "phone_number_quality_update:FLAGGED".into(),
            detail: None,
            at: report.at,
        }),
        "UNFLAGGED" if status == Some("FLAGGED") => events.push(Event::NumberAccountStatusChanged {
            status: STATUS_CONNECTED.into(),
            reason: "phone_number_quality_update:UNFLAGGED".into(),
            detail: None,
            at: report.at,
        }),
        _ => {}
    }
    events
}

/// Records a change of standing (from `account_update` or a send refused
/// because the number is blocked); nothing when it is the current one.
pub fn record_status(
    state: &Number,
    status: &str,
    reason: &str,
    detail: Option<String>,
    at: DateTime<Utc>,
) -> Vec<Event> {
    if state.registered.is_none() || state.account_status.as_deref() == Some(status) {
        return Vec::new();
    }
    vec![Event::NumberAccountStatusChanged { status: status.to_owned(), reason: reason.to_owned(), detail, at }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + s, 0).unwrap()
    }

    fn number(tenant: &str, id: &str) -> Number {
        let cmd = Register {
            tenant_id: tenant.into(),
            phone_number_id: id.into(),
            display_phone_number: "15550000000".into(),
            waba_id: "1".into(),
            access_token: "a".into(),
            app_secret: "s".into(),
            verify_token_sha256: "0".repeat(64),
        };
        Number::fold(&register(&Number::default(), cmd, t(0)).unwrap())
    }

    fn apply(n: Number, events: &[Event]) -> Number {
        events.iter().fold(n, Number::evolve)
    }

    #[test]
    fn settings_are_bounded_and_the_alternate_is_another_number_of_the_tenant() {
        let n = number("acme", "1");
        assert_eq!(n.throughput(), DEFAULT_THROUGHPUT);
        let set = |tp: Option<u32>, alt: Option<Option<&str>>| ChangeSettings {
            throughput_per_second: tp,
            alternate_number_id: alt.map(|a| a.map(str::to_owned)),
        };
        for bad in [0, 1001] {
            assert!(change_settings(&n, "acme", &set(Some(bad), None), None, "u", t(1)).is_err());
        }
        assert!(change_settings(&n, "acme", &set(None, Some(Some("1"))), Some("acme"), "u", t(1)).is_err());
        assert!(change_settings(&n, "acme", &set(None, Some(Some("2"))), Some("globex"), "u", t(1)).is_err());
        assert!(change_settings(&n, "acme", &set(None, Some(Some("2"))), None, "u", t(1)).is_err());
        assert_eq!(
            change_settings(&n, "globex", &set(Some(5), None), None, "u", t(1)),
            Err(SettingsError::UnknownNumber)
        );
        let ev = change_settings(&n, "acme", &set(Some(200), Some(Some("2"))), Some("acme"), "u", t(1)).unwrap();
        let n = apply(n, &ev);
        assert_eq!((n.throughput(), n.alternate_number_id.as_deref()), (200, Some("2")));
        assert!(change_settings(&n, "acme", &set(Some(200), None), None, "u", t(2)).unwrap().is_empty());
        let n = apply(n.clone(), &change_settings(&n, "acme", &set(None, Some(None)), None, "u", t(2)).unwrap());
        assert_eq!((n.throughput(), n.alternate_number_id), (200, None));
    }

    #[test]
    fn quality_updates_rate_and_flag_the_number() {
        let n = number("acme", "1");
        let report = |event: &str| QualityReport {
            event: event.into(),
            quality_rating: None,
            current_limit: Some("TIER_10K".into()),
            at: t(5),
        };
        let n = apply(n.clone(), &record_quality(&n, &report("FLAGGED")));
        assert_eq!(n.quality_rating.as_deref(), Some("RED"));
        assert!(record_quality(&n, &report("FLAGGED")).is_empty(), "a redelivery records nothing");
        assert_eq!(n.messaging_limit.as_deref(), Some("TIER_10K"));
        assert!(n.is_blocked());
        let n = apply(n.clone(), &record_quality(&n, &report("UPGRADE")));
        assert_eq!(n.quality_rating.as_deref(), Some("RED"), "a tier change keeps the rating");
        let n = apply(n.clone(), &record_quality(&n, &report("UNFLAGGED")));
        assert_eq!((n.quality_rating.as_deref(), n.is_blocked()), (Some("GREEN"), false));
        let n = apply(n.clone(), &record_status(&n, "RESTRICTED", "account_update:ACCOUNT_RESTRICTION", None, t(6)));
        assert!(n.is_blocked());
        assert!(record_status(&n, "RESTRICTED", "again", None, t(7)).is_empty());
        let n = apply(n.clone(), &record_quality(&n, &report("UNFLAGGED")));
        assert!(n.is_blocked(), "UNFLAGGED lifts a quality flag, not a restriction");
    }
}
