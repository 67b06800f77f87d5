//! Business numbers through the local runtime: quality and account updates
//! from webhooks, throughput and alternate-number settings, resending from
//! the alternate number while the primary is blocked, and per-number metrics.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

/// A second number of the same business account.
const PNID2: &str = "106540352242923";
const DISPLAY2: &str = "15550783882";

async fn setup() -> (Server, String, std::sync::Arc<FakeGraph>) {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = json!({
        "phone_number_id": PNID2, "display_phone_number": DISPLAY2, "waba_id": WABA,
        "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": "verify-me-too",
    });
    let (status, body) = server.post(&token, "/v1/numbers", &second).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.settled().await;
    (server, token, fake)
}

async fn patch(server: &Server, token: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    let url = format!("{}/v1/numbers/{id}", server.base);
    read(server.http.patch(url).bearer_auth(token).json(body).send().await.unwrap()).await
}

async fn number(server: &Server, token: &str, id: &str) -> Value {
    let (status, list) = server.get(token, "/v1/numbers").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().iter().find(|n| n["phone_number_id"] == id).cloned().unwrap_or(Value::Null)
}

fn number_event_types(events: &[parley_events::RecordedEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_type.clone()).collect()
}

#[tokio::test]
async fn quality_and_account_updates_are_recorded_on_the_number_and_shown() {
    let (server, token, _fake) = setup().await;
    let fresh_number = number(&server, &token, PNID).await;
    assert_eq!(
        (fresh_number["quality_rating"].as_str(), fresh_number["account_status"].as_str()),
        (Some("UNKNOWN"), Some("CONNECTED"))
    );

    for _ in 0..2 {
        let (status, body) = server.webhook(&fixture("phone_number_quality_update.json"), APP_SECRET).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.settled().await;
    let flagged = number(&server, &token, PNID).await;
    assert_eq!(flagged["quality_rating"], "RED", "{flagged}");
    assert_eq!(flagged["messaging_limit"], "TIER_1K");
    assert_eq!(flagged["account_status"], "FLAGGED");
    let other = number(&server, &token, PNID2).await;
    assert_eq!(
        (other["quality_rating"].as_str(), other["account_status"].as_str()),
        (Some("UNKNOWN"), Some("CONNECTED")),
        "the update names one number"
    );
    let stream = parley_domain::ids::number_stream(PNID);
    assert_eq!(
        number_event_types(&server.app.store.read_stream(&stream, 0).await.unwrap()),
        ["NumberRegistered", "NumberQualityUpdated", "NumberAccountStatusChanged"],
        "a redelivered update records nothing"
    );

    server.webhook(&fixture("account_update_restriction.json"), APP_SECRET).await;
    server.settled().await;
    assert_eq!(number(&server, &token, PNID).await["account_status"], "RESTRICTED");
    assert_eq!(number(&server, &token, PNID2).await["account_status"], "CONNECTED");
    let events = server.app.store.read_stream(&stream, 0).await.unwrap();
    let restricted = events.last().unwrap();
    assert_eq!(restricted.data["status"], "RESTRICTED");
    assert_eq!(restricted.data["reason"], "account_update:ACCOUNT_RESTRICTION");
    assert_eq!(restricted.data["detail"], "RESTRICTED_BIZ_INITIATED_MESSAGING");

    // A ban of the business account concerns every one of its numbers.
    server.webhook(&fixture("account_update_disabled.json"), APP_SECRET).await;
    server.settled().await;
    for id in [PNID, PNID2] {
        assert_eq!(number(&server, &token, id).await["account_status"], "DISABLED", "{id}");
    }
    // A bad signature records nothing.
    let (status, _) = server.webhook(&fixture("account_update_restriction.json"), "wrong-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another tenant neither sees these numbers nor their metrics.
    let globex = server.token("globex", Role::Owner);
    let (_, list) = server.get(&globex, "/v1/numbers").await;
    assert_eq!(list, json!([]));
    let (status, _) = server.get(&globex, &format!("/v1/numbers/{PNID}/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn throughput_and_alternate_are_bounded_and_tenant_scoped() {
    let (server, token, _fake) = setup().await;
    let other_tenant = server.token("globex", Role::Owner);
    let foreign = json!({
        "phone_number_id": "999000111", "display_phone_number": "15550000000", "waba_id": "42",
        "access_token": "t", "app_secret": "s", "verify_token": "v",
    });
    assert_eq!(server.post(&other_tenant, "/v1/numbers", &foreign).await.0, StatusCode::CREATED);

    for bad in [
        json!({"throughput_per_second": 0}),
        json!({"throughput_per_second": 1001}),
        json!({"alternate_number_id": PNID}),
        json!({"alternate_number_id": "999000111"}),
        json!({"alternate_number_id": "123"}),
        json!({"throughput_per_second": 5, "extra": 1}),
    ] {
        let (status, body) = patch(&server, &token, PNID, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let viewer = server.token("acme", Role::Viewer);
    assert_eq!(patch(&server, &viewer, PNID, &json!({"throughput_per_second": 5})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        patch(&server, &other_tenant, PNID, &json!({"throughput_per_second": 5})).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, body) =
        patch(&server, &token, PNID, &json!({"throughput_per_second": 1000, "alternate_number_id": PNID2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"phone_number_id": PNID, "throughput_per_second": 1000, "alternate_number_id": PNID2}));
    server.settled().await;
    let shown = number(&server, &token, PNID).await;
    assert_eq!(
        (shown["throughput_per_second"].as_u64(), shown["alternate_number_id"].as_str()),
        (Some(1000), Some(PNID2))
    );

    // Leaving a field out keeps it; null removes the alternate.
    let (_, body) = patch(&server, &token, PNID, &json!({"throughput_per_second": 1})).await;
    assert_eq!(body["alternate_number_id"], PNID2);
    let (_, body) = patch(&server, &token, PNID, &json!({"alternate_number_id": null})).await;
    assert_eq!(body, json!({"phone_number_id": PNID, "throughput_per_second": 1, "alternate_number_id": null}));
    server.settled().await;
    assert_eq!(number(&server, &token, PNID).await["alternate_number_id"], Value::Null);
    server.stop().await;
}

/// The customer writes, so that free-form sends are allowed.
async fn customer_writes(server: &Server) {
    let (status, _) = server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    server.settled().await;
}

async fn send_text(server: &Server, token: &str, body: &str) -> String {
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": body}});
    let (status, queued) = server.post(token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    queued["id"].as_str().unwrap().to_owned()
}

/// Waits until the message has left the queue (accepted or failed).
async fn settled_message(server: &Server, token: &str, id: &str) -> Value {
    server
        .eventually(Duration::from_secs(15), || async {
            server.settled().await;
            let (_, m) = server.get(token, &format!("/v1/messages/{id}")).await;
            (m["wamid"].is_string() || m["status"] == "failed").then_some(m)
        })
        .await
}

fn send_paths(fake: &FakeGraph) -> Vec<String> {
    fake.requests.lock().unwrap().iter().map(|(path, _, _)| path.clone()).collect()
}

#[tokio::test]
async fn a_blocked_number_sends_from_its_alternate() {
    let (server, token, fake) = setup().await;
    customer_writes(&server).await;
    assert_eq!(patch(&server, &token, PNID, &json!({"alternate_number_id": PNID2})).await.0, StatusCode::OK);

    // Unblocked: the number sends itself.
    let own = send_text(&server, &token, "from the primary").await;
    let m = settled_message(&server, &token, &own).await;
    assert_eq!((m["number_id"].as_str(), m["sent_from"].as_str()), (Some(PNID), Some(PNID)));

    // WhatsApp restricts it: queued messages go out from the alternate.
    server.webhook(&fixture("account_update_restriction.json"), APP_SECRET).await;
    server.settled().await;
    let rerouted = send_text(&server, &token, "from the alternate").await;
    let m = settled_message(&server, &token, &rerouted).await;
    assert_eq!(m["status"], "queued", "accepted, waiting for statuses: {m}");
    assert_eq!((m["number_id"].as_str(), m["sent_from"].as_str()), (Some(PNID), Some(PNID2)), "{m}");
    assert_eq!(send_paths(&fake), [format!("/v26.0/{PNID}/messages"), format!("/v26.0/{PNID2}/messages")]);
    server.stop().await;
}

fn blocked_answer() -> Value {
    json!({"error": {"message": "(#131031) Business Account locked", "type": "OAuthException", "code": 131031,
                     "error_data": {"messaging_product": "whatsapp", "details": "Account has been locked"},
                     "fbtrace_id": "AbCdEfGh125"}})
}

#[tokio::test]
async fn a_send_refused_because_the_number_is_blocked_is_resent_from_the_alternate() {
    let (server, token, fake) = setup().await;
    customer_writes(&server).await;
    patch(&server, &token, PNID, &json!({"alternate_number_id": PNID2})).await;
    fake.answer(400, blocked_answer());
    let id = send_text(&server, &token, "try the primary first").await;
    let m = settled_message(&server, &token, &id).await;
    assert_ne!(m["status"], "failed", "{m}");
    assert_eq!(m["sent_from"], PNID2);
    assert_eq!(m["attempts"], 2);
    assert_eq!(send_paths(&fake), [format!("/v26.0/{PNID}/messages"), format!("/v26.0/{PNID2}/messages")]);
    server.settled().await;
    let primary = number(&server, &token, PNID).await;
    assert_eq!(primary["account_status"], "RESTRICTED", "the refusal is recorded on the number: {primary}");
    server.stop().await;
}

#[tokio::test]
async fn without_an_alternate_a_blocked_send_fails_with_its_kind() {
    let (server, token, fake) = setup().await;
    customer_writes(&server).await;
    fake.answer(400, blocked_answer());
    let id = send_text(&server, &token, "nowhere to go").await;
    let m = settled_message(&server, &token, &id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["kind"], "account_blocked");
    assert_eq!(m["sent_from"], Value::Null);
    assert_eq!(send_paths(&fake).len(), 1);
    server.stop().await;
}

fn delivered_status(wamid: &str, at: DateTime<Utc>) -> Value {
    let mut body = fixture("status_delivered.json");
    let status = &mut body["entry"][0]["changes"][0]["value"]["statuses"][0];
    status["id"] = json!(wamid);
    status["timestamp"] = json!(at.timestamp().to_string());
    body
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a time: {v}"))
}

fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    sorted[(p * sorted.len()).div_ceil(100).max(1) - 1]
}

#[tokio::test]
async fn metrics_count_sends_failures_and_delivery_latency_per_number() {
    let (server, token, fake) = setup().await;
    customer_writes(&server).await;
    let from = Utc::now() - chrono::Duration::minutes(1);

    // Two sends WhatsApp refuses for good, one on each side of the table.
    fake.answer(400, fixture("send_error_132000.json"));
    let refused = send_text(&server, &token, "refused").await;
    settled_message(&server, &token, &refused).await;
    let mut undeliverable = blocked_answer();
    undeliverable["error"]["code"] = json!(131026);
    fake.answer(400, undeliverable);
    let refused_too = send_text(&server, &token, "refused too").await;
    settled_message(&server, &token, &refused_too).await;

    // Six accepted sends; five are delivered 10, 20, ... 50 seconds later.
    let mut accepted = Vec::new();
    for i in 0..6 {
        let id = send_text(&server, &token, &format!("message {i}")).await;
        accepted.push(settled_message(&server, &token, &id).await);
    }
    for (i, m) in accepted.iter().take(5).enumerate() {
        let at = time(&m["timestamps"]["accepted"]) + chrono::Duration::seconds(10 * (i as i64 + 1));
        let (status, _) = server.webhook(&delivered_status(m["wamid"].as_str().unwrap(), at), APP_SECRET).await;
        assert_eq!(status, StatusCode::OK);
    }
    server.settled().await;
    let to = Utc::now() + chrono::Duration::seconds(1);

    // The expected numbers, from the messages as the API shows them.
    let mut latencies = Vec::new();
    for m in &accepted {
        let (_, m) = server.get(&token, &format!("/v1/messages/{}", m["id"].as_str().unwrap())).await;
        if m["timestamps"]["delivered"].is_string() {
            let ms = (time(&m["timestamps"]["delivered"]) - time(&m["timestamps"]["accepted"])).num_milliseconds();
            latencies.push(ms);
        }
    }
    latencies.sort_unstable();
    assert_eq!(latencies.len(), 5);
    for (i, ms) in latencies.iter().enumerate() {
        // Webhook times have whole seconds: within a second of the intended latency.
        assert!((ms - 10_000 * (i as i64 + 1)).abs() <= 1_000, "{latencies:?}");
    }

    let query =
        format!("/v1/numbers/{PNID}/metrics?from={}&to={}", from.to_rfc3339(), to.to_rfc3339()).replace('+', "%2B");
    let (status, metrics) = server.get(&token, &query).await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    assert_eq!(metrics["messages"], 8);
    assert_eq!(metrics["sends"], 6);
    assert_eq!(metrics["delivered"], 5);
    assert_eq!(metrics["failed"], 2);
    assert_eq!(metrics["failures_by_kind"], json!({"template_error": 1, "undeliverable": 1}));
    assert_eq!(metrics["quality_rating"], "UNKNOWN");
    let latency = &metrics["delivery_latency_ms"];
    assert_eq!(latency["samples"], 5);
    for (p, key) in [(50, "p50"), (90, "p90"), (99, "p99")] {
        assert_eq!(latency[key].as_i64(), Some(nearest_rank(&latencies, p)), "{key}: {metrics}");
    }

    // The other number sent nothing; a range before the sends holds nothing.
    let (_, empty) = server.get(&token, &format!("/v1/numbers/{PNID2}/metrics")).await;
    assert_eq!((empty["messages"].as_u64(), empty["delivery_latency_ms"]["p50"].clone()), (Some(0), Value::Null));
    let before = format!("/v1/numbers/{PNID}/metrics?to={}", from.to_rfc3339()).replace('+', "%2B");
    assert_eq!(server.get(&token, &before).await.1["messages"], 0);
    // Quality updates show in the metrics too.
    server.webhook(&fixture("phone_number_quality_update.json"), APP_SECRET).await;
    server.settled().await;
    assert_eq!(server.get(&token, &query).await.1["quality_rating"], "RED");

    let (status, _) = server
        .get(
            &token,
            &format!("/v1/numbers/{PNID}/metrics?from={}&to={}", to.to_rfc3339(), from.to_rfc3339())
                .replace('+', "%2B"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server.get(&token, "/v1/numbers/123/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
