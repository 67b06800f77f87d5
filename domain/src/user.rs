//! Users: a person who signs in. Credentials live with the identity provider
//! (never in events); the user's stream records what happened to the account
//! so it can be audited: sign-up, email verification and changes, password
//! changes and revoked sessions.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Why a password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChange {
    /// The user changed it, knowing the old one.
    Changed,
    /// The user reset it with a code sent by mail.
    Reset,
    /// Set when an invitation was accepted.
    Initial,
}

/// Why sessions (refresh tokens) were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    /// A refresh token was presented after it had been rotated: the whole family is revoked.
    RefreshReuse,
    PasswordChanged,
    MemberRemoved,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    pub tenant_id: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl User {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::UserSignedUp { tenant_id, email, .. } => {
                self.tenant_id = Some(tenant_id.clone());
                self.email = Some(email.clone());
            }
            Event::EmailVerified { email, .. } => {
                self.email = Some(email.clone());
                self.email_verified = true;
            }
            _ => {}
        }
        self
    }

    pub fn exists(&self) -> bool {
        self.tenant_id.is_some()
    }
}

/// The stream of a user's events.
pub fn stream_id(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// Records an account event once the identity provider accepted the change;
/// a user that never signed up gets nothing but its sign-up.
pub fn record(state: &User, event: Event) -> Vec<Event> {
    match event {
        Event::UserSignedUp { .. } if state.exists() => vec![],
        e @ Event::UserSignedUp { .. } => vec![e],
        _ if !state.exists() => vec![],
        Event::EmailVerified { ref email, .. }
            if state.email_verified && state.email.as_deref() == Some(email.as_str()) =>
        {
            vec![]
        }
        e => vec![e],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn account_events_follow_signup_and_verification_is_recorded_once() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let verified = Event::EmailVerified { email: "a@x.test".into(), at };
        assert!(record(&User::default(), verified.clone()).is_empty());
        let signup = Event::UserSignedUp { user_id: "u".into(), tenant_id: "t".into(), email: "a@x.test".into(), at };
        let user = User::default().evolve(&signup);
        assert!(record(&user, signup).is_empty());
        assert_eq!(record(&user, verified.clone()).len(), 1);
        let user = user.evolve(&verified);
        assert!(user.email_verified);
        assert!(record(&user, verified).is_empty());
        let revoked = Event::SessionRevoked { reason: RevokeReason::Logout, at };
        assert_eq!(record(&user, revoked).len(), 1);
    }
}
