//! End-to-end: the real HTTP server, signed fixture webhooks, the outbound
//! sender against the simulator or a scripted Graph API.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

async fn server_with_number(whatsapp: WhatsApp) -> (Server, String) {
    let server = Server::start(whatsapp).await;
    let token = server.token("acme", Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("app_secret").is_none() && body.get("access_token").is_none(), "secrets never come back");
    (server, token)
}

fn text_send(body: &str) -> Value {
    json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": body}})
}

fn template_send() -> Value {
    json!({"from": PNID, "to": CUSTOMER, "type": "template",
           "template": {"name": "order_update", "language": {"code": "en_US"}}})
}

async fn conversations(server: &Server, token: &str) -> Vec<Value> {
    let (status, body) = server.get(token, "/v1/conversations").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn inbound_text_creates_a_conversation_and_an_unread_message() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let (status, outcome) = server.webhook(&fixture("inbound_text.json"), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["messages"], 1);
    server.settled().await;

    let items = conversations(&server, &token).await;
    assert_eq!(items.len(), 1);
    let c = &items[0];
    assert_eq!(c["contact"], json!({"wa_id": CUSTOMER, "name": "Sheena Nelson"}));
    assert_eq!(c["number_id"], PNID);
    assert_eq!(c["unread_count"], 1);
    assert_eq!(c["state"], "open");
    assert_eq!(c["last_message"]["text"], "Does it come in another color?");
    let id = c["id"].as_str().unwrap();

    let (status, one) = server.get(&token, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], c["id"]);

    let (_, page) = server.get(&token, &format!("/v1/messages?conversation_id={id}")).await;
    let messages = page["items"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["type"], "text");
    assert_eq!(m["content"]["body"], "Does it come in another color?");
    assert_eq!(m["wamid"], "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
    let (status, got) = server.get(&token, &format!("/v1/messages/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["content"], m["content"]);
    server.stop().await;
}

#[tokio::test]
async fn a_redelivered_webhook_changes_nothing() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let body = fixture("inbound_text.json");
    server.webhook(&body, APP_SECRET).await;
    let head = server.event_log_head().await;
    let (status, outcome) = server.webhook(&body, APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["duplicates"], 1);
    assert_eq!(outcome["messages"], 0);
    assert_eq!(server.event_log_head().await, head, "no event recorded for a duplicate");
    server.settled().await;
    let items = conversations(&server, &token).await;
    assert_eq!(items[0]["unread_count"], 1);
    let (_, page) = server.get(&token, "/v1/messages").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn every_entry_change_and_message_of_a_body_is_processed() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let mut body = fresh(fixture("inbound_text.json"));
    let message = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let mut second = message.clone();
    second["id"] = json!("wamid.SECOND");
    body["entry"][0]["changes"][0]["value"]["messages"] = json!([message, second]);
    let mut change = body["entry"][0]["changes"][0].clone();
    change["value"]["messages"][0]["id"] = json!("wamid.THIRD");
    change["value"]["messages"][1]["id"] = json!("wamid.FOURTH");
    body["entry"][0]["changes"].as_array_mut().unwrap().push(change.clone());
    let mut entry = body["entry"][0].clone();
    entry["changes"] = json!([{
        "field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
                  "contacts": [{"profile": {"name": "Other"}, "wa_id": "16505559999"}],
                  "messages": [{"from": "16505559999", "id": "wamid.FIFTH", "timestamp": chrono::Utc::now().timestamp().to_string(),
                                "type": "text", "text": {"body": "hello"}}]}
    }]);
    body["entry"].as_array_mut().unwrap().push(entry);
    let (status, outcome) = server.webhook(&body, APP_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["messages"], 5);
    server.settled().await;
    assert_eq!(conversations(&server, &token).await.len(), 2);
    let (_, page) = server.get(&token, "/v1/messages").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_records_nothing() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let head = server.event_log_head().await;
    let raw = serde_json::to_vec(&fixture("inbound_text.json")).unwrap();
    for signature in [None, Some("sha256=00"), Some(sign("wrong-secret", &raw).as_str())] {
        let (status, problem) = server.webhook_raw(&raw, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
        assert_eq!(problem["code"], "invalid_signature");
    }
    // Signed over other bytes than those sent (re-serialised JSON).
    let pretty = serde_json::to_vec_pretty(&fixture("inbound_text.json")).unwrap();
    let (status, _) = server.webhook_raw(&pretty, Some(&sign(APP_SECRET, &raw))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.event_log_head().await, head);
    server.settled().await;
    assert!(conversations(&server, &token).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn statuses_out_of_order_end_at_read_each_recorded_once() {
    let fake = FakeGraph::start().await;
    fake.next_wamid("wamid.OUT0006");
    let (server, token) = server_with_number(WhatsApp::Fake(fake.clone())).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let (status, queued) = server.post(&token, "/v1/messages", &text_send("It comes in blue")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/messages/{id}");
    server
        .eventually(Duration::from_secs(10), || async {
            let (_, m) = server.get(&token, &path).await;
            (m["wamid"] == "wamid.OUT0006").then_some(())
        })
        .await;

    let batch = fixture("status_batch_out_of_order.json");
    let (status, outcome) = server.webhook(&batch, APP_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["statuses"], 3);
    let head = server.event_log_head().await;
    server.webhook(&batch, APP_SECRET).await;
    assert_eq!(server.event_log_head().await, head, "a status delivered twice is recorded once");
    server.settled().await;
    let (_, m) = server.get(&token, &path).await;
    assert_eq!(m["status"], "read");
    assert_eq!(m["timestamps"]["sent"], "2025-06-08T21:06:41Z");
    assert_eq!(m["timestamps"]["delivered"], "2025-06-08T21:06:43Z");
    assert_eq!(m["timestamps"]["read"], "2025-06-08T21:06:45Z");
    // The send carried Parley's id and the contact, as the Cloud API expects.
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (path, auth, body) = &requests[0];
    assert_eq!(path, &format!("/v26.0/{PNID}/messages"));
    assert_eq!(auth.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], CUSTOMER);
    assert_eq!(body["text"]["body"], "It comes in blue");
    assert_eq!(body["biz_opaque_callback_data"], json!(id));
    server.stop().await;
}

#[tokio::test]
async fn stop_opts_out_and_a_later_send_is_refused() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let (status, _) = server.post(&token, "/v1/messages", &text_send("Sure, which color?")).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    server.webhook(&fresh(fixture("inbound_stop.json")), APP_SECRET).await;
    let (status, problem) = server.post(&token, "/v1/messages", &text_send("Still there?")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "opted_out");
    let (status, problem) = server.post(&token, "/v1/messages", &template_send()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "templates respect opt-outs too");
    assert_eq!(problem["code"], "opted_out");

    // START opts back in.
    let mut start = fresh(fixture("inbound_stop.json"));
    start["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.START0001");
    start["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!("start");
    server.webhook(&start, APP_SECRET).await;
    let (status, body) = server.post(&token, "/v1/messages", &text_send("Welcome back")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn free_form_outside_the_window_is_refused_and_a_template_accepted() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    // Never wrote in: no window at all.
    let (status, problem) = server.post(&token, "/v1/messages", &text_send("Hello?")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "window_closed");

    // Wrote in June 2025 (the fixture's own timestamp): the window closed 24h later.
    server.webhook(&fixture("inbound_text.json"), APP_SECRET).await;
    let (status, problem) = server.post(&token, "/v1/messages", &text_send("Hello again?")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "window_closed");
    assert_eq!(problem["window_closed_at"], "2025-06-09T20:59:43Z");

    let (status, refused) = server.post(&token, "/v1/messages", &template_send()).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("template_not_found")));
    let template = json!({"name": "order_update", "language": "en_US", "category": "UTILITY",
                          "components": [{"type": "BODY", "text": "Your order has shipped."}]});
    let (status, created) = server.post(&token, "/v1/templates", &template).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, queued) = server.post(&token, "/v1/messages", &template_send()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "queued");
    server.settled().await;
    let (_, closed) = server.get(&token, "/v1/conversations?window=closed").await;
    assert_eq!(closed["items"].as_array().unwrap().len(), 1);
    let (_, open) = server.get(&token, "/v1/conversations?window=open").await;
    assert!(open["items"].as_array().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_send_goes_to_the_simulator_and_comes_back_read() {
    let (server, token) = server_with_number(WhatsApp::Simulator(Duration::from_millis(30))).await;
    let r = server
        .http
        .post(format!("{}/simulator/_inbound/{PNID}", server.base))
        .json(&json!({"from": CUSTOMER, "name": "Sheena Nelson", "text": "Is my order shipped?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    server
        .eventually(Duration::from_secs(10), || async {
            (!conversations(&server, &token).await.is_empty()).then_some(())
        })
        .await;
    let (status, queued) = server.post(&token, "/v1/messages", &text_send("Yes, it left today.")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let path = format!("/v1/messages/{}", queued["id"].as_str().unwrap());
    let message = server
        .eventually(Duration::from_secs(15), || async {
            let (_, m) = server.get(&token, &path).await;
            (m["status"] == "read").then_some(m)
        })
        .await;
    assert!(message["wamid"].as_str().unwrap().starts_with("wamid."));
    for t in ["sent", "delivered", "read"] {
        assert!(message["timestamps"][t].is_string(), "{t} recorded: {message}");
    }
    let items = conversations(&server, &token).await;
    assert_eq!(items[0]["last_message"]["text"], "Yes, it left today.");
    assert_eq!(items[0]["last_message"]["direction"], "outbound");
    server.stop().await;
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let fake = FakeGraph::start().await;
    let (server, token) = server_with_number(WhatsApp::Fake(fake.clone())).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let send = |body: Value, key: &'static str| {
        let server = &server;
        let token = token.clone();
        async move {
            let r = server
                .http
                .post(format!("{}/v1/messages", server.base))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            read(r).await
        }
    };
    let (s1, first) = send(text_send("once"), "key-1").await;
    assert_eq!(s1, StatusCode::ACCEPTED, "{first}");
    let (s2, second) = send(text_send("once"), "key-1").await;
    assert_eq!(s2, StatusCode::ACCEPTED);
    assert_eq!(first, second);
    let (s3, problem) = send(text_send("twice"), "key-1").await;
    assert_eq!(s3, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "idempotency_key_reused");
    server.settled().await;
    server.eventually(Duration::from_secs(5), || async { (fake.sends() == 1).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.sends(), 1, "one message sent for one key");
    let (_, page) = server.get(&token, "/v1/messages").await;
    assert_eq!(page["items"].as_array().unwrap().iter().filter(|m| m["direction"] == "outbound").count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let (server, a) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let (_, queued) = server.post(&a, "/v1/messages", &text_send("for A only")).await;
    server.settled().await;
    let conversation = conversations(&server, &a).await[0]["id"].as_str().unwrap().to_owned();
    let message = queued["id"].as_str().unwrap().to_owned();

    let b = server.token("globex", Role::Owner);
    for path in [
        format!("/v1/messages/{message}"),
        format!("/v1/conversations/{conversation}"),
        format!("/v1/messages?conversation_id={conversation}"),
    ] {
        let (status, problem) = server.get(&b, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {problem}");
        assert!(!problem.to_string().contains("for A only"));
    }
    let (_, list) = server.get(&b, "/v1/conversations").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, list) = server.get(&b, "/v1/messages").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, numbers) = server.get(&b, "/v1/numbers").await;
    assert_eq!(numbers, json!([]));
    let head = server.event_log_head().await;
    let (status, _) = server.post(&b, "/v1/messages", &text_send("from A's number")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.register_number(&b, PNID, "another-secret").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(server.event_log_head().await, head, "B changed nothing of A's");
    server.stop().await;
}

#[tokio::test]
async fn auth_roles_and_problem_details() {
    let (server, owner) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let r = server.http.get(format!("{}/v1/conversations", server.base)).send().await.unwrap();
    let (status, problem) = read(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["code"], "unauthorized");
    let (status, _) = server.get("garbage", "/v1/messages").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let viewer = server.token("acme", Role::Viewer);
    let (status, problem) = server.post(&viewer, "/v1/messages", &text_send("viewers only read")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, _) = server.get(&viewer, "/v1/conversations").await;
    assert_eq!(status, StatusCode::OK);

    let mut unknown = text_send("x");
    unknown["surprise"] = json!(true);
    let (status, problem) = server.post(&owner, "/v1/messages", &unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "validation_failed");
    let (status, problem) = server.post(&owner, "/v1/messages", &text_send(&"y".repeat(4097))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "text.body");
    let r = server
        .http
        .post(format!("{}/v1/messages", server.base))
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, problem) = read(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "malformed_json");
    let big = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "z".repeat(2 * 1024 * 1024)}});
    let (status, _) = server.post(&owner, "/v1/messages", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, problem) = server.get(&owner, "/v1/nowhere").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    server.stop().await;
}

#[tokio::test]
async fn webhook_handshake_echoes_the_challenge_for_a_known_token() {
    let (server, _) = server_with_number(WhatsApp::Simulator(Duration::from_millis(50))).await;
    server.settled().await;
    let url = |token: &str| {
        format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}",
            server.base
        )
    };
    let r = server.http.get(url("verify-me")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let (status, problem) = read(server.http.get(url("nope")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    server.stop().await;
}

#[tokio::test]
async fn openapi_document_describes_the_routes() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let doc: Value =
        server.http.get(format!("{}/openapi.json", server.base)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/numbers",
        "/webhooks/whatsapp",
        "/health",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn the_sender_maps_whatsapp_errors_to_retries_and_failures() {
    let fake = FakeGraph::start().await;
    let (server, token) = server_with_number(WhatsApp::Fake(fake.clone())).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;

    // A template error fails the message at once, with its kind.
    fake.answer(400, fixture("send_error_132000.json"));
    let (_, queued) = server.post(&token, "/v1/messages", &text_send("bad template")).await;
    let path = format!("/v1/messages/{}", queued["id"].as_str().unwrap());
    let failed = server
        .eventually(Duration::from_secs(10), || async {
            let (_, m) = server.get(&token, &path).await;
            (m["status"] == "failed").then_some(m)
        })
        .await;
    assert_eq!(failed["error"]["kind"], "template_error");
    assert_eq!(failed["error"]["code"], 132000);
    assert_eq!(fake.sends(), 1);

    // A throughput limit is retried after a backoff, then succeeds.
    fake.answer(400, fixture("send_error_130429.json"));
    let (_, queued) = server.post(&token, "/v1/messages", &text_send("busy, then fine")).await;
    let path = format!("/v1/messages/{}", queued["id"].as_str().unwrap());
    let sent = server
        .eventually(Duration::from_secs(20), || async {
            let (_, m) = server.get(&token, &path).await;
            m["wamid"].is_string().then_some(m)
        })
        .await;
    assert_eq!(sent["attempts"], 2);
    assert_eq!(sent["status"], "queued", "accepted, waiting for WhatsApp's statuses");
    assert_eq!(fake.sends(), 3);
    server.stop().await;
}

#[tokio::test]
async fn an_interrupted_send_is_never_sent_twice_and_a_status_settles_it() {
    use parley_app::repo::Target;
    use parley_app::sealing::Meta;
    use parley_domain::event::MessageQueued;
    use parley_domain::ids;
    use parley_domain::message::{self, Dispatch};

    let fake = FakeGraph::start().await;
    let (server, token) = server_with_number(WhatsApp::Fake(fake.clone())).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    // A message whose dispatch was claimed by a sender that then crashed,
    // before it could record what WhatsApp answered.
    let app = server.app.clone();
    let message_id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let queued = MessageQueued {
        message_id,
        conversation_id: ids::conversation_id("acme", PNID, CUSTOMER),
        number_id: PNID.into(),
        wa_id: CUSTOMER.into(),
        kind: "text".into(),
        content: json!({"body": "maybe sent"}),
        reply_to: None,
        queued_at: now,
    };
    let stream = ids::message_stream("acme", message_id);
    let target = Target { tenant_id: "acme", stream_id: stream.clone(), wa_id: Some(CUSTOMER) };
    app.messages
        .execute(&target, &Meta::new("crashed-sender"), |m| {
            let mut events = message::queue(m, queued.clone());
            let claimed = events.iter().fold(m.clone(), |s, e| s.evolve(e));
            events.extend(message::start_dispatch(&claimed, now).unwrap());
            Ok::<_, parley_app::AppError>(events)
        })
        .await
        .unwrap();

    // The dispatcher queues it; the sender finds the attempt in flight.
    let state = server
        .eventually(Duration::from_secs(10), || async {
            let m = app.messages.load(&stream).await.unwrap().state;
            matches!(m.dispatch, Dispatch::Unconfirmed { .. }).then_some(m)
        })
        .await;
    assert!(state.wamid.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.sends(), 0, "an attempt whose outcome is unknown is never sent again");

    // WhatsApp did receive it: its status carries Parley's id back.
    let mut status = fixture("status_batch_out_of_order.json");
    status["entry"][0]["changes"][0]["value"]["statuses"] = json!([{
        "id": "wamid.RECOVERED", "status": "delivered", "timestamp": now.timestamp().to_string(),
        "recipient_id": CUSTOMER, "biz_opaque_callback_data": message_id.to_string()}]);
    let (code, _) = server.webhook(&status, APP_SECRET).await;
    assert_eq!(code, StatusCode::OK);
    server.settled().await;
    let (_, m) = server.get(&token, &format!("/v1/messages/{message_id}")).await;
    assert_eq!(m["wamid"], "wamid.RECOVERED");
    assert_eq!(m["status"], "delivered");
    let events = app.store.read_stream(&stream, 0).await.unwrap();
    assert!(events.iter().any(|e| e.event_type == "MessageDispatchUnconfirmed"));
    assert!(!events.iter().any(|e| e.event_type == "MessageFailed"));
    assert_eq!(fake.sends(), 0);
    server.stop().await;
}
