//! The local identity provider: accounts, Argon2id password hashes, one-time
//! codes and refresh tokens in SQLite; RS256 tokens signed by the
//! [`LocalIssuer`]; codes mailed through the mail port (the outbox folder
//! locally).
//!
//! Secrets are never stored in the clear: passwords as Argon2id hashes,
//! codes and refresh tokens as SHA-256 hashes (they are random, so a fast
//! hash suffices). A refresh token works once: using it marks it rotated and
//! issues a successor in the same family; presenting a rotated token again
//! means it leaked, so the whole family is revoked.

use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_trait::async_trait;
use chrono::Duration;
use rand::{Rng, RngCore};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::templates::{self, CodeMail};
use super::{policy, Account, IdentityError, IdentityProvider, Invite, NewUser, Tokens};
use crate::auth::{Caller, LocalIssuer, Role, TokenVerifier};
use crate::blocking::{BlockingConnection, BlockingError};
use crate::clock::Clock;
use crate::mail::Mailer;

/// Lifetimes of what the provider hands out.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub access_token: Duration,
    pub refresh_token: Duration,
    pub verification_code: Duration,
    pub reset_code: Duration,
    pub invitation_code: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: Duration::minutes(15),
            refresh_token: Duration::days(30),
            verification_code: Duration::hours(24),
            reset_code: Duration::hours(1),
            invitation_code: Duration::days(7),
        }
    }
}

/// Wrong guesses a code survives before it is destroyed.
const CODE_ATTEMPTS: i64 = 5;

/// What a one-time code is for; part of its hash, so a code of one kind never redeems another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
    Invitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
            Purpose::Invitation => "invitation",
        }
    }
}

/// Refresh token states.
const ACTIVE: i64 = 0;
const ROTATED: i64 = 1;
const REVOKED: i64 = 2;

pub struct LocalIdentity {
    db: BlockingConnection,
    issuer: Arc<LocalIssuer>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    lifetimes: Lifetimes,
    /// Verified against when the email is unknown, so a miss costs as much time as a wrong password.
    decoy_hash: String,
}

/// A user row.
#[derive(Debug, Clone)]
struct Row {
    user_id: String,
    email: String,
    password_hash: Option<String>,
    email_verified: bool,
    tenant_id: String,
    role: Role,
    pending_email: Option<String>,
}

impl Row {
    fn account(&self) -> Account {
        Account {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            tenant_id: self.tenant_id.clone(),
            role: self.role,
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    email_verified INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    pending_email TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    state INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id);
";

impl LocalIdentity {
    /// Opens (or creates) the credential database at `path`.
    pub fn open(
        path: &Path,
        issuer: Arc<LocalIssuer>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdentityError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
        conn.pragma_update(None, "busy_timeout", 5000).map_err(unavailable)?;
        Self::with_connection(conn, issuer, mailer, clock)
    }

    /// A provider whose data lives only as long as it does (tests).
    pub fn in_memory(
        issuer: Arc<LocalIssuer>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdentityError> {
        Self::with_connection(Connection::open_in_memory().map_err(unavailable)?, issuer, mailer, clock)
    }

    fn with_connection(
        conn: Connection,
        issuer: Arc<LocalIssuer>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdentityError> {
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        let decoy_hash = hash_password_now("decoy password, never a real one")?;
        Ok(LocalIdentity {
            db: BlockingConnection::new(conn),
            issuer,
            mailer,
            clock,
            lifetimes: Lifetimes::default(),
            decoy_hash,
        })
    }

    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, IdentityError> {
        self.db.run(f).await.map_err(|e: BlockingError| IdentityError::Unavailable(e.to_string()))
    }

    async fn by_email(&self, email: &str) -> Result<Option<Row>, IdentityError> {
        let email = email.trim().to_lowercase();
        self.db(move |c| c.query_row(&format!("{SELECT} WHERE email = ?1"), [email], row).optional()).await
    }

    async fn by_id(&self, user_id: &str) -> Result<Option<Row>, IdentityError> {
        let id = user_id.to_owned();
        self.db(move |c| c.query_row(&format!("{SELECT} WHERE user_id = ?1"), [id], row).optional()).await
    }

    /// The user an access token names, if the token verifies and the user still exists.
    async fn by_token(&self, access_token: &str) -> Result<Row, IdentityError> {
        let caller: Caller = self.issuer.verify(access_token).map_err(|_| IdentityError::InvalidToken)?;
        self.by_id(&caller.user_id).await?.ok_or(IdentityError::InvalidToken)
    }

    /// Stores a fresh code for (user, purpose), replacing any earlier one, and mails it.
    async fn send_code(
        &self,
        user_id: &str,
        to: &str,
        purpose: Purpose,
        kind: CodeMail<'_>,
    ) -> Result<(), IdentityError> {
        let ttl = match purpose {
            Purpose::VerifyEmail | Purpose::ChangeEmail => self.lifetimes.verification_code,
            Purpose::ResetPassword => self.lifetimes.reset_code,
            Purpose::Invitation => self.lifetimes.invitation_code,
        };
        let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
        let hash = code_hash(user_id, purpose, &code);
        let expires = (self.clock.now() + ttl).timestamp();
        let (id, p) = (user_id.to_owned(), purpose.as_str());
        self.db(move |c| {
            c.execute(
                "INSERT INTO codes (user_id, purpose, code_hash, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (user_id, purpose) DO UPDATE SET code_hash = ?3, expires_at = ?4, attempts = 0",
                params![id, p, hash, expires],
            )
        })
        .await?;
        let mail = templates::render(kind, to, &code, ttl.num_hours().max(1));
        self.mailer.send(&mail).await.map_err(|e| IdentityError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Consumes the code of (user, purpose) if `code` matches and has not expired.
    async fn redeem_code(&self, user_id: &str, purpose: Purpose, code: &str) -> Result<(), IdentityError> {
        let hash = code_hash(user_id, purpose, code.trim());
        let now = self.clock.now().timestamp();
        let (id, p) = (user_id.to_owned(), purpose.as_str());
        let ok = self
            .db(move |c| {
                let tx = c.transaction()?;
                let stored: Option<(String, i64, i64)> = tx
                    .query_row(
                        "SELECT code_hash, expires_at, attempts FROM codes WHERE user_id = ?1 AND purpose = ?2",
                        params![id, p],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let ok = match stored {
                    None => false,
                    Some((stored, expires, attempts)) => {
                        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hash.as_bytes()));
                        if matches && expires > now {
                            tx.execute("DELETE FROM codes WHERE user_id = ?1 AND purpose = ?2", params![id, p])?;
                            true
                        } else if expires <= now || attempts + 1 >= CODE_ATTEMPTS {
                            tx.execute("DELETE FROM codes WHERE user_id = ?1 AND purpose = ?2", params![id, p])?;
                            false
                        } else {
                            tx.execute(
                                "UPDATE codes SET attempts = attempts + 1 WHERE user_id = ?1 AND purpose = ?2",
                                params![id, p],
                            )?;
                            false
                        }
                    }
                };
                tx.commit()?;
                Ok(ok)
            })
            .await?;
        if ok {
            Ok(())
        } else {
            Err(IdentityError::InvalidCode)
        }
    }

    /// Issues access and id tokens plus a refresh token in `family` (a new family when `None`).
    async fn session(&self, user: &Row, family: Option<String>) -> Result<Tokens, IdentityError> {
        let now = self.clock.now();
        let caller = Caller { user_id: user.user_id.clone(), tenant_id: user.tenant_id.clone(), role: user.role };
        let ttl = self.lifetimes.access_token;
        let internal = |e: crate::error::AppError| IdentityError::Unavailable(e.to_string());
        let access_token =
            self.issuer.issue(&caller.tenant_id, &caller.user_id, caller.role, now, ttl).map_err(internal)?;
        let id_token = self.issuer.issue_id_token(&caller, &user.email, now, ttl).map_err(internal)?;
        let refresh_token = random_token();
        let hash = sha256_hex(refresh_token.as_bytes());
        let family = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let expires = (now + self.lifetimes.refresh_token).timestamp();
        let user_id = user.user_id.clone();
        self.db(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (token_hash, family, user_id, expires_at, state) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, family, user_id, expires, ACTIVE],
            )
        })
        .await?;
        Ok(Tokens {
            access_token,
            id_token,
            refresh_token,
            expires_in: u64::try_from(ttl.num_seconds()).unwrap_or(0),
            token_type: "Bearer".into(),
        })
    }

    async fn revoke_all(&self, user_id: &str) -> Result<(), IdentityError> {
        let id = user_id.to_owned();
        self.db(move |c| c.execute("UPDATE refresh_tokens SET state = ?2 WHERE user_id = ?1", params![id, REVOKED]))
            .await?;
        Ok(())
    }

    async fn set_password(&self, user_id: &str, password: &str, verified: bool) -> Result<(), IdentityError> {
        let hash = hash_password(password).await?;
        let id = user_id.to_owned();
        self.db(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?2, email_verified = MAX(email_verified, ?3) WHERE user_id = ?1",
                params![id, hash, verified],
            )
        })
        .await?;
        Ok(())
    }
}

const SELECT: &str = "SELECT user_id, email, password_hash, email_verified, tenant_id, role, pending_email FROM users";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let role: String = r.get(5)?;
    Ok(Row {
        user_id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        email_verified: r.get(3)?,
        tenant_id: r.get(4)?,
        role: role
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into()))?,
        pending_email: r.get(6)?,
    })
}

#[async_trait]
impl IdentityProvider for LocalIdentity {
    async fn sign_up(&self, user: NewUser) -> Result<Account, IdentityError> {
        let email = checked_email(&user.email)?;
        policy::check(&user.password, &email).map_err(|p| IdentityError::WeakPassword(p.to_string()))?;
        if self.by_email(&email).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        let hash = hash_password(&user.password).await?;
        let row = Row {
            user_id: uuid::Uuid::now_v7().to_string(),
            email: email.clone(),
            password_hash: Some(hash),
            email_verified: false,
            tenant_id: user.tenant_id,
            role: user.role,
            pending_email: None,
        };
        let r = row.clone();
        let created = self.clock.now().timestamp();
        let inserted = self
            .db(move |c| {
                c.execute(
                    "INSERT INTO users (user_id, email, password_hash, email_verified, tenant_id, role, created_at)
                     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6) ON CONFLICT (email) DO NOTHING",
                    params![r.user_id, r.email, r.password_hash, r.tenant_id, r.role.as_str(), created],
                )
            })
            .await?;
        if inserted == 0 {
            return Err(IdentityError::EmailTaken);
        }
        self.send_code(&row.user_id, &email, Purpose::VerifyEmail, CodeMail::VerifyEmail).await?;
        Ok(row.account())
    }

    async fn verify_email(&self, email: &str, code: &str) -> Result<Account, IdentityError> {
        let user = self.by_email(email).await?.ok_or(IdentityError::InvalidCode)?;
        self.redeem_code(&user.user_id, Purpose::VerifyEmail, code).await?;
        let id = user.user_id.clone();
        self.db(move |c| c.execute("UPDATE users SET email_verified = 1 WHERE user_id = ?1", [id])).await?;
        Ok(Account { email_verified: true, ..user.account() })
    }

    async fn login(&self, email: &str, password: &str) -> Result<Tokens, IdentityError> {
        let user = self.by_email(email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let matches = verify_password(password, hash.as_deref().unwrap_or(&self.decoy_hash)).await?;
        let user = match user {
            Some(u) if matches && hash.is_some() => u,
            _ => return Err(IdentityError::InvalidCredentials),
        };
        if !user.email_verified {
            return Err(IdentityError::EmailNotVerified);
        }
        self.session(&user, None).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens, IdentityError> {
        let hash = sha256_hex(refresh_token.trim().as_bytes());
        let now = self.clock.now().timestamp();
        // Look up and rotate in one transaction, so two concurrent uses cannot both succeed.
        let outcome = self
            .db(move |c| {
                let tx = c.transaction()?;
                let found: Option<(String, String, i64, i64)> = tx
                    .query_row(
                        "SELECT family, user_id, expires_at, state FROM refresh_tokens WHERE token_hash = ?1",
                        [&hash],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let outcome = match found {
                    None => Err(IdentityError::InvalidToken),
                    Some((family, user_id, _, ROTATED)) => {
                        tx.execute("UPDATE refresh_tokens SET state = ?2 WHERE family = ?1", params![family, REVOKED])?;
                        Err(IdentityError::RefreshReused { user_id })
                    }
                    Some((_, _, expires, state)) if state != ACTIVE || expires <= now => {
                        Err(IdentityError::InvalidToken)
                    }
                    Some((family, user_id, _, _)) => {
                        tx.execute(
                            "UPDATE refresh_tokens SET state = ?2 WHERE token_hash = ?1",
                            params![hash, ROTATED],
                        )?;
                        Ok((family, user_id))
                    }
                };
                tx.commit()?;
                Ok(outcome)
            })
            .await??;
        let (family, user_id) = outcome;
        let user = self.by_id(&user_id).await?.ok_or(IdentityError::InvalidToken)?;
        self.session(&user, Some(family)).await
    }

    async fn logout(&self, refresh_token: &str) -> Result<String, IdentityError> {
        let hash = sha256_hex(refresh_token.trim().as_bytes());
        self.db(move |c| {
            let tx = c.transaction()?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT family, user_id FROM refresh_tokens WHERE token_hash = ?1 AND state != ?2",
                    params![hash, REVOKED],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let outcome = match found {
                None => Err(IdentityError::InvalidToken),
                Some((family, user_id)) => {
                    tx.execute("UPDATE refresh_tokens SET state = ?2 WHERE family = ?1", params![family, REVOKED])?;
                    Ok(user_id)
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await?
    }

    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError> {
        match self.by_email(email).await? {
            Some(user) if user.password_hash.is_some() => {
                self.send_code(&user.user_id, &user.email, Purpose::ResetPassword, CodeMail::ResetPassword).await
            }
            _ => Ok(()),
        }
    }

    async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Result<Account, IdentityError> {
        let user = self.by_email(email).await?.ok_or(IdentityError::InvalidCode)?;
        policy::check(new_password, &user.email).map_err(|p| IdentityError::WeakPassword(p.to_string()))?;
        self.redeem_code(&user.user_id, Purpose::ResetPassword, code).await?;
        // The code reached the mailbox, so the address is proven too.
        self.set_password(&user.user_id, new_password, true).await?;
        self.revoke_all(&user.user_id).await?;
        Ok(Account { email_verified: true, ..user.account() })
    }

    async fn change_password(&self, access_token: &str, old: &str, new: &str) -> Result<Account, IdentityError> {
        let user = self.by_token(access_token).await?;
        let hash = user.password_hash.clone().ok_or(IdentityError::InvalidCredentials)?;
        if !verify_password(old, &hash).await? {
            return Err(IdentityError::InvalidCredentials);
        }
        policy::check(new, &user.email).map_err(|p| IdentityError::WeakPassword(p.to_string()))?;
        self.set_password(&user.user_id, new, false).await?;
        self.revoke_all(&user.user_id).await?;
        Ok(user.account())
    }

    async fn change_email(&self, access_token: &str, new_email: &str) -> Result<(), IdentityError> {
        let user = self.by_token(access_token).await?;
        let email = checked_email(new_email)?;
        if self.by_email(&email).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        let (id, pending) = (user.user_id.clone(), email.clone());
        self.db(move |c| c.execute("UPDATE users SET pending_email = ?2 WHERE user_id = ?1", params![id, pending]))
            .await?;
        self.send_code(&user.user_id, &email, Purpose::ChangeEmail, CodeMail::ChangeEmail).await
    }

    async fn confirm_email_change(&self, access_token: &str, code: &str) -> Result<Account, IdentityError> {
        let user = self.by_token(access_token).await?;
        let pending = user.pending_email.clone().ok_or(IdentityError::InvalidCode)?;
        self.redeem_code(&user.user_id, Purpose::ChangeEmail, code).await?;
        let (id, email) = (user.user_id.clone(), pending.clone());
        let changed = self
            .db(move |c| {
                // The address may have been taken while the code travelled: UNIQUE refuses it then.
                match c.execute(
                    "UPDATE users SET email = ?2, pending_email = NULL, email_verified = 1 WHERE user_id = ?1",
                    params![id, email],
                ) {
                    Ok(n) => Ok(n == 1),
                    Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        if !changed {
            return Err(IdentityError::EmailTaken);
        }
        Ok(Account { email: pending, email_verified: true, ..user.account() })
    }

    async fn invite(&self, invite: Invite) -> Result<(), IdentityError> {
        let email = checked_email(&invite.email)?;
        let user_id = match self.by_email(&email).await? {
            // Invited before and not accepted yet: a new code replaces the old one.
            Some(u) if u.password_hash.is_none() && u.tenant_id == invite.tenant_id => {
                let (id, role) = (u.user_id.clone(), invite.role.as_str());
                self.db(move |c| c.execute("UPDATE users SET role = ?2 WHERE user_id = ?1", params![id, role])).await?;
                u.user_id
            }
            Some(_) => return Err(IdentityError::EmailTaken),
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                let (i, e, t, r) = (id.clone(), email.clone(), invite.tenant_id.clone(), invite.role.as_str());
                let created = self.clock.now().timestamp();
                let inserted = self
                    .db(move |c| {
                        c.execute(
                            "INSERT INTO users (user_id, email, password_hash, email_verified, tenant_id, role, created_at)
                             VALUES (?1, ?2, NULL, 0, ?3, ?4, ?5) ON CONFLICT (email) DO NOTHING",
                            params![i, e, t, r, created],
                        )
                    })
                    .await?;
                if inserted == 0 {
                    return Err(IdentityError::EmailTaken);
                }
                id
            }
        };
        let kind = CodeMail::Invitation { tenant_name: &invite.tenant_name, invited_by: &invite.invited_by };
        self.send_code(&user_id, &email, Purpose::Invitation, kind).await
    }

    async fn accept_invitation(&self, email: &str, code: &str, password: &str) -> Result<Account, IdentityError> {
        let user = self.by_email(email).await?.ok_or(IdentityError::InvalidCode)?;
        if user.password_hash.is_some() {
            return Err(IdentityError::InvalidCode);
        }
        policy::check(password, &user.email).map_err(|p| IdentityError::WeakPassword(p.to_string()))?;
        self.redeem_code(&user.user_id, Purpose::Invitation, code).await?;
        self.set_password(&user.user_id, password, true).await?;
        Ok(Account { email_verified: true, ..user.account() })
    }

    async fn set_role(&self, user_id: &str, role: Role) -> Result<(), IdentityError> {
        let (id, r) = (user_id.to_owned(), role.as_str());
        let n = self.db(move |c| c.execute("UPDATE users SET role = ?2 WHERE user_id = ?1", params![id, r])).await?;
        if n == 0 {
            return Err(IdentityError::UnknownUser);
        }
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<(), IdentityError> {
        let id = user_id.to_owned();
        self.db(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM refresh_tokens WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM codes WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM users WHERE user_id = ?1", [&id])?;
            tx.commit()
        })
        .await
    }

    async fn account(&self, user_id: &str) -> Result<Option<Account>, IdentityError> {
        Ok(self.by_id(user_id).await?.map(|r| r.account()))
    }

    async fn jwks(&self) -> Result<serde_json::Value, IdentityError> {
        Ok(self.issuer.jwks().clone())
    }
}

fn checked_email(email: &str) -> Result<String, IdentityError> {
    parley_domain::tenant::normalize_email(email)
        .map_err(|_| IdentityError::Invalid { field: "email", message: "must be an email address".into() })
}

fn unavailable(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(e.to_string())
}

/// Argon2id with the crate's default (OWASP-recommended) parameters, off the async runtime.
async fn hash_password(password: &str) -> Result<String, IdentityError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password_now(&password)).await.map_err(unavailable)?
}

fn hash_password_now(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(unavailable)
}

async fn verify_password(password: &str, hash: &str) -> Result<bool, IdentityError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(unavailable)?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(unavailable)?
}

fn code_hash(user_id: &str, purpose: Purpose, code: &str) -> String {
    sha256_hex(format!("{}\n{user_id}\n{code}", purpose.as_str()).as_bytes())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 256 random bits, URL-safe.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::conformance::{self, Harness};
    use crate::mail::{MailProbe, OutboxMailer};

    async fn harness(clock: Arc<dyn Clock>) -> (LocalIdentity, Arc<OutboxMailer>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Arc::new(LocalIssuer::open(dir.path()).unwrap());
        let outbox = Arc::new(OutboxMailer::open(&dir.path().join("outbox"), "parley@localhost").unwrap());
        let identity = LocalIdentity::open(&dir.path().join("identity.db"), issuer, outbox.clone(), clock).unwrap();
        (identity, outbox, dir)
    }

    #[tokio::test]
    async fn passes_the_identity_conformance_suite() {
        let (identity, outbox, dir) = harness(Arc::new(crate::SystemClock)).await;
        let issuer = Arc::new(LocalIssuer::open(dir.path()).unwrap());
        conformance::run_identity_suite(Harness {
            identity: Arc::new(identity),
            mail: outbox,
            verifier: issuer,
            limits: conformance::Limits::NONE,
        })
        .await;
    }

    #[tokio::test]
    async fn codes_expire() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let (identity, outbox, _dir) = harness(clock.clone()).await;
        let user = NewUser {
            email: "late@x.test".into(),
            password: "Slow-Reader-42".into(),
            tenant_id: "t1".into(),
            role: Role::Owner,
        };
        identity.sign_up(user).await.unwrap();
        let mails = outbox.delivered().await.unwrap();
        let code = templates::code_in(&mails[0].text).unwrap();
        clock.advance(Duration::hours(25));
        assert_eq!(identity.verify_email("late@x.test", &code).await, Err(IdentityError::InvalidCode));
    }
}
