//! Tenant isolation (SPEC 4.7), proven for every route: the test reads the
//! routes from the served OpenAPI document (which a unit test keeps complete),
//! calls each authenticated one as tenant B's owner with tenant A's ids, and
//! checks that B gets 404 or 403 where it names A's things, never sees A's
//! data anywhere, and that A's data is unchanged afterwards.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::identity::templates::code_in;
use parley_app::mail::{MailProbe, OutboxMailer};
use parley_domain::billing::Month;
use serde_json::{json, Value};

const PASSWORD: &str = "Harbour-Lights-42";

async fn anon(server: &Server, path: &str, body: &Value) -> (StatusCode, Value) {
    read(server.http.post(format!("{}{path}", server.base)).json(body).send().await.unwrap()).await
}

async fn code_for(server: &Server, email: &str) -> String {
    let outbox = OutboxMailer::open(&server.data_dir().join("outbox"), "probe@localhost").unwrap();
    let mails = outbox.delivered().await.unwrap();
    code_in(&mails.iter().rev().find(|m| m.to == email).unwrap().text).unwrap()
}

/// A verified owner of a new tenant: (access token, tenant id, user id).
async fn owner(server: &Server, email: &str, tenant: &str) -> (String, String, String) {
    let (_, created) =
        anon(server, "/v1/auth/signup", &json!({"email": email, "password": PASSWORD, "tenant_name": tenant})).await;
    let code = code_for(server, email).await;
    anon(server, "/v1/auth/verify-email", &json!({"email": email, "code": code})).await;
    let (status, tokens) = anon(server, "/v1/auth/login", &json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        created["tenant_id"].as_str().unwrap().to_owned(),
        created["user_id"].as_str().unwrap().to_owned(),
    )
}

/// Tenant A's things, by the path parameter that names them.
struct TenantA {
    token: String,
    ids: BTreeMap<&'static str, String>,
    /// Strings that must never appear in an answer to B.
    secrets: Vec<String>,
}

impl TenantA {
    /// The id of A's thing for `param` in `path`; a new route with a new
    /// parameter fails here until the test learns an id for it.
    fn id_for(&self, path: &str, param: &str) -> String {
        let key = match (param, path) {
            ("id", p) if p.starts_with("/v1/messages") => "message",
            ("id", p) if p.starts_with("/v1/conversations") => "conversation",
            ("id", p) if p.starts_with("/v1/jobs") => "job",
            ("id", p) if p.starts_with("/v1/billing/invoices") => "invoice",
            ("name", p) if p.starts_with("/v1/templates") => "template",
            ("wa_id", p) if p.starts_with("/v1/contacts") => "contact",
            ("id", p) if p.starts_with("/v1/numbers") => "number",
            ("user_id", _) => "member",
            (param, path) => panic!("{path}: teach the isolation test an id of tenant A for `{param}`"),
        };
        self.ids[key].clone()
    }

    /// A body for B's write that aims at A's things where the route takes any.
    fn body_for(&self, method: &str, path: &str) -> Value {
        match (method, path) {
            ("post", "/v1/messages") => {
                json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "from B"}})
            }
            ("post", "/v1/numbers") => json!({
                "phone_number_id": PNID, "display_phone_number": DISPLAY, "waba_id": WABA,
                "access_token": "b-token", "app_secret": "b-secret", "verify_token": "b-verify",
            }),
            ("post", "/v1/members") => json!({"email": self.ids["member_email"], "role": "viewer"}),
            ("patch", "/v1/members/{user_id}") => json!({"role": "viewer"}),
            ("put", "/v1/messages/{id}/tags") => json!({"tags": ["from-b"]}),
            ("post", "/v1/conversations/{id}/assign") => json!({"assignee": self.ids["member"]}),
            ("patch", "/v1/numbers/{id}") => json!({"throughput_per_second": 1}),
            ("post", "/v1/auth/change-email") => json!({"new_email": self.ids["owner_email"]}),
            ("post", "/v1/auth/change-password") => {
                json!({"old_password": "Not-The-Password-1", "new_password": "Other-Password-99"})
            }
            _ => json!({}),
        }
    }
}

async fn setup_a(server: &Server) -> TenantA {
    let (token, tenant_id, owner_id) = owner(server, "owner@a.test", "Tenant A").await;
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "for A only"}});
    let (status, queued) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let (status, _) = server.post(&token, "/v1/members", &json!({"email": "agent@a.test", "role": "agent"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = code_for(server, "agent@a.test").await;
    let (_, joined) =
        anon(server, "/v1/members/accept", &json!({"email": "agent@a.test", "code": code, "password": PASSWORD})).await;
    server.create_template(&token, "order_update", "UTILITY", "Your order has shipped.").await;
    let (status, export) = server.post(&token, "/v1/messages/export", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{export}");
    let (status, plan) =
        server.post(&token, "/v1/billing/plan", &json!({"plan": "starter", "email": "billing@a.test"})).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let month = Month::of(server.app.clock.now());
    assert!(server.ops.issue_invoice(&tenant_id, month).await.unwrap(), "the starter fee is invoiced");
    server.settled().await;
    let (_, invoices) = server.get(&token, "/v1/billing/invoices").await;
    let invoice = invoices["items"][0]["id"].as_str().expect("A's invoice").to_owned();
    let (_, conversations) = server.get(&token, "/v1/conversations").await;
    let conversation = conversations["items"][0]["id"].as_str().unwrap().to_owned();
    let mut ids = BTreeMap::new();
    ids.insert("message", queued["id"].as_str().unwrap().to_owned());
    ids.insert("conversation", conversation);
    ids.insert("job", export["job_id"].as_str().unwrap().to_owned());
    ids.insert("invoice", invoice);
    ids.insert("template", "order_update".to_owned());
    ids.insert("contact", CUSTOMER.to_owned());
    ids.insert("member", joined["user_id"].as_str().unwrap().to_owned());
    ids.insert("member_email", "agent@a.test".to_owned());
    ids.insert("owner_email", "owner@a.test".to_owned());
    let mut secrets: Vec<String> = ids.values().cloned().collect();
    secrets.extend([tenant_id, owner_id, "for A only".into(), "Sheena".into(), "Tenant A".into()]);
    // B names A's number in its own requests: the number id is no secret, its data is.
    ids.insert("number", PNID.to_owned());
    TenantA { token, ids, secrets }
}

/// Everything A can read through the API: every authenticated GET route
/// with A's ids.
async fn snapshot(server: &Server, a: &TenantA, routes: &[(String, String, Value)]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (_, path, _) in routes.iter().filter(|(m, p, _)| m == "get" && p != "/v1/audit") {
        let url = fill(a, path);
        let (status, body) = server.get(&a.token, &url).await;
        out.insert(url, json!({"status": status.as_u16(), "body": at_rest(body)}));
    }
    let (_, audit) = server.get(&a.token, "/v1/audit?limit=200").await;
    out.insert("/v1/audit".into(), audit);
    out
}

/// `body` without what is made anew on every read: signed download links
/// with their expiry, and the default range (`from`, `to`) ending now.
fn at_rest(body: Value) -> Value {
    match without_signed_links(body) {
        Value::Object(mut fields) => {
            fields.remove("from");
            fields.remove("to");
            // An export says when it was made.
            fields.remove("exported_at");
            Value::Object(fields)
        }
        other => other,
    }
}

fn without_signed_links(body: Value) -> Value {
    match body {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(k, v)| !k.ends_with("expires_at") && !v.as_str().is_some_and(|s| s.contains("expires=")))
                .map(|(k, v)| (k, without_signed_links(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_signed_links).collect()),
        other => other,
    }
}

fn fill(a: &TenantA, path: &str) -> String {
    let mut url = path.to_owned();
    while let Some(start) = url.find('{') {
        let end = url[start..].find('}').unwrap() + start;
        let id = a.id_for(path, &url[start + 1..end]);
        url.replace_range(start..=end, &id);
    }
    url
}

/// The authenticated operations of the served document: (method, path, operation).
async fn secured_routes(server: &Server) -> Vec<(String, String, Value)> {
    let r = server.http.get(format!("{}/openapi.json", server.base)).send().await.unwrap();
    let (_, doc) = read(r).await;
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn tenant_b_cannot_reach_tenant_a_through_any_route() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(20))).await;
    let a = setup_a(&server).await;
    let (b, _, _) = owner(&server, "owner@b.test", "Tenant B").await;
    let routes = secured_routes(&server).await;
    assert!(routes.len() >= 15, "the document lists the API: {routes:?}");
    // Wait for the simulator's statuses so that A's data is at rest before the snapshot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.settled().await;
    let before = snapshot(&server, &a, &routes).await;

    let mut walked = 0;
    for (method, path, op) in &routes {
        let mut url = fill(&a, path);
        // Queries that name A's things, too.
        let takes = |name: &str| {
            op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
        };
        if takes("conversation_id") {
            url.push_str(&format!("?conversation_id={}", a.ids["conversation"]));
        }
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = server.http.request(m, format!("{}{url}", server.base)).bearer_auth(&b);
        if matches!(method.as_str(), "post" | "put" | "patch") {
            req = req.json(&a.body_for(method, path));
        }
        let (status, body) = read(req.send().await.unwrap()).await;
        walked += 1;
        let names_a = path.contains('{') || takes("conversation_id");
        if names_a {
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                "{method} {url} as tenant B answered {status}: {body}"
            );
        }
        assert!(!status.is_server_error(), "{method} {url}: {status} {body}");
        let text = body.to_string();
        for secret in &a.secrets {
            assert!(!text.contains(secret.as_str()), "{method} {url} leaked `{secret}` of tenant A: {text}");
        }
    }
    assert_eq!(walked, routes.len());

    tokio::time::sleep(Duration::from_millis(100)).await;
    server.settled().await;
    let after = snapshot(&server, &a, &routes).await;
    for (url, was) in &before {
        assert_eq!(after.get(url), Some(was), "tenant A's {url} changed while B walked the API");
    }
    server.stop().await;
}
