//! Identity: who may sign in, and the tokens they get (SPEC 5.1).
//!
//! [`IdentityProvider`] is the port: accounts with verified emails,
//! passwords, sessions (refresh tokens) and one-time codes sent by mail. The
//! local adapter ([`local::LocalIdentity`]) keeps credentials in SQLite and
//! signs RS256 tokens; a Cognito user pool is the other adapter. Both pass
//! the one conformance suite in [`conformance`].
//!
//! The provider knows nothing of events: the use cases in [`service`] call it
//! and record what happened (sign-ups, verifications, password changes,
//! revoked sessions) as domain events, which feed the audit log ([`audit`]).

pub mod audit;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod local;
pub mod policy;
pub mod service;
pub mod templates;
pub mod throttle;

use async_trait::async_trait;
use serde::Serialize;

use crate::auth::Role;

/// A new account: its tenant and role are attributes the provider puts in
/// the tokens it issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Lower-case, checked by [`parley_domain::tenant::normalize_email`].
    pub email: String,
    pub password: String,
    pub tenant_id: String,
    pub role: Role,
}

/// An invitation to join a tenant: the provider creates a pending account
/// and mails the invitee a code to accept it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub email: String,
    pub tenant_id: String,
    pub role: Role,
    /// For the mail: which business invites, and who.
    pub tenant_name: String,
    pub invited_by: String,
}

/// What the provider knows about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub email: String,
    pub email_verified: bool,
    pub tenant_id: String,
    pub role: Role,
}

/// The tokens of a signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// Bearer token for `/v1`.
    pub access_token: String,
    /// Who the user is (for the client; not accepted by `/v1`).
    pub id_token: String,
    /// Trades for new tokens once (it is rotated on use).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
}

/// Why the provider refused, or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Unknown email or wrong password (never said which).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("this email is taken")]
    EmailTaken,
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    /// Wrong, expired, used up or never sent (never said which).
    #[error("the code is wrong or has expired")]
    InvalidCode,
    /// An access or refresh token that is unknown, expired or revoked.
    #[error("the token is invalid, expired or revoked")]
    InvalidToken,
    /// A rotated refresh token came back: its whole family has been revoked.
    #[error("the refresh token was already used; every session it belonged to is revoked")]
    RefreshReused { user_id: String },
    #[error("password: {0}")]
    WeakPassword(String),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no such user")]
    UnknownUser,
    #[error("too many attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

/// Accounts, passwords, sessions and one-time codes.
///
/// Codes (verification, password reset, email change, invitation) reach the
/// user by mail; they are single-use, expire, and are stored only as hashes.
#[async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// Creates an unverified account and mails it a verification code.
    async fn sign_up(&self, user: NewUser) -> Result<Account, IdentityError>;

    /// Marks the email verified if `code` is the one mailed to it.
    async fn verify_email(&self, email: &str, code: &str) -> Result<Account, IdentityError>;

    /// Password sign-in of a verified account.
    async fn login(&self, email: &str, password: &str) -> Result<Tokens, IdentityError>;

    /// Trades a refresh token for new tokens; the old refresh token stops working.
    async fn refresh(&self, refresh_token: &str) -> Result<Tokens, IdentityError>;

    /// Revokes the session the refresh token belongs to; returns its user.
    async fn logout(&self, refresh_token: &str) -> Result<String, IdentityError>;

    /// Mails a reset code if the account exists; says nothing either way.
    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError>;

    /// Sets a new password with a mailed reset code and revokes every session.
    async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Result<Account, IdentityError>;

    /// Changes the password of the token's user, who proves the old one; revokes every session.
    async fn change_password(&self, access_token: &str, old: &str, new: &str) -> Result<Account, IdentityError>;

    /// Starts an email change: mails a code to the new address, which takes
    /// effect only once [`confirm_email_change`](Self::confirm_email_change) proves it.
    async fn change_email(&self, access_token: &str, new_email: &str) -> Result<(), IdentityError>;

    /// Completes an email change with the code mailed to the new address.
    async fn confirm_email_change(&self, access_token: &str, code: &str) -> Result<Account, IdentityError>;

    /// Creates a pending account for an invitee and mails the invitation code.
    async fn invite(&self, invite: Invite) -> Result<(), IdentityError>;

    /// The invitee sets a password with the mailed code; the email counts as verified.
    async fn accept_invitation(&self, email: &str, code: &str, password: &str) -> Result<Account, IdentityError>;

    /// Changes the role put in the user's next tokens.
    async fn set_role(&self, user_id: &str, role: Role) -> Result<(), IdentityError>;

    /// Deletes the account, its credentials and every session.
    async fn delete_user(&self, user_id: &str) -> Result<(), IdentityError>;

    /// The account of `user_id`, if there is one.
    async fn account(&self, user_id: &str) -> Result<Option<Account>, IdentityError>;

    /// The public keys that verify this provider's tokens, as a JWKS.
    async fn jwks(&self) -> Result<serde_json::Value, IdentityError>;
}

impl From<IdentityError> for crate::error::AppError {
    fn from(e: IdentityError) -> Self {
        crate::error::AppError::Identity(e)
    }
}
