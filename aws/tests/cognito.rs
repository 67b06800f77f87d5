//! The Cognito identity adapter against the emulator: the identity port's
//! conformance suite on a user pool made like `template.yaml`'s, with the
//! pool's access tokens checked by `CognitoTokens`.
//!
//! Cognito mails its own codes, so the suite reads them from what the
//! emulator offers instead ([`EmulatorCodes`]), and runs with the limits of
//! the emulator and of Cognito named in [`LIMITS`].

mod emulator;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::UserStatusType;
use aws_sdk_cognitoidentityprovider::Client;
use parley_app::auth::TokenVerifier;
use parley_app::identity::conformance::{run_identity_suite, CodeSource, Harness, Limits};
use parley_app::identity::IdentityProvider;
use parley_aws::cognito::{issuer, CognitoIdentity, CognitoTokens};
use parley_aws::testing::create_user_pool;

/// Sign-up codes are not checked by the emulator, which also lacks
/// `RevokeToken` and `VerifyUserAttribute`; Cognito itself keeps refresh
/// tokens (no rotation) on this pool.
const LIMITS: Limits = Limits {
    sign_up_codes_unchecked: true,
    refresh_not_rotated: true,
    no_session_revocation: true,
    email_change_unverified: true,
};

/// The code a user would have found in Cognito's mail, by the state of the account:
/// an unconfirmed sign-up takes any code in the emulator; an invitee gets a new
/// temporary password (Cognito mails one as the invitation); a confirmed user
/// asks again for a reset code, which the emulator returns in a header and checks.
struct EmulatorCodes {
    client: Client,
    pool_id: String,
    client_id: String,
    endpoint: String,
    http: reqwest::Client,
}

#[async_trait]
impl CodeSource for EmulatorCodes {
    async fn latest_code(&self, email: &str) -> Option<String> {
        let user = self.client.admin_get_user().user_pool_id(&self.pool_id).username(email).send().await.ok()?;
        match user.user_status()? {
            UserStatusType::Unconfirmed => Some("482913".into()),
            UserStatusType::ForceChangePassword => {
                let temporary = format!("Invite-{}-7", &uuid::Uuid::new_v4().simple().to_string()[..8]);
                self.client
                    .admin_set_user_password()
                    .user_pool_id(&self.pool_id)
                    .username(email)
                    .password(&temporary)
                    .permanent(false)
                    .send()
                    .await
                    .ok()?;
                Some(temporary)
            }
            UserStatusType::Confirmed => {
                let response = self
                    .http
                    .post(&self.endpoint)
                    .header("X-Amz-Target", "AWSCognitoIdentityProviderService.ForgotPassword")
                    .header("Content-Type", "application/x-amz-json-1.1")
                    .header(
                        "Authorization",
                        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/cognito-idp/aws4_request, \
                         SignedHeaders=host, Signature=0",
                    )
                    .body(serde_json::json!({"ClientId": self.client_id, "Username": email}).to_string())
                    .send()
                    .await
                    .ok()?;
                let code = response.headers().get("x-moto-forgot-password-confirmation-code")?;
                code.to_str().ok().map(str::to_owned)
            }
            _ => None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cognito_identity_passes_the_identity_suite() {
    let sdk = emulator::sdk_config().await;
    let endpoint = emulator::endpoint();
    let client = Client::new(&sdk);
    let (pool_id, client_id) = create_user_pool(&client).await;
    let region = sdk.region().expect("a region").to_string();
    let jwks_url = format!("{}/{pool_id}/.well-known/jwks.json", endpoint.trim_end_matches('/'));
    let verifier =
        CognitoTokens::load(issuer(&region, &pool_id), &client_id, &jwks_url).await.expect("the pool's keys");
    let identity = CognitoIdentity::new(client.clone(), &pool_id, &client_id, &jwks_url);
    let codes = EmulatorCodes { client, pool_id, client_id, endpoint, http: reqwest::Client::new() };
    run_identity_suite(Harness {
        identity: Arc::new(identity) as Arc<dyn IdentityProvider>,
        mail: Arc::new(codes),
        verifier: Arc::new(verifier) as Arc<dyn TokenVerifier>,
        limits: LIMITS,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_client_or_issuer_are_refused() {
    let sdk = emulator::sdk_config().await;
    let endpoint = emulator::endpoint();
    let client = Client::new(&sdk);
    let (pool_id, client_id) = create_user_pool(&client).await;
    let region = sdk.region().expect("a region").to_string();
    let jwks_url = format!("{}/{pool_id}/.well-known/jwks.json", endpoint.trim_end_matches('/'));
    let identity = CognitoIdentity::new(client.clone(), &pool_id, &client_id, &jwks_url);
    let email = format!("{}@cognito.test", emulator::unique("owner"));
    let password = "Orchard-Lantern-27";
    let account = identity
        .sign_up(parley_app::identity::NewUser {
            email: email.clone(),
            password: password.into(),
            tenant_id: "t1".into(),
            role: parley_app::auth::Role::Admin,
        })
        .await
        .expect("sign up");
    identity.verify_email(&email, "482913").await.expect("verify");
    let tokens = identity.login(&email, password).await.expect("login");

    let right = CognitoTokens::load(issuer(&region, &pool_id), &client_id, &jwks_url).await.unwrap();
    let caller = right.verify(&tokens.access_token).expect("verifies");
    assert_eq!((caller.user_id, caller.tenant_id, caller.role), (account.user_id, "t1".into(), account.role));
    let other_client = CognitoTokens::load(issuer(&region, &pool_id), "another-client", &jwks_url).await.unwrap();
    assert!(other_client.verify(&tokens.access_token).is_err());
    let other_pool = CognitoTokens::load(issuer(&region, "elsewhere"), &client_id, &jwks_url).await.unwrap();
    assert!(other_pool.verify(&tokens.access_token).is_err());
}
