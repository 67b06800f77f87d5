//! The local runtime's own duties: rebuilding read models, the window closer,
//! and sending every message type in the Cloud API's shape.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use parley_app::readmodel::ConversationFilter;
use parley_domain::ids;
use serde_json::{json, Value};

#[tokio::test]
async fn rebuilt_projections_equal_the_incrementally_built_ones() {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    server.register_number(&token, PNID, APP_SECRET).await;
    // A small mixed workload: several contacts write, some twice, replies go out.
    for i in 0..6u32 {
        let mut body = fresh(fixture("inbound_text.json"));
        let value = &mut body["entry"][0]["changes"][0]["value"];
        let from = format!("1650555{:04}", i % 4);
        value["contacts"][0]["wa_id"] = json!(from);
        value["messages"][0]["from"] = json!(from);
        value["messages"][0]["id"] = json!(format!("wamid.REBUILD{i}"));
        let (status, _) = server.webhook(&body, APP_SECRET).await;
        assert_eq!(status, StatusCode::OK);
        let send = json!({"from": PNID, "to": from, "type": "text", "text": {"body": format!("reply {i}")}});
        let (status, _) = server.post(&token, "/v1/messages", &send).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    server.eventually(Duration::from_secs(10), || async { (fake.sends() == 6).then_some(()) }).await;
    server.settled().await;
    let app = server.app.clone();
    let snapshot = |app: std::sync::Arc<parley_app::App>| async move {
        let messages = app.read_models.messages("acme", None, None, 200).await.unwrap().items;
        let now = chrono::Utc::now();
        let conversations =
            app.read_models.conversations("acme", &ConversationFilter::default(), now, None, 200).await.unwrap().items;
        (messages, conversations)
    };
    let before = snapshot(app.clone()).await;
    assert_eq!(before.0.len(), 12);
    assert_eq!(before.1.len(), 4);

    let mut server = server;
    server.stop_workers_only().await;
    let rebuild = parley_functions::local::Local::open({
        let mut c = parley_app::Config::from_lookup(|_| None).unwrap();
        c.data_dir = server.data_dir().to_path_buf();
        c
    })
    .unwrap();
    rebuild.projections.rebuild(None).await.unwrap();
    let after = snapshot(rebuild.app.clone()).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_window_closer_marks_closed_windows_once() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(50))).await;
    let token = server.token("acme", Role::Owner);
    server.register_number(&token, PNID, APP_SECRET).await;
    // The fixture's message is from June 2025: its window closed long ago.
    server.webhook(&fixture("inbound_text.json"), APP_SECRET).await;
    let stream = ids::conversation_stream("acme", ids::conversation_id("acme", PNID, CUSTOMER));
    let expired = server
        .eventually(Duration::from_secs(10), || async {
            let events = server.app.store.read_stream(&stream, 0).await.unwrap();
            let n = events.iter().filter(|e| e.event_type == "ConversationWindowExpired").count();
            (n > 0).then_some(n)
        })
        .await;
    assert_eq!(expired, 1);
    // Several more runs of the closer change nothing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let events = server.app.store.read_stream(&stream, 0).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.event_type == "ConversationWindowExpired").count(), 1);
    // A new message reopens the window.
    server.webhook(&fresh(fixture("inbound_stop.json")), APP_SECRET).await;
    server.settled().await;
    let (_, open) = server.get(&token, "/v1/conversations?window=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn every_message_type_goes_out_in_the_cloud_api_shape() {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Agent);
    let admin = server.token("acme", Role::Admin);
    server.register_number(&admin, PNID, APP_SECRET).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let template = json!({"name": "order_update", "language": "en_US", "category": "UTILITY",
                          "components": [{"type": "BODY", "text": "Order {{1}} has shipped."}]});
    let (status, created) = server.post(&admin, "/v1/templates", &template).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let inbound_wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let sends: Vec<(&str, Value)> = vec![
        ("image", json!({"link": "https://example.com/shoe.jpg", "caption": "In blue"})),
        ("document", json!({"link": "https://example.com/catalog.pdf", "filename": "catalog.pdf"})),
        (
            "interactive",
            json!({"type": "button", "body": {"text": "Which size?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "s", "title": "Small"}},
                                   {"type": "reply", "reply": {"id": "l", "title": "Large"}}]}}),
        ),
        ("reaction", json!({"message_id": inbound_wamid, "emoji": "\u{1f44d}"})),
        ("location", json!({"latitude": 37.48, "longitude": -122.15, "name": "Store"})),
        (
            "template",
            json!({"name": "order_update", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}),
        ),
    ];
    for (kind, content) in &sends {
        let mut body = json!({"from": PNID, "to": CUSTOMER, "type": kind});
        body[*kind] = content.clone();
        let (status, answer) = server.post(&token, "/v1/messages", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{kind}: {answer}");
    }
    let reply = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Replying"},
                       "context": {"message_id": inbound_wamid}});
    assert_eq!(server.post(&token, "/v1/messages", &reply).await.0, StatusCode::ACCEPTED);
    server.eventually(Duration::from_secs(10), || async { (fake.sends() == sends.len() + 1).then_some(()) }).await;
    let requests = fake.requests.lock().unwrap().clone();
    for (kind, content) in &sends {
        let (_, _, body) =
            requests.iter().find(|(_, _, b)| b["type"] == *kind).unwrap_or_else(|| panic!("{kind} sent"));
        assert_eq!(&body[*kind], content, "{kind} content passes through unchanged");
        assert_eq!(body["messaging_product"], "whatsapp");
        assert_eq!(body["recipient_type"], "individual");
    }
    let (_, _, text) = requests.iter().find(|(_, _, b)| b["type"] == "text").unwrap();
    assert_eq!(text["context"]["message_id"], inbound_wamid);

    // Content that breaks the Cloud API's limits never leaves.
    let too_many = json!({"from": PNID, "to": CUSTOMER, "type": "interactive", "interactive": {"type": "button",
        "body": {"text": "?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "1", "title": "a"}}, {"type": "reply", "reply": {"id": "2", "title": "b"}},
            {"type": "reply", "reply": {"id": "3", "title": "c"}}, {"type": "reply", "reply": {"id": "4", "title": "d"}}]}}});
    let (status, problem) = server.post(&token, "/v1/messages", &too_many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "interactive.action.buttons");
    let mixed = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "a"}, "image": {"link": "https://x.test/a.png"}});
    assert_eq!(server.post(&token, "/v1/messages", &mixed).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
}
