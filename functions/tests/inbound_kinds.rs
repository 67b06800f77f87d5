//! Inbound message kinds through the local runtime: interactive replies,
//! quick-reply taps, location, contacts and unsupported messages with their
//! previews; reactions in both directions; click-to-WhatsApp referrals and
//! their 72h entry point window.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

async fn setup() -> (Server, String, std::sync::Arc<FakeGraph>) {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (server, token, fake)
}

/// The fixture with only its `index`-th message, stamped `at`.
fn one_message(name: &str, index: usize, at: DateTime<Utc>) -> Value {
    let mut body = fixture(name);
    let messages = &mut body["entry"][0]["changes"][0]["value"]["messages"];
    let mut message = messages[index].clone();
    message["timestamp"] = json!(at.timestamp().to_string());
    *messages = json!([message]);
    body
}

/// The same, from another customer (each gets a conversation of its own).
fn from_customer(mut body: Value, wa_id: &str) -> Value {
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["messages"][0]["from"] = json!(wa_id);
    value["contacts"][0]["wa_id"] = json!(wa_id);
    body
}

async fn conversation_of(server: &Server, token: &str, wa_id: &str) -> Value {
    let (status, page) = server.get(token, "/v1/conversations?limit=50").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().iter().find(|c| c["contact"]["wa_id"] == wa_id).cloned().expect("conversation")
}

async fn only_conversation(server: &Server, token: &str) -> Value {
    let (status, page) = server.get(token, "/v1/conversations").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    page["items"][0].clone()
}

async fn message(server: &Server, token: &str, id: &str) -> Value {
    let (status, m) = server.get(token, &format!("/v1/messages/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    m
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a time: {v}"))
}

#[tokio::test]
async fn every_inbound_kind_lands_as_a_message_with_a_preview() {
    let (server, token, _fake) = setup().await;
    // (fixture, message index, type, preview text)
    let cases: [(&str, usize, &str, Option<&str>); 9] = [
        ("inbound_interactive.json", 0, "interactive", Some("title")),
        ("inbound_interactive.json", 1, "interactive", Some("title")),
        ("inbound_interactive.json", 2, "button", Some("title")),
        ("inbound_media.json", 0, "image", None),
        ("inbound_media.json", 1, "document", Some("caption")),
        ("inbound_media.json", 3, "location", Some("Facebook HQ")),
        ("inbound_contacts.json", 0, "contacts", Some("Barbara Johnson")),
        ("inbound_unsupported.json", 0, "unsupported", None),
        ("inbound_text.json", 0, "text", Some("Does it come in another color?")),
    ];
    let start = Utc::now() - chrono::Duration::minutes(30);
    for (i, (name, index, kind, text)) in cases.iter().enumerate() {
        let at = start + chrono::Duration::seconds(i as i64);
        let customer = format!("1650555{:04}", i);
        let body = from_customer(one_message(name, *index, at), &customer);
        let (status, outcome) = server.webhook(&body, APP_SECRET).await;
        assert_eq!(status, StatusCode::OK, "{name}: {outcome}");
        server.settled().await;
        let conversation = conversation_of(&server, &token, &customer).await;
        let last = &conversation["last_message"];
        assert_eq!(last["type"], *kind, "{name}[{index}]: {conversation}");
        assert_eq!(last["text"].as_str(), *text, "{name}[{index}]: {conversation}");
        assert_eq!(last["direction"], "inbound");
        assert_eq!(conversation["unread_count"], 1, "every kind counts as unread");
        assert_eq!(time(&conversation["window_closes_at"]).timestamp(), (at + chrono::Duration::hours(24)).timestamp());
        // The message itself keeps its whole content.
        let m = message(&server, &token, last["id"].as_str().unwrap()).await;
        assert_eq!(m["type"], *kind);
        assert_eq!(m["direction"], "inbound");
        let original = &fixture(name)["entry"][0]["changes"][0]["value"]["messages"][*index];
        assert_eq!(m["wamid"], original["id"]);
        assert_eq!(m["content"], original.get(*kind).cloned().unwrap_or(Value::Null), "{name}[{index}]");
    }
    let (_, page) = server.get(&token, "/v1/messages?limit=50").await;
    assert_eq!(page["items"].as_array().unwrap().len(), cases.len());
    server.stop().await;
}

/// Sends a text from the business and waits until WhatsApp accepted it: (id, wamid).
async fn send_text(server: &Server, token: &str, fake: &FakeGraph, wamid: &str) -> (String, String) {
    fake.next_wamid(wamid);
    let body = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Yes, in blue."}});
    let (status, queued) = server.post(token, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let wamid = server
        .eventually(Duration::from_secs(10), || async {
            server.settled().await;
            message(server, token, &id).await["wamid"].as_str().map(str::to_owned)
        })
        .await;
    (id, wamid)
}

#[tokio::test]
async fn reactions_are_set_on_their_target_and_an_empty_emoji_removes_them() {
    let (server, token, fake) = setup().await;
    // The customer wrote 20 hours ago: the window has 4 hours left.
    let wrote = Utc::now() - chrono::Duration::hours(20);
    server.webhook(&one_message("inbound_text.json", 0, wrote), APP_SECRET).await;
    server.settled().await;
    let inbound_id = only_conversation(&server, &token).await["last_message"]["id"].as_str().unwrap().to_owned();
    let inbound_wamid = message(&server, &token, &inbound_id).await["wamid"].as_str().unwrap().to_owned();
    let (out_id, _) = send_text(&server, &token, &fake, "wamid.OUT0001").await;

    // The customer reacts to the business's message (inbound_reaction.json names wamid.OUT0001),
    // a second later (webhook times have whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reacted = Utc::now();
    let (status, _) = server.webhook(&one_message("inbound_reaction.json", 0, reacted), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    server.settled().await;
    let out = message(&server, &token, &out_id).await;
    assert_eq!(out["reactions"]["inbound"]["emoji"], "\u{1f62e}", "{out}");
    assert_eq!(out["reactions"]["outbound"], Value::Null);
    // The reaction is a customer message: it lands and moves the 24h window.
    let conversation = only_conversation(&server, &token).await;
    assert_eq!(
        (conversation["last_message"]["type"].as_str(), conversation["last_message"]["text"].as_str()),
        (Some("reaction"), Some("\u{1f62e}"))
    );
    assert_eq!(
        time(&conversation["window_closes_at"]).timestamp(),
        (reacted + chrono::Duration::hours(24)).timestamp()
    );
    let reaction_id = conversation["last_message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(out["reactions"]["inbound"]["message_id"], reaction_id.as_str());

    // A redelivery changes nothing.
    server.webhook(&one_message("inbound_reaction.json", 0, reacted), APP_SECRET).await;
    server.settled().await;
    let stream = parley_domain::ids::message_stream("acme", out_id.parse().unwrap());
    let reactions_recorded = |events: &[parley_events::RecordedEvent]| {
        events.iter().filter(|e| e.event_type == "MessageReactionSet").count()
    };
    assert_eq!(reactions_recorded(&server.app.store.read_stream(&stream, 0).await.unwrap()), 1);

    // The business reacts to the customer's message.
    fake.next_wamid("wamid.OUTREACT");
    let react = json!({"from": PNID, "to": CUSTOMER, "type": "reaction",
                       "reaction": {"message_id": inbound_wamid, "emoji": "\u{1f44d}"}});
    let (status, body) = server.post(&token, "/v1/messages", &react).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let inbound = server
        .eventually(Duration::from_secs(10), || async {
            server.settled().await;
            let m = message(&server, &token, &inbound_id).await;
            m["reactions"]["outbound"].is_object().then_some(m)
        })
        .await;
    assert_eq!(inbound["reactions"]["outbound"]["emoji"], "\u{1f44d}");
    assert_eq!(inbound["reactions"]["outbound"]["message_id"], body["id"]);
    assert_eq!(inbound["reactions"]["inbound"], Value::Null);
    let sent = fake.requests.lock().unwrap().last().cloned().unwrap().2;
    assert_eq!(sent["reaction"], json!({"message_id": inbound_wamid, "emoji": "\u{1f44d}"}));

    // A reaction must name a message of this contact that Parley holds.
    let stray = json!({"from": PNID, "to": CUSTOMER, "type": "reaction",
                       "reaction": {"message_id": "wamid.NOPE", "emoji": "\u{1f44d}"}});
    let (status, body) = server.post(&token, "/v1/messages", &stray).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The customer removes the reaction: an empty emoji.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut removal = one_message("inbound_reaction.json", 0, Utc::now());
    let m = &mut removal["entry"][0]["changes"][0]["value"]["messages"][0];
    m["id"] = json!("wamid.RCT0002");
    m["reaction"]["emoji"] = json!("");
    server.webhook(&removal, APP_SECRET).await;
    server.settled().await;
    let out = message(&server, &token, &out_id).await;
    assert_eq!(out["reactions"]["inbound"], Value::Null, "{out}");
    let conversation = only_conversation(&server, &token).await;
    assert_eq!(conversation["last_message"]["text"], Value::Null, "a removal has nothing to show");

    // An older reaction delivered late does not undo the removal.
    let mut late = one_message("inbound_reaction.json", 0, reacted - chrono::Duration::minutes(1));
    late["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.RCT0000");
    server.webhook(&late, APP_SECRET).await;
    server.settled().await;
    assert_eq!(message(&server, &token, &out_id).await["reactions"]["inbound"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn a_referral_opens_the_72h_entry_point_window_and_free_form_sends_keep_the_24h_rule() {
    let (server, token, _fake) = setup().await;
    // The customer came from an ad 30 hours ago: the 24h window has closed,
    // the 72h entry point window is still open.
    let came = Utc::now() - chrono::Duration::hours(30);
    let (status, _) = server.webhook(&one_message("inbound_referral.json", 0, came), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    server.settled().await;
    let conversation = only_conversation(&server, &token).await;
    assert_eq!(
        time(&conversation["entry_point_window_closes_at"]).timestamp(),
        (came + chrono::Duration::hours(72)).timestamp()
    );
    assert_eq!(time(&conversation["window_closes_at"]).timestamp(), (came + chrono::Duration::hours(24)).timestamp());
    assert_eq!(conversation["window_open"], false);
    let referral = &conversation["referral"];
    assert_eq!(
        referral,
        &json!({"source_url": "https://fb.me/ad", "source_id": "ADID", "source_type": "ad",
                "headline": "AD_TITLE", "body": "AD_DESCRIPTION", "media_type": "image"}),
    );
    assert_eq!(conversation["last_message"]["text"], "Hi, I saw your ad");

    // The ad's text and click id are sealed in the stored event.
    let id: uuid::Uuid = conversation["id"].as_str().unwrap().parse().unwrap();
    let events = server.app.store.read_stream(&parley_domain::ids::conversation_stream("acme", id), 0).await.unwrap();
    let opened = events.iter().find(|e| e.event_type == "EntryPointWindowOpened").expect("entry point event");
    assert_eq!(opened.data["referral"]["source_id"], "ADID");
    for sealed in ["headline", "body", "ctwa_clid"] {
        assert!(opened.data["referral"][sealed].get("$sealed").is_some(), "{sealed}: {}", opened.data);
    }
    assert!(!opened.data.to_string().contains("CTWA_CLID"));

    // Free-form sends still need the 24h window.
    let text = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Thanks for writing"}});
    let (status, body) = server.post(&token, "/v1/messages", &text).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "window_closed");

    // A message without a referral leaves the entry point window as it was.
    server.webhook(&one_message("inbound_text.json", 0, Utc::now()), APP_SECRET).await;
    server.settled().await;
    let again = only_conversation(&server, &token).await;
    assert_eq!(again["entry_point_window_closes_at"], conversation["entry_point_window_closes_at"]);
    assert_eq!(again["window_open"], true);
    let other = server.token("globex", Role::Owner);
    let (status, _) = server.get(&other, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
