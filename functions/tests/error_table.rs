//! End-to-end: every row of the Cloud API error table drives the sender as
//! the table says (retry with backoff, retry after seconds, retry once with
//! fresh credentials, or fail at once with its kind), against the strict
//! Graph API fake.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use parley_whatsapp::fake::{FakeAnswer, StrictGraphFake};
use serde_json::{json, Value};

/// (code, kind recorded, whether the attempt is retried)
const TABLE: &[(i64, &str, bool)] = &[
    (130429, "throughput_limit", true),
    (131056, "pair_rate_limit", true),
    (131000, "transient", true),
    (131016, "transient", true),
    (1, "transient", true),
    (2, "transient", true),
    (131057, "maintenance", true),
    (80007, "call_rate_limit", true),
    (4, "call_rate_limit", true),
    (131048, "spam_rate_limit", false),
    (131049, "marketing_cap", false),
    (131047, "window_closed", false),
    (131026, "undeliverable", false),
    (131050, "marketing_opt_out", false),
    (131051, "unsupported_type", false),
    (131053, "media_error", false),
    (132000, "template_error", false),
    (132001, "template_error", false),
    (132012, "template_error", false),
    (132015, "template_error", false),
    (132016, "template_error", false),
    (100, "invalid_parameter", false),
    (190, "auth_error", true),
    (0, "auth_error", true),
    (10, "auth_error", true),
    (200, "auth_error", true),
    (299, "auth_error", true),
];

fn inbound_from(wa_id: &str) -> Value {
    let mut body = fresh(fixture("inbound_text.json"));
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(wa_id);
    value["messages"][0]["from"] = json!(wa_id);
    value["messages"][0]["id"] = json!(format!("wamid.IN{wa_id}"));
    body
}

#[tokio::test]
async fn every_error_row_is_retried_or_failed_as_the_table_says() {
    let fake = StrictGraphFake::start("v26.0", &[(PNID, ACCESS_TOKEN)]).await.unwrap();
    let base = fake.base_url().to_owned();
    let server = Server::start_with(WhatsApp::Simulator(Duration::from_millis(50)), |c| {
        c.whatsapp_api_base = Some(base);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);

    let mut sent = Vec::new();
    for (i, (code, kind, retried)) in TABLE.iter().enumerate() {
        let customer = format!("1650600{i:04}");
        // A retried error is answered once; the retry (after its delay) would succeed.
        fake.script(&customer, [FakeAnswer::Error(*code)]);
        let (status, _) = server.webhook(&inbound_from(&customer), APP_SECRET).await;
        assert_eq!(status, StatusCode::OK);
        let body = json!({"from": PNID, "to": customer, "type": "text", "text": {"body": format!("code {code}")}});
        let (status, queued) = server.post(&token, "/v1/messages", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        sent.push((queued["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap(), *code, *kind, *retried));
    }

    for (id, code, kind, retried) in sent {
        let stream = parley_domain::ids::message_stream("acme", id);
        let outcome = server
            .eventually(Duration::from_secs(15), || {
                let app = server.app.clone();
                let stream = stream.clone();
                async move {
                    let events = app.store.read_stream(&stream, 0).await.unwrap();
                    events
                        .into_iter()
                        .find(|e| matches!(e.event_type.as_str(), "MessageDispatchFailed" | "MessageFailed"))
                }
            })
            .await;
        let expected = if retried { "MessageDispatchFailed" } else { "MessageFailed" };
        assert_eq!(outcome.event_type, expected, "code {code}");
        assert_eq!(outcome.data["failure"]["code"], code, "code {code}");
        assert_eq!(outcome.data["failure"]["kind"], kind, "code {code}");
        if retried {
            let retry_at: chrono::DateTime<chrono::Utc> = outcome.data["retry_at"].as_str().unwrap().parse().unwrap();
            let at: chrono::DateTime<chrono::Utc> = outcome.data["at"].as_str().unwrap().parse().unwrap();
            let delay = retry_at - at;
            match code {
                131056 => assert!(delay >= chrono::Duration::seconds(6), "pair limit waits its seconds"),
                131057 => assert!(delay >= chrono::Duration::seconds(60), "maintenance waits a minute"),
                _ => assert!(delay > chrono::Duration::zero() && delay <= chrono::Duration::minutes(5)),
            }
        }
    }
    assert!(fake.refused().is_empty(), "every request had the documented shape: {:?}", fake.refused());
    for r in fake.requests() {
        assert_eq!(r.path, format!("/v26.0/{PNID}/messages"));
    }
    server.stop().await;
}
