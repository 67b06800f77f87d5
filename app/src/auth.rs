//! Bearer tokens for `/v1` routes. Locally a key under the data dir signs
//! HS256 JWTs whose claims carry the user, tenant and role; the verifier is a
//! port so another issuer (Cognito) can take its place.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A member's role in a tenant (SPEC 3.1). Order matters: each role can do
/// everything the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Agent,
    Admin,
    Owner,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(format!("`{other}` is not one of owner, admin, agent, viewer")),
        }
    }
}

/// Who is calling: from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub tenant_id: String,
    pub role: Role,
}

impl Caller {
    /// Refuses the call unless the caller's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<(), AppError> {
        if self.role >= min {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this needs the {min:?} role or higher").to_lowercase()))
        }
    }

    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

pub trait TokenVerifier: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<Caller, AppError>;
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
    role: Role,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

const ISSUER: &str = "parley-local";
const AUDIENCE: &str = "parley";

/// The local issuer: HS256 with a random key kept in `<data_dir>/jwt.key`.
pub struct LocalIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl LocalIssuer {
    pub fn open(data_dir: &Path) -> Result<Self, AppError> {
        let key = crate::keyfile::load_or_create(&data_dir.join("jwt.key"))?;
        Ok(LocalIssuer { encoding: EncodingKey::from_secret(&key), decoding: DecodingKey::from_secret(&key) })
    }

    pub fn issue(
        &self,
        tenant_id: &str,
        user_id: &str,
        role: Role,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String, AppError> {
        let claims = Claims {
            sub: user_id.to_owned(),
            tenant: tenant_id.to_owned(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }
}

impl TokenVerifier for LocalIssuer {
    fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| AppError::Unauthorized(format!("invalid token: {e}")))?;
        let c = data.claims;
        if !valid_tenant_id(&c.tenant) {
            return Err(AppError::Unauthorized("invalid token: bad tenant".into()));
        }
        Ok(Caller { user_id: c.sub, tenant_id: c.tenant, role: c.role })
    }
}

/// Tenant ids appear in every stored key, so they are kept to a safe alphabet.
pub fn valid_tenant_id(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_tenant_and_role() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::open(dir.path()).unwrap();
        let token = issuer.issue("acme", "u1", Role::Agent, Utc::now(), Duration::hours(1)).unwrap();
        let caller = issuer.verify(&token).unwrap();
        assert_eq!(caller, Caller { user_id: "u1".into(), tenant_id: "acme".into(), role: Role::Agent });
        assert!(caller.require(Role::Agent).is_ok());
        assert!(caller.require(Role::Admin).is_err());
        // The same key is used after a restart.
        assert!(LocalIssuer::open(dir.path()).unwrap().verify(&token).is_ok());
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::open(dir.path()).unwrap();
        let old = issuer.issue("acme", "u1", Role::Owner, Utc::now() - Duration::hours(3), Duration::hours(1)).unwrap();
        assert!(issuer.verify(&old).is_err());
        let other = LocalIssuer::open(tempfile::tempdir().unwrap().path()).unwrap();
        let foreign = other.issue("acme", "u1", Role::Owner, Utc::now(), Duration::hours(1)).unwrap();
        assert!(issuer.verify(&foreign).is_err());
        assert!(issuer.verify("not.a.token").is_err());
    }
}
