//! The one conformance suite of the [`IdentityProvider`] port: every
//! adapter (local, Cognito) must pass it unchanged.
//!
//! The suite reads the codes the provider sends through a [`CodeSource`]
//! (the mail probe of the outbox, or whatever the adapter's transport
//! records) and checks tokens with the verifier that guards `/v1`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{templates, IdentityError, IdentityProvider, Invite, NewUser};
use crate::auth::{Role, TokenVerifier};
use crate::mail::MailProbe;

/// Where the suite finds the last code sent to an address.
#[async_trait]
pub trait CodeSource: Send + Sync + 'static {
    async fn latest_code(&self, email: &str) -> Option<String>;
}

/// Codes read from delivered mail rendered by [`templates`].
#[async_trait]
impl<P: MailProbe + ?Sized> CodeSource for P {
    async fn latest_code(&self, email: &str) -> Option<String> {
        let mails = self.delivered().await.ok()?;
        mails.iter().rev().filter(|m| m.to == email).find_map(|m| templates::code_in(&m.text))
    }
}

pub struct Harness {
    pub identity: Arc<dyn IdentityProvider>,
    pub mail: Arc<dyn CodeSource>,
    pub verifier: Arc<dyn TokenVerifier>,
    /// What the provider (or the emulator standing in for it) cannot do;
    /// [`Limits::NONE`] runs every check.
    pub limits: Limits,
}

/// Behaviours a provider lacks, each skipping only the checks that need it.
/// The local adapter runs with [`Limits::NONE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Any code confirms a sign-up (an emulator that does not check them).
    pub sign_up_codes_unchecked: bool,
    /// A refresh returns the same refresh token, so reuse cannot be detected
    /// (Cognito's refresh tokens without rotation).
    pub refresh_not_rotated: bool,
    /// A single session cannot be revoked (an emulator without `RevokeToken`).
    pub no_session_revocation: bool,
    /// An email change takes effect at once, without a code (an emulator
    /// without verification of changed attributes).
    pub email_change_unverified: bool,
}

impl Limits {
    /// Every check runs.
    pub const NONE: Limits = Limits {
        sign_up_codes_unchecked: false,
        refresh_not_rotated: false,
        no_session_revocation: false,
        email_change_unverified: false,
    };
}

const PASSWORD: &str = "Orchard-Lantern-27";
const NEW_PASSWORD: &str = "Copper-Kettle-81";

fn unique(name: &str) -> String {
    format!("{name}-{}@conformance.test", uuid::Uuid::new_v4().simple())
}

async fn code(h: &Harness, email: &str) -> String {
    h.mail.latest_code(email).await.unwrap_or_else(|| panic!("no code was sent to {email}"))
}

/// A code that is certainly not the one sent, of the same shape: its last
/// digit changed (or a digit appended).
fn wrong(code: &str) -> String {
    let mut wrong = code.to_owned();
    match wrong.pop() {
        Some(last) if last.is_ascii_digit() => {
            let digit = last.to_digit(10).unwrap_or(0);
            wrong.push(char::from_digit((digit + 1) % 10, 10).unwrap_or('0'));
        }
        Some(last) => {
            wrong.push(last);
            wrong.push('0');
        }
        None => wrong.push('0'),
    }
    wrong
}

pub async fn run_identity_suite(h: Harness) {
    let id = &h.identity;
    let limits = h.limits;
    let tenant = format!("t{}", uuid::Uuid::new_v4().simple());
    let email = unique("owner");
    let new_user = |email: &str, password: &str| NewUser {
        email: email.to_owned(),
        password: password.to_owned(),
        tenant_id: tenant.clone(),
        role: Role::Owner,
    };

    // Sign-up: policy, address checks, uniqueness.
    assert!(matches!(id.sign_up(new_user(&email, "short")).await, Err(IdentityError::WeakPassword(_))));
    assert!(matches!(id.sign_up(new_user("not-an-email", PASSWORD)).await, Err(IdentityError::Invalid { .. })));
    let account = id.sign_up(new_user(&email, PASSWORD)).await.expect("sign up");
    assert!(!account.email_verified);
    assert_eq!(
        (account.email.as_str(), account.tenant_id.as_str(), account.role),
        (email.as_str(), tenant.as_str(), Role::Owner)
    );
    assert_eq!(id.sign_up(new_user(&email, PASSWORD)).await, Err(IdentityError::EmailTaken));
    assert_eq!(id.login(&email, PASSWORD).await, Err(IdentityError::EmailNotVerified));

    // Verification by mailed code, single use.
    let verification = code(&h, &email).await;
    if !limits.sign_up_codes_unchecked {
        assert_eq!(id.verify_email(&email, &wrong(&verification)).await, Err(IdentityError::InvalidCode));
    }
    let verified = id.verify_email(&email, &verification).await.expect("verify");
    assert!(verified.email_verified);
    assert_eq!(verified.user_id, account.user_id);

    // Login: wrong passwords and unknown users look the same.
    assert_eq!(id.login(&email, NEW_PASSWORD).await, Err(IdentityError::InvalidCredentials));
    assert_eq!(id.login(&unique("nobody"), PASSWORD).await, Err(IdentityError::InvalidCredentials));
    let tokens = id.login(&email, PASSWORD).await.expect("login");
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in > 0);
    let caller = h.verifier.verify(&tokens.access_token).expect("access token verifies");
    assert_eq!(
        (caller.user_id.as_str(), caller.tenant_id.as_str(), caller.role),
        (account.user_id.as_str(), tenant.as_str(), Role::Owner)
    );
    assert!(h.verifier.verify(&tokens.id_token).is_err(), "an id token is not an access token");
    assert!(h.verifier.verify("garbage").is_err());

    // Refresh rotates; reusing a rotated token revokes the whole family.
    let second = id.refresh(&tokens.refresh_token).await.expect("refresh");
    assert!(h.verifier.verify(&second.access_token).is_ok());
    if !limits.refresh_not_rotated {
        assert_ne!(second.refresh_token, tokens.refresh_token);
        assert_eq!(
            id.refresh(&tokens.refresh_token).await,
            Err(IdentityError::RefreshReused { user_id: account.user_id.clone() })
        );
        assert!(id.refresh(&second.refresh_token).await.is_err(), "the family was revoked");
    }
    assert_eq!(id.refresh("never-issued").await, Err(IdentityError::InvalidToken));

    // Logout revokes the session; other sessions live on.
    let a = id.login(&email, PASSWORD).await.expect("login a");
    let b = id.login(&email, PASSWORD).await.expect("login b");
    if !limits.no_session_revocation {
        assert_eq!(id.logout(&a.refresh_token).await.as_deref(), Ok(account.user_id.as_str()));
        assert!(id.refresh(&a.refresh_token).await.is_err());
        assert_eq!(id.logout(&a.refresh_token).await, Err(IdentityError::InvalidToken));
    }
    let b = id.refresh(&b.refresh_token).await.expect("the other session still works");

    // Forgot and reset: silent for unknown addresses, code single-use, sessions revoked.
    id.forgot_password(&unique("nobody")).await.expect("unknown email is not revealed");
    id.forgot_password(&email).await.expect("forgot");
    let reset = code(&h, &email).await;
    assert!(matches!(id.reset_password(&email, &reset, "weak").await, Err(IdentityError::WeakPassword(_))));
    assert_eq!(id.reset_password(&email, &wrong(&reset), NEW_PASSWORD).await, Err(IdentityError::InvalidCode));
    id.reset_password(&email, &reset, NEW_PASSWORD).await.expect("reset");
    assert_eq!(id.reset_password(&email, &reset, PASSWORD).await, Err(IdentityError::InvalidCode), "single use");
    assert_eq!(id.login(&email, PASSWORD).await, Err(IdentityError::InvalidCredentials));
    assert!(id.refresh(&b.refresh_token).await.is_err(), "a reset ends every session");
    let tokens = id.login(&email, NEW_PASSWORD).await.expect("login with the new password");

    // Change password: proves the old one, follows the policy.
    assert_eq!(
        id.change_password(&tokens.access_token, PASSWORD, PASSWORD).await,
        Err(IdentityError::InvalidCredentials)
    );
    assert!(matches!(
        id.change_password(&tokens.access_token, NEW_PASSWORD, "alllowercase").await,
        Err(IdentityError::WeakPassword(_))
    ));
    assert_eq!(id.change_password("garbage", NEW_PASSWORD, PASSWORD).await, Err(IdentityError::InvalidToken));
    id.change_password(&tokens.access_token, NEW_PASSWORD, PASSWORD).await.expect("change password");
    let tokens = id.login(&email, PASSWORD).await.expect("login after change");

    // Change email: only after the new address proves itself.
    let other = unique("other");
    id.sign_up(new_user(&other, PASSWORD)).await.expect("second account");
    assert_eq!(id.change_email(&tokens.access_token, &other).await, Err(IdentityError::EmailTaken));
    let moved = unique("moved");
    id.change_email(&tokens.access_token, &moved).await.expect("change email");
    if !limits.email_change_unverified {
        assert!(id.login(&email, PASSWORD).await.is_ok(), "the old address works until confirmed");
        let change = code(&h, &moved).await;
        assert_eq!(
            id.confirm_email_change(&tokens.access_token, &wrong(&change)).await,
            Err(IdentityError::InvalidCode)
        );
        let changed = id.confirm_email_change(&tokens.access_token, &change).await.expect("confirm email");
        assert_eq!(changed.email, moved);
    }
    assert_eq!(id.login(&email, PASSWORD).await, Err(IdentityError::InvalidCredentials));
    id.login(&moved, PASSWORD).await.expect("login with the new address");

    // Invitations: a pending account that takes a password with the mailed code.
    let invitee = unique("invitee");
    let invite = Invite {
        email: invitee.clone(),
        tenant_id: tenant.clone(),
        role: Role::Agent,
        tenant_name: "Conformance Inc".into(),
        invited_by: moved.clone(),
    };
    id.invite(invite.clone()).await.expect("invite");
    assert_eq!(id.login(&invitee, PASSWORD).await, Err(IdentityError::InvalidCredentials));
    let invitation = code(&h, &invitee).await;
    assert!(matches!(id.accept_invitation(&invitee, &invitation, "weak").await, Err(IdentityError::WeakPassword(_))));
    assert_eq!(id.accept_invitation(&invitee, &wrong(&invitation), PASSWORD).await, Err(IdentityError::InvalidCode));
    let joined = id.accept_invitation(&invitee, &invitation, PASSWORD).await.expect("accept");
    assert_eq!((joined.role, joined.email_verified, joined.tenant_id.as_str()), (Role::Agent, true, tenant.as_str()));
    assert_eq!(id.accept_invitation(&invitee, &invitation, PASSWORD).await, Err(IdentityError::InvalidCode));
    assert_eq!(id.invite(invite).await, Err(IdentityError::EmailTaken), "members are not invited twice");
    let agent = h.verifier.verify(&id.login(&invitee, PASSWORD).await.expect("invitee login").access_token).unwrap();
    assert_eq!(agent.role, Role::Agent);

    // Roles change in the next tokens; deleted users are gone.
    id.set_role(&joined.user_id, Role::Admin).await.expect("set role");
    let admin = h.verifier.verify(&id.login(&invitee, PASSWORD).await.unwrap().access_token).unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(id.account(&joined.user_id).await.unwrap().map(|a| a.role), Some(Role::Admin));
    let session = id.login(&invitee, PASSWORD).await.unwrap();
    id.delete_user(&joined.user_id).await.expect("delete");
    assert_eq!(id.account(&joined.user_id).await, Ok(None));
    assert_eq!(id.login(&invitee, PASSWORD).await, Err(IdentityError::InvalidCredentials));
    assert!(id.refresh(&session.refresh_token).await.is_err(), "a deleted user's sessions end");
    assert_eq!(id.set_role(&joined.user_id, Role::Viewer).await, Err(IdentityError::UnknownUser));

    // The keys that verify the tokens are published.
    let jwks = id.jwks().await.expect("jwks");
    let keys = jwks["keys"].as_array().expect("a JWKS has keys");
    assert!(keys.iter().all(|k| k["kty"] == "RSA" && k["kid"].is_string()));
    assert!(!keys.is_empty());
}
