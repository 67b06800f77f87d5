//! The subscription handshake: Meta's `GET` with `hub.mode=subscribe`,
//! `hub.verify_token` and `hub.challenge`, answered by echoing the challenge
//! when the token is the one configured for the webhook.

use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// The query string of a verification request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SubscriptionQuery {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    /// The verify token configured in Meta's dashboard.
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// The value to echo back.
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Why a verification request is refused (answer 403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// `hub.mode` is missing or not `subscribe`.
    #[error("hub.mode is not subscribe")]
    NotSubscribe,
    /// `hub.challenge` is missing.
    #[error("hub.challenge is missing")]
    MissingChallenge,
    /// `hub.verify_token` is missing or does not match.
    #[error("hub.verify_token does not match")]
    TokenMismatch,
}

impl SubscriptionQuery {
    /// The challenge to answer with (HTTP 200, body = challenge) when the
    /// request is a subscription carrying `expected_verify_token`.
    pub fn challenge_for(&self, expected_verify_token: &str) -> Result<&str, HandshakeError> {
        if self.mode.as_deref() != Some("subscribe") {
            return Err(HandshakeError::NotSubscribe);
        }
        let challenge = self.challenge.as_deref().ok_or(HandshakeError::MissingChallenge)?;
        let given = self.verify_token.as_deref().ok_or(HandshakeError::TokenMismatch)?;
        if tokens_match(given, expected_verify_token) {
            Ok(challenge)
        } else {
            Err(HandshakeError::TokenMismatch)
        }
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(mode: &str, token: &str, challenge: &str) -> SubscriptionQuery {
        SubscriptionQuery {
            mode: Some(mode.into()),
            verify_token: Some(token.into()),
            challenge: Some(challenge.into()),
        }
    }

    #[test]
    fn matching_token_echoes_the_challenge() {
        assert_eq!(query("subscribe", "T", "C").challenge_for("T"), Ok("C"));
    }

    #[test]
    fn refusals_are_distinct() {
        assert_eq!(query("subscribe", "X", "C").challenge_for("T"), Err(HandshakeError::TokenMismatch));
        assert_eq!(query("unsubscribe", "T", "C").challenge_for("T"), Err(HandshakeError::NotSubscribe));
        let no_challenge = SubscriptionQuery { challenge: None, ..query("subscribe", "T", "C") };
        assert_eq!(no_challenge.challenge_for("T"), Err(HandshakeError::MissingChallenge));
    }

    #[test]
    fn reads_from_a_query_string_shape() {
        let parsed: SubscriptionQuery =
            serde_json::from_str(r#"{"hub.mode":"subscribe","hub.verify_token":"T","hub.challenge":"42"}"#)
                .expect("query shape");
        assert_eq!(parsed.challenge_for("T"), Ok("42"));
    }
}
