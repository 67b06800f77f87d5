//! Bearer tokens for `/v1` routes. Locally an RSA key under the data dir signs
//! RS256 JWTs whose claims carry the user, tenant and role; its public half is
//! served as a JWKS so any JWT library (or an API gateway) can check them. The
//! verifier is a port so another issuer (Cognito) can take its place.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// A member's role in a tenant (SPEC 3.1), defined by the domain.
pub use parley_domain::tenant::Role;

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

/// What an access token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
    role: Role,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// `access` or `id`: an id token is never accepted as an access token.
    token_use: String,
    jti: String,
}

/// What an id token says about its user.
#[derive(Debug, Serialize, Deserialize)]
struct IdClaims {
    sub: String,
    email: String,
    email_verified: bool,
    tenant: String,
    role: Role,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    token_use: String,
}

pub const ISSUER: &str = "parley-local";
pub const AUDIENCE: &str = "parley";
/// The signing key's file under the data dir (PKCS#8 PEM, readable by its owner only).
const KEY_FILE: &str = "jwt-rs256.pem";
const KEY_BITS: usize = 2048;

/// The local issuer: RS256 with an RSA key generated once and kept in
/// `<data_dir>/jwt-rs256.pem`.
pub struct LocalIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwks: serde_json::Value,
}

impl LocalIssuer {
    pub fn open(data_dir: &Path) -> Result<Self, AppError> {
        use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
        use rsa::traits::PublicKeyParts;

        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                .map_err(|e| AppError::internal(format!("{}: not a PKCS#8 RSA key: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), KEY_BITS).map_err(AppError::internal)?;
                let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(AppError::internal)?;
                crate::keyfile::write_private(&path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(AppError::internal(format!("{}: {e}", path.display()))),
        };
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(AppError::internal)?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(AppError::internal)?;
        let b64 = |bytes: Vec<u8>| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
        let n = b64(key.n().to_bytes_be());
        let e = b64(key.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(AppError::internal)?;
        // The key id names the key by its modulus, so a rotated key gets a new one.
        let kid = hex::encode(&Sha256::digest(n.as_bytes())[..8]);
        let jwks =
            serde_json::json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]});
        Ok(LocalIssuer { encoding, decoding, kid, jwks })
    }

    /// The public keys as a JSON Web Key Set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header
    }

    /// An access token for `user_id`, member of `tenant_id` with `role`.
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
            token_use: "access".into(),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        encode(&self.header(), &claims, &self.encoding).map_err(AppError::internal)
    }

    /// An id token: who the user is, for the client (never accepted by `/v1`).
    pub fn issue_id_token(
        &self,
        caller: &Caller,
        email: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String, AppError> {
        let claims = IdClaims {
            sub: caller.user_id.clone(),
            email: email.to_owned(),
            email_verified: true,
            tenant: caller.tenant_id.clone(),
            role: caller.role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            token_use: "id".into(),
        };
        encode(&self.header(), &claims, &self.encoding).map_err(AppError::internal)
    }
}

impl TokenVerifier for LocalIssuer {
    fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| AppError::Unauthorized(format!("invalid token: {e}")))?;
        let c = data.claims;
        if c.token_use != "access" {
            return Err(AppError::Unauthorized("invalid token: not an access token".into()));
        }
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
        // An id token is not an access token.
        let caller = Caller { user_id: "u1".into(), tenant_id: "acme".into(), role: Role::Owner };
        let id = issuer.issue_id_token(&caller, "a@acme.test", Utc::now(), Duration::hours(1)).unwrap();
        assert!(issuer.verify(&id).is_err());
    }

    #[test]
    fn tokens_verify_with_the_published_jwks_alone() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::open(dir.path()).unwrap();
        let token = issuer.issue("acme", "u1", Role::Viewer, Utc::now(), Duration::hours(1)).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(issuer.jwks().clone()).unwrap();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let jwk = jwks.find(&kid).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[AUDIENCE]);
        let claims = decode::<serde_json::Value>(&token, &key, &validation).unwrap().claims;
        assert_eq!(claims["tenant"], "acme");
    }
}
