//! End-to-end: message search within a tenant (`GET /v1/messages/search`),
//! built by the search projection from the sealed message events.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

const GLOBEX_PNID: &str = "106540352249999";

async fn setup() -> (Server, String, Arc<FakeGraph>) {
    let fake = FakeGraph::start().await;
    let server = Server::start(WhatsApp::Fake(fake.clone())).await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    // "Does it come in another color?"
    assert_eq!(server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await.0, StatusCode::OK);
    server.settled().await;
    (server, token, fake)
}

async fn send_text(server: &Server, token: &str, text: &str) -> String {
    let body = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": text}});
    let (status, queued) = server.post(token, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    queued["id"].as_str().unwrap().to_owned()
}

async fn search(server: &Server, token: &str, query: &str) -> Vec<String> {
    let (status, page) = server.get(token, &format!("/v1/messages/search?q={}", encode(query))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn inbound_id(server: &Server, token: &str) -> String {
    let (_, page) = server.get(token, "/v1/conversations").await;
    page["items"][0]["last_message"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn messages_are_found_by_their_words_whatever_the_case_and_accents() {
    let (server, token, _fake) = setup().await;
    let inbound = inbound_id(&server, &token).await;
    let outbound = send_text(&server, &token, "Yes: the Café model comes in BLUE and red.").await;
    server.create_template(&token, "parcel_notice", "UTILITY", "Your parcel is on its way").await;
    let body = json!({"from": PNID, "to": CUSTOMER, "type": "template",
                      "template": {"name": "parcel_notice", "language": {"code": "en_US"}}});
    let (status, queued) = server.post(&token, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let template = queued["id"].as_str().unwrap().to_owned();
    server.settled().await;

    assert_eq!(search(&server, &token, "color").await, vec![inbound.clone()]);
    assert_eq!(search(&server, &token, "ANOTHER Color?").await, vec![inbound.clone()]);
    assert_eq!(search(&server, &token, "cafe").await, vec![outbound.clone()]);
    assert_eq!(search(&server, &token, "Café rouge").await, Vec::<String>::new(), "every word must match");
    assert_eq!(search(&server, &token, "red blue").await, vec![outbound.clone()]);
    assert_eq!(search(&server, &token, "parcel").await, vec![template.clone()], "a template's rendered text");
    // Its entry has the message's own time (it was queued, then rendered).
    let terms = server.app.blinder.terms("acme", &["parcel".to_string()], false).await.unwrap().unwrap();
    let hit = server.app.blinder.index().search("acme", &terms, None, 1).await.unwrap().items[0].clone();
    let (_, message) = server.get(&token, &format!("/v1/messages/{template}")).await;
    assert_eq!(Some(hit.created_at), message["created_at"].as_str().and_then(|t| t.parse().ok()));
    assert_eq!(search(&server, &token, "comes").await, vec![outbound.clone()]);
    assert_eq!(search(&server, &token, "come").await, vec![inbound.clone()], "whole words, not prefixes");

    // Items read like the message list: content opened, newest first.
    let (_, page) = server.get(&token, "/v1/messages/search?q=it").await;
    assert_eq!(page["items"][0]["content"]["body"], "Does it come in another color?");
    let viewer = server.token("acme", Role::Viewer);
    assert_eq!(search(&server, &viewer, "blue").await, [outbound], "every member may search");
    server.stop().await;
}

#[tokio::test]
async fn a_search_never_crosses_tenants() {
    let (server, token, _fake) = setup().await;
    let acme_message = inbound_id(&server, &token).await;
    let globex = server.token("globex", Role::Owner);
    assert_eq!(search(&server, &globex, "color").await, Vec::<String>::new(), "a tenant with nothing indexed");

    // The same words reach another tenant's number.
    assert_eq!(server.register_number(&globex, GLOBEX_PNID, "globex-secret").await.0, StatusCode::CREATED);
    let mut body = fresh(fixture("inbound_text.json"));
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["metadata"]["phone_number_id"] = json!(GLOBEX_PNID);
    value["messages"][0]["id"] = json!("wamid.globex-color-question");
    assert_eq!(server.webhook(&body, "globex-secret").await.0, StatusCode::OK);
    server.settled().await;
    let globex_message = inbound_id(&server, &globex).await;
    assert_ne!(globex_message, acme_message);

    assert_eq!(search(&server, &token, "another color").await, vec![acme_message.clone()]);
    assert_eq!(search(&server, &globex, "another color").await, vec![globex_message.clone()]);

    // Each tenant's words are keyed with its own key: the same word is two
    // different terms, and one tenant's terms find nothing in the other.
    let words = vec!["color".to_string()];
    let acme_terms = server.app.blinder.terms("acme", &words, false).await.unwrap().unwrap();
    let globex_terms = server.app.blinder.terms("globex", &words, false).await.unwrap().unwrap();
    assert_ne!(acme_terms, globex_terms);
    let index = server.app.blinder.index();
    assert!(index.search("globex", &acme_terms, None, 10).await.unwrap().items.is_empty());
    assert_eq!(index.search("acme", &acme_terms, None, 10).await.unwrap().items.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_message_leaves_the_index() {
    let (server, token, _fake) = setup().await;
    let inbound = inbound_id(&server, &token).await;
    let kept = send_text(&server, &token, "Another color is coming next week").await;
    server.settled().await;
    assert_eq!(search(&server, &token, "color").await, [kept.clone(), inbound.clone()]);

    let r = server.http.delete(format!("{}/v1/messages/{inbound}", server.base)).bearer_auth(&token).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 204);
    server.settled().await;
    assert_eq!(search(&server, &token, "color").await, [kept]);
    // Gone from the index itself, not only hidden from the answer.
    let words = vec!["does".to_string()];
    let terms = server.app.blinder.terms("acme", &words, false).await.unwrap().unwrap();
    assert!(server.app.blinder.index().search("acme", &terms, None, 10).await.unwrap().items.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn results_page_newest_first_and_bad_queries_are_refused() {
    let (server, token, _fake) = setup().await;
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(send_text(&server, &token, &format!("Ticket {n} is open")).await);
    }
    server.settled().await;
    let mut seen = Vec::new();
    let mut path = "/v1/messages/search?q=ticket&limit=2".to_owned();
    for _ in 0..3 {
        let (status, page) = server.get(&token, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/messages/search?q=ticket&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    sent.reverse();
    assert_eq!(seen, sent, "newest first, each once");

    let (status, _) = server.get(&token, "/v1/messages/search").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a query string without q");
    for bad in ["/v1/messages/search?q=%3F%21", "/v1/messages/search?q=ticket&limit=0"] {
        let (status, problem) = server.get(&token, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
    }
    let long = "one two three four five six seven eight nine";
    let (status, problem) = server.get(&token, &format!("/v1/messages/search?q={}", encode(long))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "validation_failed");
    let (status, _) = server.get(&token, "/v1/messages/search?q=ticket&cursor=bogus").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = server.http.get(format!("{}/v1/messages/search?q=ticket", server.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server.stop().await;
}
