//! The Cloud API error table: what each WhatsApp error code means to Parley
//! and whether a failed send may be tried again.
//!
//! Codes come from send responses (`error.code`) and from `failed` status
//! webhooks (`errors[].code`). Each maps to one [`ErrorKind`], whose stable
//! snake_case name is what Parley records and shows; each kind has one
//! [`RetryPolicy`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a WhatsApp error means, independent of its numeric code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 130429: the number's messages-per-second throughput was reached.
    ThroughputLimit,
    /// 131056: too many messages to the same customer too quickly.
    PairRateLimit,
    /// 131000, 131016, 1, 2 (and unknown codes with an HTTP 5xx): Meta failed
    /// or was unavailable.
    Transient,
    /// 131057: the business account is in maintenance.
    Maintenance,
    /// 80007, 4: the account's or app's API call-rate limit was reached.
    CallRateLimit,
    /// 131048: the number was rate limited as spam.
    SpamRateLimit,
    /// 131049: Meta holds back marketing messages to this customer for now.
    MarketingCap,
    /// 131047: more than 24 hours since the customer last wrote; only a
    /// template may be sent.
    WindowClosed,
    /// 131026: the message could not be delivered to the customer.
    Undeliverable,
    /// 131050: the customer stopped marketing messages from this business.
    MarketingOptOut,
    /// 131051: the message type is not supported.
    UnsupportedType,
    /// 131053: the media could not be uploaded or downloaded.
    MediaError,
    /// 132000, 132001, 132012, 132015, 132016: the template's parameters do
    /// not match, it does not exist, its format is wrong, or it is paused or
    /// disabled.
    TemplateError,
    /// 100: a request parameter is invalid.
    InvalidParameter,
    /// 190, 0, 10, 200-299: the access token expired or lacks permission.
    AuthError,
    /// 131031, 368: the business account is locked or temporarily blocked
    /// for policy violations; the number cannot send until it is lifted.
    AccountBlocked,
    /// Any code not in the table.
    Unknown,
}

/// What to do with a send that failed with a given [`ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryPolicy {
    /// Try again with exponential backoff and jitter, up to the configured
    /// number of attempts.
    Backoff,
    /// Try again after at least this many seconds.
    AfterSeconds(u64),
    /// Fetch fresh credentials and try once more; fail if that fails too.
    RefreshCredentialsOnce,
    /// Fail at once: trying again cannot succeed.
    Never,
}

/// Seconds to wait after a pair rate limit (131056). Meta allows about one
/// message every six seconds to the same customer.
pub const PAIR_RATE_LIMIT_WAIT_SECS: u64 = 6;

/// Seconds to wait after an account maintenance error (131057).
pub const MAINTENANCE_WAIT_SECS: u64 = 60;

impl ErrorKind {
    /// Every kind, in table order.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::ThroughputLimit,
        ErrorKind::PairRateLimit,
        ErrorKind::Transient,
        ErrorKind::Maintenance,
        ErrorKind::CallRateLimit,
        ErrorKind::SpamRateLimit,
        ErrorKind::MarketingCap,
        ErrorKind::WindowClosed,
        ErrorKind::Undeliverable,
        ErrorKind::MarketingOptOut,
        ErrorKind::UnsupportedType,
        ErrorKind::MediaError,
        ErrorKind::TemplateError,
        ErrorKind::InvalidParameter,
        ErrorKind::AuthError,
        ErrorKind::AccountBlocked,
        ErrorKind::Unknown,
    ];

    /// The kind a WhatsApp error code belongs to; [`ErrorKind::Unknown`] for
    /// codes outside the table.
    pub fn from_code(code: i64) -> ErrorKind {
        match code {
            130429 => ErrorKind::ThroughputLimit,
            131056 => ErrorKind::PairRateLimit,
            131000 | 131016 | 1 | 2 => ErrorKind::Transient,
            131057 => ErrorKind::Maintenance,
            80007 | 4 => ErrorKind::CallRateLimit,
            131048 => ErrorKind::SpamRateLimit,
            131049 => ErrorKind::MarketingCap,
            131047 => ErrorKind::WindowClosed,
            131026 => ErrorKind::Undeliverable,
            131050 => ErrorKind::MarketingOptOut,
            131051 => ErrorKind::UnsupportedType,
            131053 => ErrorKind::MediaError,
            132000 | 132001 | 132012 | 132015 | 132016 => ErrorKind::TemplateError,
            100 => ErrorKind::InvalidParameter,
            190 | 0 | 10 | 200..=299 => ErrorKind::AuthError,
            131031 | 368 => ErrorKind::AccountBlocked,
            _ => ErrorKind::Unknown,
        }
    }

    /// The stable snake_case name Parley records and shows for this kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::ThroughputLimit => "throughput_limit",
            ErrorKind::PairRateLimit => "pair_rate_limit",
            ErrorKind::Transient => "transient",
            ErrorKind::Maintenance => "maintenance",
            ErrorKind::CallRateLimit => "call_rate_limit",
            ErrorKind::SpamRateLimit => "spam_rate_limit",
            ErrorKind::MarketingCap => "marketing_cap",
            ErrorKind::WindowClosed => "window_closed",
            ErrorKind::Undeliverable => "undeliverable",
            ErrorKind::MarketingOptOut => "marketing_opt_out",
            ErrorKind::UnsupportedType => "unsupported_type",
            ErrorKind::MediaError => "media_error",
            ErrorKind::TemplateError => "template_error",
            ErrorKind::InvalidParameter => "invalid_parameter",
            ErrorKind::AuthError => "auth_error",
            ErrorKind::AccountBlocked => "account_blocked",
            ErrorKind::Unknown => "unknown",
        }
    }

    /// Whether and when a send that failed with this kind may be tried again.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            ErrorKind::ThroughputLimit | ErrorKind::Transient | ErrorKind::CallRateLimit => RetryPolicy::Backoff,
            ErrorKind::PairRateLimit => RetryPolicy::AfterSeconds(PAIR_RATE_LIMIT_WAIT_SECS),
            ErrorKind::Maintenance => RetryPolicy::AfterSeconds(MAINTENANCE_WAIT_SECS),
            ErrorKind::AuthError => RetryPolicy::RefreshCredentialsOnce,
            ErrorKind::SpamRateLimit
            | ErrorKind::MarketingCap
            | ErrorKind::WindowClosed
            | ErrorKind::Undeliverable
            | ErrorKind::MarketingOptOut
            | ErrorKind::UnsupportedType
            | ErrorKind::MediaError
            | ErrorKind::TemplateError
            | ErrorKind::InvalidParameter
            | ErrorKind::AccountBlocked
            | ErrorKind::Unknown => RetryPolicy::Never,
        }
    }

    /// Whether the error says the sending number itself may not send now
    /// (spam-limited, locked or blocked): another number of the business
    /// may still send the message.
    pub fn blocks_the_number(&self) -> bool {
        matches!(self, ErrorKind::SpamRateLimit | ErrorKind::AccountBlocked)
    }
}

/// Classifies a failed Graph API answer from its HTTP status and, when the
/// body could be read, its error code.
///
/// A code in the table decides on its own. A code outside the table (or no
/// code at all) is [`ErrorKind::Transient`] when the HTTP status is 5xx, as
/// the fault then lies with Meta and a later attempt may succeed, and
/// [`ErrorKind::Unknown`] (never retried) otherwise.
pub fn classify(http_status: u16, code: Option<i64>) -> ErrorKind {
    let kind = code.map_or(ErrorKind::Unknown, ErrorKind::from_code);
    if kind == ErrorKind::Unknown && (500..=599).contains(&http_status) {
        ErrorKind::Transient
    } else {
        kind
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown WhatsApp error kind: {0:?}")]
pub struct UnknownErrorKind(pub String);

impl FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}
