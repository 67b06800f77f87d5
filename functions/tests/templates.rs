//! End-to-end: templates checked, submitted to the Graph API, approved by
//! webhook, synced, sent with every parameter and rendered; marketing
//! refused to contacts who stopped it.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

async fn setup() -> (Server, String, std::sync::Arc<FakeGraph>) {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.settled().await;
    (server, token, fake)
}

fn order_update() -> Value {
    json!({"name": "order_confirmation", "language": "en_US", "category": "UTILITY", "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, order {{2}} is confirmed."},
        {"type": "FOOTER", "text": "Acme"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://acme.test/t/{{1}}"}]}
    ]})
}

fn send_of(name: &str, components: Value) -> Value {
    json!({"from": PNID, "to": CUSTOMER, "type": "template",
           "template": {"name": name, "language": {"code": "en_US"}, "components": components}})
}

fn full_parameters() -> Value {
    json!([
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://acme.test/p.png"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "42"}]}
    ])
}

async fn delete(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let r = server.http.delete(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap();
    read(r).await
}

#[tokio::test]
async fn each_broken_rule_is_a_clear_problem_and_nothing_is_submitted() {
    let (server, token, fake) = setup().await;
    let mut bad = order_update();
    bad["components"][1]["text"] = json!("Hi {{1}} and {{3}}");
    let (status, problem) = server.post(&token, "/v1/templates", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "template_placeholders_not_sequential");
    assert_eq!(problem["violations"][0]["path"], "/components/1/text");

    bad["name"] = json!("Order Confirmation");
    bad["components"][2]["text"] = json!("x".repeat(61));
    let (_, problem) = server.post(&token, "/v1/templates", &bad).await;
    assert_eq!(problem["code"], "template_invalid");
    let rules: Vec<&str> =
        problem["violations"].as_array().unwrap().iter().map(|v| v["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["template_name_invalid", "template_placeholders_not_sequential", "template_footer_too_long"]);
    let agent = server.token("acme", Role::Agent);
    let (status, _) = server.post(&agent, "/v1/templates", &order_update()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(fake.template_requests.lock().unwrap().is_empty(), "nothing reached WhatsApp");
    server.stop().await;
}

#[tokio::test]
async fn a_template_is_submitted_approved_by_webhook_and_sent_rendered() {
    let (server, token, fake) = setup().await;
    *fake.template_status.lock().unwrap() = "PENDING".into();
    let (status, created) = server.post(&token, "/v1/templates", &order_update()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "PENDING");
    let (path, auth, body) = fake.template_requests.lock().unwrap()[0].clone();
    assert_eq!(path, format!("POST /v26.0/{WABA}/message_templates"));
    assert_eq!(auth.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(body, order_update(), "the submission is the template in the Cloud API's shape");
    let (status, _) = server.post(&token, "/v1/templates", &order_update()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Pending: sends are refused.
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let (status, refused) =
        server.post(&token, "/v1/messages", &send_of("order_confirmation", full_parameters())).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("template_not_approved")));

    // WhatsApp approves it (the webhook names only the business account).
    let (status, outcome) = server.webhook(&fixture("template_status_update.json"), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    server.settled().await;
    let (_, one) = server.get(&token, "/v1/templates/order_confirmation").await;
    assert_eq!(one["items"][0]["status"], "APPROVED");

    // Every parameter is needed: header media, body, URL button.
    for missing in [0usize, 1, 2] {
        let mut components = full_parameters();
        components.as_array_mut().unwrap().remove(missing);
        let (status, refused) = server.post(&token, "/v1/messages", &send_of("order_confirmation", components)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "without component {missing}");
        assert_eq!(refused["code"], "template_parameters");
    }
    let (status, queued) = server.post(&token, "/v1/messages", &send_of("order_confirmation", full_parameters())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().unwrap();
    let sent = server
        .eventually(Duration::from_secs(10), || async {
            let (_, m) = server.get(&token, &format!("/v1/messages/{id}")).await;
            m["wamid"].is_string().then_some(m)
        })
        .await;
    assert_eq!(sent["rendered_text"], "Hi Ana, order #42 is confirmed.\nAcme");
    let (_, conversations) = server.get(&token, "/v1/conversations").await;
    assert_eq!(conversations["items"][0]["last_message"]["text"], "Hi Ana, order #42 is confirmed.\nAcme");
    let request = fake.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(request.2["template"], send_of("order_confirmation", full_parameters())["template"]);

    // A rejection carries its reason.
    let mut rejected = fixture("template_status_rejected.json");
    rejected["entry"][0]["changes"][0]["value"]["message_template_name"] = json!("order_confirmation");
    rejected["entry"][0]["changes"][0]["value"]["event"] = json!("PAUSED");
    rejected["entry"][0]["changes"][0]["value"]["reason"] = json!("LOW_QUALITY");
    rejected["entry"][0]["changes"][0]["value"]["message_template_category"] = json!("UTILITY");
    server.webhook(&rejected, APP_SECRET).await;
    server.settled().await;
    let (_, one) = server.get(&token, "/v1/templates/order_confirmation").await;
    assert_eq!(
        (one["items"][0]["status"].as_str(), one["items"][0]["reason"].as_str()),
        (Some("PAUSED"), Some("LOW_QUALITY"))
    );
    let (status, _) = server.post(&token, "/v1/messages", &send_of("order_confirmation", full_parameters())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A forged template webhook is refused.
    let raw = serde_json::to_vec(&fixture("template_status_update.json")).unwrap();
    let (status, _) = server.webhook_raw(&raw, Some(&sign("wrong", &raw))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let other = server.token("globex", Role::Owner);
    let (status, _) = server.get(&other, "/v1/templates/order_confirmation").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = server.get(&other, "/v1/templates").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn sync_imports_and_updates_and_delete_reaches_whatsapp() {
    let (server, token, fake) = setup().await;
    server.post(&token, "/v1/templates", &order_update()).await;
    {
        let mut remote = fake.remote_templates.lock().unwrap();
        remote[0]["status"] = json!("DISABLED");
        remote[0]["rejected_reason"] = json!("NONE");
        remote.push(json!({"id": "77", "name": "big_sale", "language": "en_US", "status": "APPROVED",
                           "category": "MARKETING", "components": [{"type": "BODY", "text": "Sale!"}]}));
    }
    let (status, report) = server.post(&token, "/v1/templates/sync", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((report["imported"].as_u64(), report["updated"].as_u64()), (Some(1), Some(1)));
    let (_, again) = server.post(&token, "/v1/templates/sync", &json!({})).await;
    assert_eq!(again["unchanged"], 2, "a second sync changes nothing");
    server.settled().await;
    let (_, list) = server.get(&token, "/v1/templates").await;
    let statuses: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("big_sale", "APPROVED"), ("order_confirmation", "DISABLED")]);

    let (status, _) = delete(&server, &token, "/v1/templates/big_sale").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let last = fake.template_requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.0, format!("DELETE /v26.0/{WABA}/message_templates?name=big_sale"));
    server.settled().await;
    let (status, _) = server.get(&token, "/v1/templates/big_sale").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = delete(&server, &token, "/v1/templates/big_sale").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn marketing_is_refused_after_a_stop_and_131050_records_one() {
    let (server, token, fake) = setup().await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let sale = json!({"name": "big_sale", "language": "en_US", "category": "MARKETING",
                      "components": [{"type": "BODY", "text": "Sale on {{1}}!"}]});
    server.post(&token, "/v1/templates", &sale).await;
    let send = send_of("big_sale", json!([{"type": "body", "parameters": [{"type": "text", "text": "shoes"}]}]));

    // WhatsApp says the customer stopped marketing: the send fails and the stop is recorded.
    fake.answer(
        400,
        json!({"error": {"message": "(#131050) Unable to deliver the message", "type": "OAuthException",
                                      "code": 131050, "fbtrace_id": "x"}}),
    );
    let (status, queued) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = queued["id"].as_str().unwrap();
    let failed = server
        .eventually(Duration::from_secs(10), || async {
            let (_, m) = server.get(&token, &format!("/v1/messages/{id}")).await;
            (m["status"] == "failed").then_some(m)
        })
        .await;
    assert_eq!(failed["error"]["code"], 131050);
    let (status, refused) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("marketing_opted_out")));
    // Other messages still go.
    let text = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Your order"}});
    assert_eq!(server.post(&token, "/v1/messages", &text).await.0, StatusCode::ACCEPTED);
    server.stop().await;
}

#[tokio::test]
async fn user_preferences_stop_and_resume_marketing() {
    let (server, token, _fake) = setup().await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let sale = json!({"name": "big_sale", "language": "en_US", "category": "MARKETING",
                      "components": [{"type": "BODY", "text": "Sale!"}]});
    server.post(&token, "/v1/templates", &sale).await;
    let send = send_of("big_sale", json!([]));
    let mut stop = fixture("user_preferences_stop.json");
    stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]["timestamp"] = json!(chrono::Utc::now().timestamp());
    let (status, _) = server.webhook(&stop, APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("marketing_opted_out")));

    let mut resume = stop.clone();
    resume["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"] = json!("resume");
    resume["entry"][0]["changes"][0]["value"]["user_preferences"][0]["timestamp"] =
        json!(chrono::Utc::now().timestamp() + 1);
    server.webhook(&resume, APP_SECRET).await;
    assert_eq!(server.post(&token, "/v1/messages", &send).await.0, StatusCode::ACCEPTED);
    server.stop().await;
}

/// Registration answers once the numbers read model lists the number, so a
/// template created right after it finds the business account.
#[tokio::test]
async fn a_template_can_be_created_right_after_its_number_is_registered() {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    let number = json!({
        "phone_number_id": PNID, "display_phone_number": DISPLAY, "waba_id": WABA,
        "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": "verify-me",
    });
    let (status, body) = server.post(&token, "/v1/numbers", &number).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, created) = server.post(&token, "/v1/templates", &order_update()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    server.stop().await;
}
