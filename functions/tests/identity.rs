//! End-to-end identity (SPEC 5.1, 3.1): sign-up, verification by the code in
//! the local outbox, sessions, passwords, members and roles, the audit log,
//! throttling.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::identity::templates::code_in;
use parley_app::mail::{MailProbe, OutboxMailer};
use serde_json::{json, Value};

const PASSWORD: &str = "Harbour-Lights-42";

impl Server {
    async fn anon(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        read(r).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        read(req.send().await.unwrap()).await
    }

    /// The last code mailed to `email`, read from the outbox folder.
    async fn code_for(&self, email: &str) -> String {
        let outbox = OutboxMailer::open(&self.data_dir().join("outbox"), "probe@localhost").unwrap();
        let mails = outbox.delivered().await.unwrap();
        let mail = mails.iter().rev().find(|m| m.to == email).unwrap_or_else(|| panic!("no mail to {email}"));
        assert!(mail.html.as_deref().is_some_and(|h| h.contains("<html>")), "mails have an HTML part");
        code_in(&mail.text).expect("the mail holds a code")
    }

    /// Signs up, verifies with the mailed code, and signs in; returns the tokens and the new tenant.
    async fn owner(&self, email: &str, tenant_name: &str) -> (Value, String) {
        let body = json!({"email": email, "password": PASSWORD, "tenant_name": tenant_name});
        let (status, created) = self.anon("/v1/auth/signup", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let code = self.code_for(email).await;
        let (status, _) = self.anon("/v1/auth/verify-email", &json!({"email": email, "code": code})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        (self.login(email, PASSWORD).await, created["tenant_id"].as_str().unwrap().to_owned())
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        let (status, tokens) = self.anon("/v1/auth/login", &json!({"email": email, "password": password})).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    /// Invites `email` as `role` and accepts; returns the member's tokens and user id.
    async fn member(&self, owner: &str, email: &str, role: &str) -> (String, String) {
        let (status, p) = self.post(owner, "/v1/members", &json!({"email": email, "role": role})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{p}");
        let code = self.code_for(email).await;
        let (status, joined) =
            self.anon("/v1/members/accept", &json!({"email": email, "code": code, "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        assert_eq!(joined["role"], role);
        let tokens = self.login(email, PASSWORD).await;
        (access(&tokens), joined["user_id"].as_str().unwrap().to_owned())
    }
}

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn types(audit: &Value) -> Vec<String> {
    audit.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn signup_verify_login_and_use_the_api() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let weak = json!({"email": "ann@acme.test", "password": "password", "tenant_name": "Acme"});
    let (status, problem) = server.anon("/v1/auth/signup", &weak).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password")));
    assert_eq!(problem["field"], "password");
    let unknown = json!({"email": "ann@acme.test", "password": PASSWORD, "tenant_name": "Acme", "plan": "gold"});
    assert_eq!(server.anon("/v1/auth/signup", &unknown).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let body = json!({"email": "Ann@Acme.test", "password": PASSWORD, "tenant_name": "Acme"});
    let (status, created) = server.anon("/v1/auth/signup", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "ann@acme.test");
    let (status, problem) = server.anon("/v1/auth/signup", &body).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("email_taken")));
    let (status, problem) =
        server.anon("/v1/auth/login", &json!({"email": "ann@acme.test", "password": PASSWORD})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("email_not_verified")));

    let code = server.code_for("ann@acme.test").await;
    let (status, problem) =
        server.anon("/v1/auth/verify-email", &json!({"email": "ann@acme.test", "code": "12"})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")));
    let (status, _) = server.anon("/v1/auth/verify-email", &json!({"email": "ann@acme.test", "code": code})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tokens = server.login("ann@acme.test", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let token = access(&tokens);

    let (status, me) = server.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "owner");
    assert_eq!(me["tenant_name"], "Acme");
    assert_eq!(me["tenant_id"], created["tenant_id"]);
    assert_eq!(me["email_verified"], true);
    let (status, _) = server.get(tokens["id_token"].as_str().unwrap(), "/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an id token is not an access token");

    // The access token works on the API, and the JWKS verifies it.
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = server.http.get(format!("{}/.well-known/jwks.json", server.base)).send().await.unwrap();
    let (status, jwks) = read(r).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["alg"], "RS256");

    // Refresh rotates; the rotated token coming back revokes the family and is audited.
    let (status, second) = server.anon("/v1/auth/refresh", &json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (status, problem) = server.anon("/v1/auth/refresh", &json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("refresh_token_reused")));
    let (status, _) = server.anon("/v1/auth/refresh", &json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Logout revokes.
    let third = server.login("ann@acme.test", PASSWORD).await;
    let (status, _) = server.anon("/v1/auth/logout", &json!({"refresh_token": third["refresh_token"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.anon("/v1/auth/refresh", &json!({"refresh_token": third["refresh_token"]})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    server.settled().await;
    let audit = server
        .eventually(Duration::from_secs(5), || async {
            let (_, audit) = server.get(&token, "/v1/audit").await;
            (types(&audit).iter().filter(|t| *t == "SessionRevoked").count() == 2).then_some(audit)
        })
        .await;
    let kinds = types(&audit);
    for expected in ["TenantCreated", "MemberJoined", "UserSignedUp", "EmailVerified", "SessionRevoked"] {
        assert!(kinds.iter().any(|k| k == expected), "{expected} in {kinds:?}");
    }
    assert!(!audit.to_string().contains(PASSWORD), "no secret reaches the audit log");
    server.stop().await;
}

#[tokio::test]
async fn passwords_and_email_change_by_mailed_codes() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let (tokens, _) = server.owner("bo@acme.test", "Acme").await;

    // Forgot and reset.
    let (status, _) = server.anon("/v1/auth/forgot-password", &json!({"email": "nobody@acme.test"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "unknown addresses are not revealed");
    let (status, _) = server.anon("/v1/auth/forgot-password", &json!({"email": "bo@acme.test"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = server.code_for("bo@acme.test").await;
    let reset = json!({"email": "bo@acme.test", "code": code, "password": "Night-Train-2049"});
    assert_eq!(server.anon("/v1/auth/reset-password", &reset).await.0, StatusCode::NO_CONTENT);
    let (status, problem) = server.anon("/v1/auth/reset-password", &reset).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")), "single use");
    let (status, _) = server.anon("/v1/auth/refresh", &json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a reset ends every session");
    let token = access(&server.login("bo@acme.test", "Night-Train-2049").await);

    // Change password.
    let wrong = json!({"old_password": PASSWORD, "new_password": "Quiet-Meadow-77"});
    let (status, problem) = server.post(&token, "/v1/auth/change-password", &wrong).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    let weak = json!({"old_password": "Night-Train-2049", "new_password": "bo@acme.test-Aa1"});
    let (status, problem) = server.post(&token, "/v1/auth/change-password", &weak).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password")));
    let change = json!({"old_password": "Night-Train-2049", "new_password": "Quiet-Meadow-77"});
    assert_eq!(server.post(&token, "/v1/auth/change-password", &change).await.0, StatusCode::NO_CONTENT);
    let token = access(&server.login("bo@acme.test", "Quiet-Meadow-77").await);

    // Change email: a code to the new address, then the change.
    let (status, _) = server.post(&token, "/v1/auth/change-email", &json!({"new_email": "bo@new.test"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = server.code_for("bo@new.test").await;
    let (status, me) =
        server.post(&token, "/v1/auth/change-email", &json!({"new_email": "bo@new.test", "code": code})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "bo@new.test");
    server.login("bo@new.test", "Quiet-Meadow-77").await;
    let (status, _) =
        server.anon("/v1/auth/login", &json!({"email": "bo@acme.test", "password": "Quiet-Meadow-77"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn members_roles_and_the_audit_log() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let (tokens, _) = server.owner("owner@acme.test", "Acme").await;
    let owner = access(&tokens);
    assert_eq!(server.register_number(&owner, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let (admin, _) = server.member(&owner, "admin@acme.test", "admin").await;
    let (viewer, viewer_id) = server.member(&owner, "viewer@acme.test", "viewer").await;

    // A viewer reads but never sends, invites or reads the audit log.
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "hi"}});
    let (status, problem) = server.post(&viewer, "/v1/messages", &send).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(server.get(&viewer, "/v1/conversations").await.0, StatusCode::OK);
    assert_eq!(server.get(&viewer, "/v1/members").await.0, StatusCode::OK);
    let (status, _) = server.post(&viewer, "/v1/members", &json!({"email": "x@acme.test", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.get(&viewer, "/v1/audit").await.0, StatusCode::FORBIDDEN);
    // Admins cannot make owners.
    let (status, _) = server.post(&admin, "/v1/members", &json!({"email": "o2@acme.test", "role": "owner"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, members) = server.get(&owner, "/v1/members").await;
    let mut roles: Vec<_> = members.as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    roles.sort();
    assert_eq!(roles, ["admin", "owner", "viewer"]);

    // A role change shows in the member's next tokens.
    let path = format!("/v1/members/{viewer_id}");
    let (status, p) = server.send(reqwest::Method::PATCH, &admin, &path, Some(&json!({"role": "agent"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
    let agent = access(&server.login("viewer@acme.test", PASSWORD).await);
    assert_eq!(server.post(&agent, "/v1/messages", &send).await.0, StatusCode::ACCEPTED);
    let (_, me) = server.get(&owner, "/v1/me").await;
    let owner_id = me["user_id"].as_str().unwrap().to_owned();
    let (status, problem) = server
        .send(reqwest::Method::PATCH, &owner, &format!("/v1/members/{owner_id}"), Some(&json!({"role": "agent"})))
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("last_owner")));

    // Removal ends the account.
    assert_eq!(server.send(reqwest::Method::DELETE, &owner, &path, None).await.0, StatusCode::NO_CONTENT);
    let (status, _) = server.anon("/v1/auth/login", &json!({"email": "viewer@acme.test", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.send(reqwest::Method::DELETE, &owner, &path, None).await.0, StatusCode::NOT_FOUND);

    server.settled().await;
    let audit = server
        .eventually(Duration::from_secs(5), || async {
            let (_, audit) = server.get(&admin, "/v1/audit").await;
            types(&audit).contains(&"MemberRemoved".to_owned()).then_some(audit)
        })
        .await;
    let kinds = types(&audit);
    for expected in ["MemberInvited", "MemberJoined", "RoleChanged", "MemberRemoved", "PasswordChanged"] {
        assert!(kinds.iter().any(|k| k == expected), "{expected} in {kinds:?}");
    }
    let (_, page) = server.get(&owner, "/v1/audit?limit=2").await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    let before = page[1]["id"].as_u64().unwrap();
    let (_, next) = server.get(&owner, &format!("/v1/audit?limit=2&before={before}")).await;
    assert!(next[0]["id"].as_u64().unwrap() < before);
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_and_tenants_are_rate_limited() {
    let server = Server::start_with(WhatsApp::Simulator(Duration::from_millis(50)), |c| c.tenant_rate_limit = 2).await;
    let (tokens, _) = server.owner("cy@acme.test", "Acme").await;
    let wrong = json!({"email": "cy@acme.test", "password": "Wrong-Password-1"});
    for _ in 0..5 {
        assert_eq!(server.anon("/v1/auth/login", &wrong).await.0, StatusCode::UNAUTHORIZED);
    }
    let r = server
        .http
        .post(format!("{}/v1/auth/login", server.base))
        .json(&json!({"email": "cy@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let (status, problem) = read(r).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(retry_after > 0 && problem["retry_after"] == retry_after);

    // Rate 2/s, burst 4: the fifth request in a row waits.
    let token = access(&tokens);
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(server.get(&token, "/v1/me").await);
    }
    let limited = statuses.iter().find(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS).expect("limited");
    assert_eq!(limited.1["code"], "rate_limited");
    server.stop().await;
}
