//! End-to-end: deleting and tagging messages; resolving, assigning, reading
//! and filtering conversations.

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
    let (status, _) = server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    server.settled().await;
    (server, token, fake)
}

async fn put(server: &Server, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = server.http.put(format!("{}{path}", server.base)).bearer_auth(token).json(body).send().await.unwrap();
    read(r).await
}

async fn delete(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let r = server.http.delete(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap();
    read(r).await
}

async fn only_conversation(server: &Server, token: &str) -> Value {
    let (_, page) = server.get(token, "/v1/conversations").await;
    page["items"][0].clone()
}

async fn conversation_ids(server: &Server, token: &str, query: &str) -> Vec<String> {
    let (status, page) = server.get(token, &format!("/v1/conversations?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_deleted_message_is_redacted_everywhere_and_its_events_stay() {
    let (server, token, _fake) = setup().await;
    let conversation = only_conversation(&server, &token).await;
    let message_id = conversation["last_message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(conversation["last_message"]["text"], "Does it come in another color?");

    let viewer = server.token("acme", Role::Viewer);
    let (status, _) = delete(&server, &viewer, &format!("/v1/messages/{message_id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = server.token("globex", Role::Owner);
    let (status, _) = delete(&server, &other, &format!("/v1/messages/{message_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's message is not found");

    for _ in 0..2 {
        let (status, body) = delete(&server, &token, &format!("/v1/messages/{message_id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    server.settled().await;
    let (_, m) = server.get(&token, &format!("/v1/messages/{message_id}")).await;
    assert_eq!(m["deleted"], true);
    assert_eq!(m["content"], Value::Null);
    let conversation = only_conversation(&server, &token).await;
    assert_eq!(conversation["last_message"]["text"], Value::Null);
    assert_eq!(conversation["last_message"]["id"], message_id.as_str());

    let stream = parley_domain::ids::message_stream("acme", message_id.parse().unwrap());
    let events = server.app.store.read_stream(&stream, 0).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["MessageReceived", "MessageDeleted"], "deleted once, the received event kept");

    let (status, _) = delete(&server, &token, &format!("/v1/messages/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn tags_are_stored_normalised_and_filter_conversations() {
    let (server, token, _fake) = setup().await;
    let conversation = only_conversation(&server, &token).await;
    let id = conversation["id"].as_str().unwrap().to_owned();
    let message_id = conversation["last_message"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/messages/{message_id}/tags");

    let (status, body) = server.get(&token, &path).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tags": []})));
    let (status, body) = put(&server, &token, &path, &json!({"tags": ["VIP", "billing", "vip"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tags": ["billing", "vip"]}));
    let (_, body) = server.get(&token, &path).await;
    assert_eq!(body, json!({"tags": ["billing", "vip"]}));

    let (status, body) = put(&server, &token, &path, &json!({"tags": ["no spaces"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "validation_failed");
    let (status, _) = put(&server, &token, &path, &json!({"tags": [], "extra": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");
    let other = server.token("globex", Role::Owner);
    let (status, _) = server.get(&other, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    server.settled().await;
    let (_, m) = server.get(&token, &format!("/v1/messages/{message_id}")).await;
    assert_eq!(m["tags"], json!(["billing", "vip"]));
    assert_eq!(conversation_ids(&server, &token, "tag=vip").await, vec![id.clone()]);
    assert_eq!(conversation_ids(&server, &token, "tag=VIP").await, vec![id.clone()]);
    assert!(conversation_ids(&server, &token, "tag=other").await.is_empty());
    assert!(conversation_ids(&server, &other, "tag=vip").await.is_empty(), "never across tenants");

    put(&server, &token, &path, &json!({"tags": ["billing"]})).await;
    server.settled().await;
    assert!(conversation_ids(&server, &token, "tag=vip").await.is_empty(), "a removed tag no longer matches");
    server.stop().await;
}

#[tokio::test]
async fn resolve_assign_and_filters() {
    let (server, token, _fake) = setup().await;
    let id = only_conversation(&server, &token).await["id"].as_str().unwrap().to_owned();

    let (status, body) =
        server.post(&token, &format!("/v1/conversations/{id}/assign"), &json!({"assignee": "agent-7"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server.post(&token, &format!("/v1/conversations/{id}/assign"), &json!({"assignee": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server.post(&token, &format!("/v1/conversations/{id}/resolve"), &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.post(&token, &format!("/v1/conversations/{id}/resolve"), &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "resolving twice is fine");
    server.settled().await;

    let c = only_conversation(&server, &token).await;
    assert_eq!(c["state"], "resolved");
    assert_eq!(c["assignee"], "agent-7");
    assert_eq!(
        conversation_ids(&server, &token, "state=resolved&assignee=agent-7&window=open").await,
        vec![id.clone()]
    );
    assert!(conversation_ids(&server, &token, "state=open").await.is_empty());
    assert!(conversation_ids(&server, &token, "assignee=none").await.is_empty());
    assert!(conversation_ids(&server, &token, "window=closed").await.is_empty());
    let (status, _) = server.get(&token, "/v1/conversations?assignee=").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    server.post(&token, &format!("/v1/conversations/{id}/assign"), &json!({"assignee": null})).await;
    server.settled().await;
    assert_eq!(conversation_ids(&server, &token, "assignee=none").await, vec![id.clone()]);

    // The contact writes again: the conversation reopens.
    let mut again = fresh(fixture("inbound_text.json"));
    again["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.AGAIN");
    server.webhook(&again, APP_SECRET).await;
    server.settled().await;
    assert_eq!(conversation_ids(&server, &token, "state=open").await, vec![id.clone()]);

    let other = server.token("globex", Role::Owner);
    for action in ["resolve", "read"] {
        let (status, _) = server.post(&other, &format!("/v1/conversations/{id}/{action}"), &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action} on another tenant's conversation");
    }
    let (status, _) = server.post(&other, &format!("/v1/conversations/{id}/assign"), &json!({"assignee": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn reading_a_conversation_tells_whatsapp_once() {
    let (server, token, fake) = setup().await;
    let c = only_conversation(&server, &token).await;
    assert_eq!(c["unread_count"], 1);
    let id = c["id"].as_str().unwrap().to_owned();

    let (status, body) = server.post(&token, &format!("/v1/conversations/{id}/read"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reported_to_whatsapp"], true);
    let (status, body) = server.post(&token, &format!("/v1/conversations/{id}/read"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reported_to_whatsapp"], false, "nothing new to read");

    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (path, auth, body) = &requests[0];
    assert_eq!(path, &format!("/v26.0/{PNID}/messages"));
    assert_eq!(auth.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(
        body,
        &json!({"messaging_product": "whatsapp", "status": "read",
                "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="})
    );
    server
        .eventually(Duration::from_secs(5), || async {
            (only_conversation(&server, &token).await["unread_count"] == 0).then_some(())
        })
        .await;

    // WhatsApp refusing the call is reported and leaves the conversation unread.
    let mut again = fresh(fixture("inbound_text.json"));
    again["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.SECOND");
    server.webhook(&again, APP_SECRET).await;
    server.settled().await;
    fake.answer(401, json!({"error": {"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190, "fbtrace_id": "x"}}));
    let (status, body) = server.post(&token, &format!("/v1/conversations/{id}/read"), &json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "whatsapp_error");
    server.settled().await;
    assert_eq!(only_conversation(&server, &token).await["unread_count"], 1);
    server.stop().await;
}
