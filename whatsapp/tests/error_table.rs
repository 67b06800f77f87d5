//! The fixtures README's error table, row by row.

use parley_whatsapp::errors::{classify, ErrorKind, RetryPolicy};

/// (codes, kind, snake_case name, policy), one line per table row.
fn table() -> Vec<(Vec<i64>, ErrorKind, &'static str, RetryPolicy)> {
    vec![
        (vec![130429], ErrorKind::ThroughputLimit, "throughput_limit", RetryPolicy::Backoff),
        (vec![131056], ErrorKind::PairRateLimit, "pair_rate_limit", RetryPolicy::AfterSeconds(6)),
        (vec![131000, 131016, 1, 2], ErrorKind::Transient, "transient", RetryPolicy::Backoff),
        (vec![131057], ErrorKind::Maintenance, "maintenance", RetryPolicy::AfterSeconds(60)),
        (vec![80007, 4], ErrorKind::CallRateLimit, "call_rate_limit", RetryPolicy::Backoff),
        (vec![131048], ErrorKind::SpamRateLimit, "spam_rate_limit", RetryPolicy::Never),
        (vec![131049], ErrorKind::MarketingCap, "marketing_cap", RetryPolicy::Never),
        (vec![131047], ErrorKind::WindowClosed, "window_closed", RetryPolicy::Never),
        (vec![131026], ErrorKind::Undeliverable, "undeliverable", RetryPolicy::Never),
        (vec![131050], ErrorKind::MarketingOptOut, "marketing_opt_out", RetryPolicy::Never),
        (vec![131051], ErrorKind::UnsupportedType, "unsupported_type", RetryPolicy::Never),
        (vec![131053], ErrorKind::MediaError, "media_error", RetryPolicy::Never),
        (vec![132000, 132001, 132012, 132015, 132016], ErrorKind::TemplateError, "template_error", RetryPolicy::Never),
        (vec![100], ErrorKind::InvalidParameter, "invalid_parameter", RetryPolicy::Never),
        (vec![190, 0, 10, 200, 250, 299], ErrorKind::AuthError, "auth_error", RetryPolicy::RefreshCredentialsOnce),
        (vec![131031, 368], ErrorKind::AccountBlocked, "account_blocked", RetryPolicy::Never),
    ]
}

#[test]
fn every_row_maps_its_codes_names_and_policy() {
    for (codes, kind, name, policy) in table() {
        for code in codes {
            assert_eq!(ErrorKind::from_code(code), kind, "code {code}");
            // A known code decides whatever the HTTP status.
            assert_eq!(classify(400, Some(code)), kind, "code {code} with 400");
            assert_eq!(classify(503, Some(code)), kind, "code {code} with 503");
        }
        assert_eq!(kind.as_str(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<ErrorKind>(), Ok(kind));
        assert_eq!(kind.retry_policy(), policy, "{name}");
    }
}

#[test]
fn the_table_covers_every_kind_but_unknown() {
    let covered: Vec<ErrorKind> = table().into_iter().map(|row| row.1).collect();
    for kind in ErrorKind::ALL {
        assert_eq!(covered.contains(&kind), kind != ErrorKind::Unknown, "{kind} coverage");
    }
}

#[test]
fn codes_next_to_the_table_are_unknown() {
    for code in [3, 199, 300, 131001, 131055, 132002, 130428, -1] {
        assert_eq!(ErrorKind::from_code(code), ErrorKind::Unknown, "code {code}");
    }
    assert_eq!(ErrorKind::Unknown.as_str(), "unknown");
    assert_eq!(ErrorKind::Unknown.retry_policy(), RetryPolicy::Never);
}

#[test]
fn unknown_codes_retry_only_on_server_errors() {
    assert_eq!(classify(500, Some(999_999)), ErrorKind::Transient);
    assert_eq!(classify(503, None), ErrorKind::Transient);
    assert_eq!(classify(599, Some(424_242)), ErrorKind::Transient);
    assert_eq!(classify(400, Some(999_999)), ErrorKind::Unknown);
    assert_eq!(classify(404, None), ErrorKind::Unknown);
    assert_eq!(classify(429, Some(999_999)), ErrorKind::Unknown);
    assert_eq!(classify(500, Some(999_999)).retry_policy(), RetryPolicy::Backoff);
}

#[test]
fn kinds_serialise_as_their_names() {
    for kind in ErrorKind::ALL {
        let json = serde_json::to_string(&kind).expect("serialise");
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
        assert_eq!(serde_json::from_str::<ErrorKind>(&json).expect("read back"), kind);
    }
    assert!("no_such_kind".parse::<ErrorKind>().is_err());
}
