//! Identity on a Cognito user pool (SPEC 5.1): [`CognitoIdentity`] is the
//! [`IdentityProvider`] adapter and [`CognitoTokens`] the [`TokenVerifier`]
//! for the pool's access tokens.
//!
//! The pool is the one `template.yaml` defines: the email is the username,
//! the tenant and role are the custom attributes `custom:tenant_id` and
//! `custom:role`, and Cognito mails its own codes (verification, reset,
//! email change; an invitation's code is the temporary password). Access
//! tokens carry no custom attributes unless a pre-token-generation trigger
//! adds them, so the tenant and role are mirrored into the user's groups
//! (`tenant:<id>`, `role:<role>`), which every access token lists in
//! `cognito:groups`; the verifier reads the claims when present and the
//! groups otherwise.
//!
//! Cognito does not rotate refresh tokens on this pool: a refresh returns the
//! same refresh token, and reuse detection is Cognito's, not ours.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ChallengeNameType, UserType,
};
use aws_sdk_cognitoidentityprovider::Client;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use parley_app::auth::{Caller, Role, TokenVerifier};
use parley_app::error::AppError;
use parley_app::identity::{policy, Account, IdentityError, IdentityProvider, Invite, NewUser, Tokens};
use serde::Deserialize;

/// The custom attribute holding the user's tenant.
pub const TENANT_ATTRIBUTE: &str = "custom:tenant_id";
/// The custom attribute holding the user's role.
pub const ROLE_ATTRIBUTE: &str = "custom:role";
const TENANT_GROUP: &str = "tenant:";
const ROLE_GROUP: &str = "role:";

/// The issuer of a pool's tokens: `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
pub fn issuer(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
}

/// Accounts in a Cognito user pool, used through one app client without a secret.
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
}

impl CognitoIdentity {
    /// A Cognito client from the SDK configuration of this process.
    pub fn client(sdk: &aws_config::SdkConfig) -> Client {
        Client::new(sdk)
    }

    /// `jwks_url` is where the pool publishes its keys, `{issuer}/.well-known/jwks.json`.
    pub fn new(
        client: Client,
        user_pool_id: impl Into<String>,
        client_id: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Self {
        CognitoIdentity {
            client,
            user_pool_id: user_pool_id.into(),
            client_id: client_id.into(),
            jwks_url: jwks_url.into(),
            http: reqwest::Client::new(),
        }
    }

    async fn user(&self, username: &str) -> Result<Option<Account>, IdentityError> {
        match self.client.admin_get_user().user_pool_id(&self.user_pool_id).username(username).send().await {
            Ok(out) => Ok(Some(account(out.username(), out.user_attributes())?)),
            Err(e) if code(&e) == Some("UserNotFoundException") => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn known_user(&self, username: &str) -> Result<Account, IdentityError> {
        self.user(username).await?.ok_or(IdentityError::UnknownUser)
    }

    /// The user an access token belongs to (`InvalidToken` when Cognito refuses it).
    async fn token_user(&self, access_token: &str) -> Result<Account, IdentityError> {
        let out = self.client.get_user().access_token(access_token).send().await.map_err(|e| match code(&e) {
            Some("NotAuthorizedException") | Some("UserNotFoundException") => IdentityError::InvalidToken,
            _ => map_err(e),
        })?;
        account(out.username(), out.user_attributes())
    }

    /// Mirrors the tenant and role into groups, creating the groups on first use.
    async fn join_groups(&self, username: &str, tenant_id: &str, role: Role) -> Result<(), IdentityError> {
        for group in [format!("{TENANT_GROUP}{tenant_id}"), format!("{ROLE_GROUP}{role}")] {
            let created = self.client.create_group().user_pool_id(&self.user_pool_id).group_name(&group).send().await;
            if let Err(e) = created {
                if code(&e) != Some("GroupExistsException") {
                    return Err(map_err(e));
                }
            }
            self.client
                .admin_add_user_to_group()
                .user_pool_id(&self.user_pool_id)
                .username(username)
                .group_name(&group)
                .send()
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// Ends every session of the account. Sessions are named by the sign-in
    /// name (the email), which Cognito accepts as the username because the
    /// pool signs in by email; an emulator that keys sessions by that name
    /// finds them too.
    async fn sign_out_everywhere(&self, account: &Account) -> Result<(), IdentityError> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(&account.email)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn password_login(&self, email: &str, password: &str) -> Result<Tokens, IdentityError> {
        let out = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(login_err)?;
        match out.authentication_result() {
            Some(result) => tokens(result, None),
            // A pending invitation (NEW_PASSWORD_REQUIRED) cannot sign in before it is accepted.
            None => Err(IdentityError::InvalidCredentials),
        }
    }
}

#[async_trait]
impl IdentityProvider for CognitoIdentity {
    async fn sign_up(&self, user: NewUser) -> Result<Account, IdentityError> {
        let email = checked_email(&user.email)?;
        check_password(&user.password, &email)?;
        let out = self
            .client
            .sign_up()
            .client_id(&self.client_id)
            .username(&email)
            .password(&user.password)
            .user_attributes(attribute("email", &email)?)
            .user_attributes(attribute(TENANT_ATTRIBUTE, &user.tenant_id)?)
            .user_attributes(attribute(ROLE_ATTRIBUTE, user.role.as_str())?)
            .send()
            .await
            .map_err(map_err)?;
        let user_id = out.user_sub().to_owned();
        self.join_groups(&user_id, &user.tenant_id, user.role).await?;
        Ok(Account { user_id, email, email_verified: false, tenant_id: user.tenant_id, role: user.role })
    }

    async fn verify_email(&self, email: &str, code: &str) -> Result<Account, IdentityError> {
        let email = checked_email(email)?;
        self.client
            .confirm_sign_up()
            .client_id(&self.client_id)
            .username(&email)
            .confirmation_code(code)
            .send()
            .await
            .map_err(code_err)?;
        let mut account = self.known_user(&email).await?;
        account.email_verified = true;
        Ok(account)
    }

    async fn login(&self, email: &str, password: &str) -> Result<Tokens, IdentityError> {
        let email = checked_email(email).map_err(|_| IdentityError::InvalidCredentials)?;
        self.password_login(&email, password).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens, IdentityError> {
        let out = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token)
            .send()
            .await
            .map_err(token_err)?;
        let result = out.authentication_result().ok_or(IdentityError::InvalidToken)?;
        tokens(result, Some(refresh_token))
    }

    async fn logout(&self, refresh_token: &str) -> Result<String, IdentityError> {
        // The refresh token is opaque: trading it once names its user.
        let session = self.refresh(refresh_token).await?;
        let user = self.token_user(&session.access_token).await?;
        self.client.revoke_token().client_id(&self.client_id).token(refresh_token).send().await.map_err(token_err)?;
        Ok(user.user_id)
    }

    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError> {
        let Ok(email) = checked_email(email) else { return Ok(()) };
        match self.client.forgot_password().client_id(&self.client_id).username(&email).send().await {
            Ok(_) => Ok(()),
            // Unknown addresses are not revealed.
            Err(e) if matches!(code(&e), Some("UserNotFoundException") | Some("InvalidParameterException")) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Result<Account, IdentityError> {
        let email = checked_email(email)?;
        check_password(new_password, &email)?;
        self.client
            .confirm_forgot_password()
            .client_id(&self.client_id)
            .username(&email)
            .confirmation_code(code)
            .password(new_password)
            .send()
            .await
            .map_err(code_err)?;
        let account = self.known_user(&email).await?;
        self.sign_out_everywhere(&account).await?;
        Ok(account)
    }

    async fn change_password(&self, access_token: &str, old: &str, new: &str) -> Result<Account, IdentityError> {
        let account = self.token_user(access_token).await?;
        check_password(new, &account.email)?;
        self.client
            .change_password()
            .access_token(access_token)
            .previous_password(old)
            .proposed_password(new)
            .send()
            .await
            .map_err(login_err)?;
        self.sign_out_everywhere(&account).await?;
        Ok(account)
    }

    async fn change_email(&self, access_token: &str, new_email: &str) -> Result<(), IdentityError> {
        let email = checked_email(new_email)?;
        self.token_user(access_token).await?;
        // The pool keeps the old address until the new one is verified
        // (AttributesRequireVerificationBeforeUpdate), and mails the code.
        self.client
            .update_user_attributes()
            .access_token(access_token)
            .user_attributes(attribute("email", &email)?)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn confirm_email_change(&self, access_token: &str, code: &str) -> Result<Account, IdentityError> {
        let user = self.token_user(access_token).await?;
        self.client
            .verify_user_attribute()
            .access_token(access_token)
            .attribute_name("email")
            .code(code)
            .send()
            .await
            .map_err(code_err)?;
        self.known_user(&user.user_id).await
    }

    async fn invite(&self, invite: Invite) -> Result<(), IdentityError> {
        let email = checked_email(&invite.email)?;
        // Cognito mails the invitee a temporary password: that is the invitation code.
        let out = self
            .client
            .admin_create_user()
            .user_pool_id(&self.user_pool_id)
            .username(&email)
            .user_attributes(attribute("email", &email)?)
            .user_attributes(attribute("email_verified", "true")?)
            .user_attributes(attribute(TENANT_ATTRIBUTE, &invite.tenant_id)?)
            .user_attributes(attribute(ROLE_ATTRIBUTE, invite.role.as_str())?)
            .desired_delivery_mediums(aws_sdk_cognitoidentityprovider::types::DeliveryMediumType::Email)
            .send()
            .await
            .map_err(map_err)?;
        let username = out.user().and_then(UserType::username).ok_or_else(|| unavailable("no user created"))?;
        self.join_groups(username, &invite.tenant_id, invite.role).await
    }

    async fn accept_invitation(&self, email: &str, code: &str, password: &str) -> Result<Account, IdentityError> {
        let email = checked_email(email)?;
        check_password(password, &email)?;
        let started = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", &email)
            .auth_parameters("PASSWORD", code)
            .send()
            .await
            .map_err(code_err)?;
        if started.challenge_name() != Some(&ChallengeNameType::NewPasswordRequired) {
            // Already accepted: the code is used up.
            return Err(IdentityError::InvalidCode);
        }
        let session = started.session().ok_or_else(|| unavailable("no challenge session"))?;
        self.client
            .respond_to_auth_challenge()
            .client_id(&self.client_id)
            .challenge_name(ChallengeNameType::NewPasswordRequired)
            .session(session)
            .challenge_responses("USERNAME", &email)
            .challenge_responses("NEW_PASSWORD", password)
            .send()
            .await
            .map_err(map_err)?;
        self.known_user(&email).await
    }

    async fn set_role(&self, user_id: &str, role: Role) -> Result<(), IdentityError> {
        let account = self.known_user(user_id).await?;
        self.client
            .admin_update_user_attributes()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .user_attributes(attribute(ROLE_ATTRIBUTE, role.as_str())?)
            .send()
            .await
            .map_err(map_err)?;
        self.client
            .admin_remove_user_from_group()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .group_name(format!("{ROLE_GROUP}{}", account.role))
            .send()
            .await
            .map_err(map_err)?;
        self.join_groups(user_id, &account.tenant_id, role).await
    }

    async fn delete_user(&self, user_id: &str) -> Result<(), IdentityError> {
        let account = self.known_user(user_id).await?;
        self.sign_out_everywhere(&account).await?;
        self.client
            .admin_delete_user()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn account(&self, user_id: &str) -> Result<Option<Account>, IdentityError> {
        self.user(user_id).await
    }

    async fn jwks(&self) -> Result<serde_json::Value, IdentityError> {
        fetch_jwks(&self.http, &self.jwks_url).await.map_err(unavailable)
    }
}

/// Verifies the pool's access tokens against its JWKS: RS256, the pool's
/// issuer, `token_use = access` and this app client's id.
///
/// The keys are fetched once at [`load`](Self::load). A token signed with a
/// key not seen yet (the pool rotated its keys) is refused and starts one
/// background refetch, so the next such token verifies.
pub struct CognitoTokens {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

/// What a Cognito access token says that Parley reads.
#[derive(Debug, Deserialize)]
struct AccessClaims {
    sub: String,
    token_use: String,
    client_id: String,
    #[serde(rename = "custom:tenant_id")]
    tenant_id: Option<String>,
    #[serde(rename = "custom:role")]
    role: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

impl CognitoTokens {
    /// Fetches the keys at `jwks_url` (normally `{issuer}/.well-known/jwks.json`).
    pub async fn load(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Result<Self, IdentityError> {
        let tokens = CognitoTokens {
            issuer: issuer.into(),
            client_id: client_id.into(),
            jwks_url: jwks_url.into(),
            http: reqwest::Client::new(),
            keys: Arc::default(),
            refreshing: Arc::default(),
        };
        let keys = fetch_keys(&tokens.http, &tokens.jwks_url).await.map_err(unavailable)?;
        *tokens.keys.write().map_err(|_| unavailable("key cache poisoned"))? = keys;
        Ok(tokens)
    }

    /// Refetches the keys in the background unless a refetch is under way.
    fn refresh_keys(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let Ok(guard) = self.refreshing.clone().try_lock_owned() else { return };
        let (http, url, keys) = (self.http.clone(), self.jwks_url.clone(), self.keys.clone());
        runtime.spawn(async move {
            match fetch_keys(&http, &url).await {
                Ok(fresh) => {
                    if let Ok(mut cached) = keys.write() {
                        *cached = fresh;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not refetch the user pool's keys"),
            }
            drop(guard);
        });
    }
}

impl TokenVerifier for CognitoTokens {
    fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let invalid = || AppError::Unauthorized("invalid or expired token".into());
        let header = decode_header(token).map_err(|_| invalid())?;
        let kid = header.kid.ok_or_else(invalid)?;
        let key = {
            let keys = self.keys.read().map_err(|_| AppError::internal("key cache poisoned"))?;
            keys.get(&kid).cloned()
        };
        let Some(key) = key else {
            self.refresh_keys();
            return Err(invalid());
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        // Access tokens carry `client_id`, not `aud`; it is checked below.
        validation.validate_aud = false;
        let claims = decode::<AccessClaims>(token, &key, &validation).map_err(|_| invalid())?.claims;
        if claims.token_use != "access" || claims.client_id != self.client_id {
            return Err(invalid());
        }
        let group = |prefix: &str| claims.groups.iter().find_map(|g| g.strip_prefix(prefix).map(str::to_owned));
        let tenant_id = claims.tenant_id.clone().or_else(|| group(TENANT_GROUP)).ok_or_else(invalid)?;
        let role = claims.role.clone().or_else(|| group(ROLE_GROUP)).ok_or_else(invalid)?;
        let role = role.parse::<Role>().map_err(|_| invalid())?;
        Ok(Caller { user_id: claims.sub, tenant_id, role })
    }
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, reqwest::Error> {
    http.get(url).send().await?.error_for_status()?.json().await
}

/// The RSA keys of a JWKS by key id; other keys are skipped.
async fn fetch_keys(http: &reqwest::Client, url: &str) -> Result<HashMap<String, DecodingKey>, String> {
    let jwks = fetch_jwks(http, url).await.map_err(|e| format!("{url}: {e}"))?;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).map_err(|e| format!("{url}: {e}"))?;
    Ok(set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))).collect())
}

fn tokens(result: &AuthenticationResultType, kept_refresh: Option<&str>) -> Result<Tokens, IdentityError> {
    let missing = |what: &str| unavailable(format!("Cognito returned no {what}"));
    Ok(Tokens {
        access_token: result.access_token().ok_or_else(|| missing("access token"))?.to_owned(),
        id_token: result.id_token().ok_or_else(|| missing("id token"))?.to_owned(),
        // A refresh keeps the refresh token unless Cognito rotated it.
        refresh_token: result.refresh_token().or(kept_refresh).ok_or_else(|| missing("refresh token"))?.to_owned(),
        expires_in: u64::try_from(result.expires_in()).unwrap_or(0),
        token_type: "Bearer".into(),
    })
}

fn account(username: &str, attributes: &[AttributeType]) -> Result<Account, IdentityError> {
    let get = |name: &str| attributes.iter().find(|a| a.name() == name).and_then(AttributeType::value);
    let role = get(ROLE_ATTRIBUTE)
        .ok_or_else(|| unavailable(format!("user {username} has no {ROLE_ATTRIBUTE}")))?
        .parse::<Role>()
        .map_err(|_| unavailable(format!("user {username} has an unknown role")))?;
    Ok(Account {
        user_id: get("sub").unwrap_or(username).to_owned(),
        email: get("email").unwrap_or_default().to_owned(),
        email_verified: get("email_verified") == Some("true"),
        tenant_id: get(TENANT_ATTRIBUTE).unwrap_or_default().to_owned(),
        role,
    })
}

fn attribute(name: &str, value: &str) -> Result<AttributeType, IdentityError> {
    AttributeType::builder().name(name).value(value).build().map_err(unavailable)
}

fn checked_email(email: &str) -> Result<String, IdentityError> {
    parley_domain::tenant::normalize_email(email)
        .map_err(|_| IdentityError::Invalid { field: "email", message: "must be an email address".into() })
}

/// The same policy as the local adapter, so both refuse the same passwords with the same words.
fn check_password(password: &str, email: &str) -> Result<(), IdentityError> {
    policy::check(password, email).map_err(|p| IdentityError::WeakPassword(p.to_string()))
}

fn unavailable(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(e.to_string())
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Maps a Cognito error by its code; what has no meaning here is `Unavailable`.
fn map_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> IdentityError {
    match code(&e) {
        Some("UsernameExistsException") | Some("AliasExistsException") => IdentityError::EmailTaken,
        Some("UserNotConfirmedException") => IdentityError::EmailNotVerified,
        Some("CodeMismatchException") | Some("ExpiredCodeException") => IdentityError::InvalidCode,
        Some("InvalidPasswordException") => IdentityError::WeakPassword(
            e.as_service_error().and_then(ProvideErrorMetadata::message).unwrap_or("too weak").to_owned(),
        ),
        Some("UserNotFoundException") => IdentityError::UnknownUser,
        Some("NotAuthorizedException") => IdentityError::InvalidCredentials,
        Some("TooManyRequestsException")
        | Some("LimitExceededException")
        | Some("TooManyFailedAttemptsException")
        | Some("CodeDeliveryFailureException") => IdentityError::Throttled { retry_after_secs: 60 },
        Some("InvalidParameterException") => IdentityError::Invalid {
            field: "request",
            message: e.as_service_error().and_then(ProvideErrorMetadata::message).unwrap_or("invalid").to_owned(),
        },
        _ => unavailable(aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)),
    }
}

/// Sign-in: unknown users and wrong passwords look the same.
fn login_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> IdentityError {
    match map_err(e) {
        IdentityError::UnknownUser => IdentityError::InvalidCredentials,
        other => other,
    }
}

/// Token trades: a refused token is an invalid token.
fn token_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> IdentityError {
    match map_err(e) {
        IdentityError::InvalidCredentials | IdentityError::UnknownUser | IdentityError::Invalid { .. } => {
            IdentityError::InvalidToken
        }
        other => other,
    }
}

/// Code checks: a refused code (or an unknown address) is an invalid code.
fn code_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> IdentityError {
    match map_err(e) {
        IdentityError::InvalidCredentials | IdentityError::UnknownUser => IdentityError::InvalidCode,
        other => other,
    }
}
