//! End-to-end: GDPR export and erasure of a contact (SPEC 5.4, 6.4).

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use parley_app::auth::Role;
use parley_domain::billing::Month;
use parley_domain::ids;
use parley_whatsapp::fake::StrictGraphFake;
use serde_json::{json, Value};

const TENANT: &str = "acme";

/// A tenant whose customer wrote a text and sent a photo (stored in blobs),
/// got a reply, and has tags and attributes in the directory.
async fn setup() -> (Server, StrictGraphFake, String, Vec<u8>) {
    let (server, fake, token) = server_with_strict_fake(TENANT).await;
    assert_eq!(server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await.0, StatusCode::OK);

    let jpeg: Vec<u8> = b"\xff\xd8\xff\xe0JFIF".iter().copied().chain((0..=255u8).cycle().take(2000)).collect();
    let media_id = fake.add_media(PNID, "image/jpeg", jpeg.clone());
    let mut photo = fresh(fixture("inbound_media.json"));
    let messages = photo["entry"][0]["changes"][0]["value"]["messages"].as_array_mut().unwrap();
    messages.truncate(1);
    messages[0]["image"]["id"] = json!(media_id);
    messages[0]["image"]["sha256"] =
        json!(base64::engine::general_purpose::STANDARD.encode(parley_whatsapp::media::sha256(&jpeg)));
    messages[0]["image"]["caption"] = json!("My broken blender");
    assert_eq!(server.webhook(&photo, APP_SECRET).await.0, StatusCode::OK);
    let image = ids::inbound_message_id(TENANT, "wamid.IMG0001");
    server
        .eventually(Duration::from_secs(20), || async {
            let (_, m) = server.get(&token, &format!("/v1/messages/{image}")).await;
            (m["media"]["state"] == "stored").then_some(())
        })
        .await;

    let reply =
        json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Sorry about the blender, Sheena"}});
    assert_eq!(server.post(&token, "/v1/messages", &reply).await.0, StatusCode::ACCEPTED);
    let patch = json!({"tags": ["vip"], "attributes": {"city": "Lisbon"}});
    let r = server.http.patch(format!("{}/v1/contacts/{CUSTOMER}", server.base)).bearer_auth(&token).json(&patch);
    assert_eq!(read(r.send().await.unwrap()).await.0, StatusCode::OK);
    server.settled().await;
    (server, fake, token, jpeg)
}

async fn delete(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    read(server.http.delete(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap()).await
}

fn bodies(messages: &Value) -> Vec<Value> {
    messages.as_array().unwrap().iter().map(|m| m["content"]["body"].clone()).collect()
}

#[tokio::test]
async fn an_export_holds_everything_about_the_contact() {
    let (server, _fake, token, _) = setup().await;
    let path = format!("/v1/contacts/{CUSTOMER}/export");
    let agent = server.token(TENANT, Role::Agent);
    assert_eq!(server.get(&agent, &path).await.0, StatusCode::FORBIDDEN, "owners and admins only");
    let other = server.token("globex", Role::Owner);
    assert_eq!(server.get(&other, &path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.get(&token, "/v1/contacts/4915100000000/export").await.0, StatusCode::NOT_FOUND);

    let (status, export) = server.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["contact"]["name"], "Sheena Nelson");
    assert_eq!(export["contact"]["tags"], json!(["vip"]));
    assert_eq!(export["contact"]["attributes"], json!({"city": "Lisbon"}));
    assert_eq!(export["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(export["conversations"][0]["contact"]["name"], "Sheena Nelson");
    let messages = &export["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 3, "{messages}");
    let mut said = bodies(messages);
    said.sort_by_key(|b| b.to_string());
    let expected = [json!("Does it come in another color?"), json!("Sorry about the blender, Sheena"), Value::Null];
    assert_eq!(said, expected, "the text, the photo (no body) and the reply");
    let times: Vec<&str> = messages.as_array().unwrap().iter().map(|m| m["created_at"].as_str().unwrap()).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    let photo = messages.as_array().unwrap().iter().find(|m| m["type"] == "image").expect("the photo");
    assert_eq!(photo["content"]["caption"], "My broken blender");
    assert_eq!(photo["media"]["state"], "stored");
    server.stop().await;
}

/// Archived messages are part of the export, each once, also after their
/// month is restored (and so both hot and in the archive).
#[tokio::test]
async fn an_export_includes_archived_messages_once() {
    let (server, _fake, token, _) = setup().await;
    let path = format!("/v1/contacts/{CUSTOMER}/export");
    let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
    let months = server.ops.archive_before(TENANT, cutoff, |_, _| async { Ok(()) }).await.unwrap();
    assert_eq!(months.iter().map(|m| m.streams).sum::<usize>(), 3, "{months:?}");
    assert_eq!(server.app.read_models.count_messages(TENANT).await.unwrap(), 0, "nothing left hot");

    let mut later = fresh(fixture("inbound_text.json"));
    let message = &mut later["entry"][0]["changes"][0]["value"]["messages"][0];
    message["id"] = json!("wamid.LATER");
    message["text"]["body"] = json!("Any news on the blender?");
    // WhatsApp stamps whole seconds: a second later is surely after the reply.
    message["timestamp"] = json!((chrono::Utc::now().timestamp() + 1).to_string());
    assert_eq!(server.webhook(&later, APP_SECRET).await.0, StatusCode::OK);
    server.settled().await;

    let exported = |export: &Value| -> (Vec<Value>, usize) {
        let messages = export["messages"].as_array().unwrap();
        let ids: std::collections::BTreeSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
        (bodies(&export["messages"]), ids.len())
    };
    let (status, export) = server.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let (said, distinct) = exported(&export);
    assert_eq!((said.len(), distinct), (4, 4), "three archived and one hot: {export}");
    assert_eq!(said.last(), Some(&json!("Any news on the blender?")), "oldest first");
    assert!(said.contains(&json!("Sorry about the blender, Sheena")), "archived content is opened: {said:?}");
    let photo = export["messages"].as_array().unwrap().iter().find(|m| m["type"] == "image").expect("the photo");
    assert_eq!(photo["content"]["caption"], "My broken blender");

    for month in &months {
        server.ops.restore_month(TENANT, Month::parse(&month.month).unwrap()).await.unwrap();
    }
    assert_eq!(server.app.read_models.count_messages(TENANT).await.unwrap(), 4, "all hot again");
    let (_, export) = server.get(&token, &path).await;
    let (said, distinct) = exported(&export);
    assert_eq!((said.len(), distinct), (4, 4), "each message once: {export}");
    server.stop().await;
}

#[tokio::test]
async fn erasure_shreds_the_contact_everywhere_and_a_new_message_starts_afresh() {
    let (server, _fake, token, _) = setup().await;
    let path = format!("/v1/contacts/{CUSTOMER}");
    let image = ids::inbound_message_id(TENANT, "wamid.IMG0001");
    let blob_key = ids::inbound_media_blob_key(TENANT, image);
    assert!(server.app.blobs.get(&blob_key).await.unwrap().is_some());
    let (_, found) = server.get(&token, "/v1/messages/search?q=blender").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 2);
    let conversation = ids::conversation_id(TENANT, PNID, CUSTOMER);
    let message_events = server.app.store.read_stream(&ids::message_stream(TENANT, image), 0).await.unwrap();

    let agent = server.token(TENANT, Role::Agent);
    assert_eq!(delete(&server, &agent, &path).await.0, StatusCode::FORBIDDEN);
    let other = server.token("globex", Role::Owner);
    assert_eq!(delete(&server, &other, &path).await.0, StatusCode::NOT_FOUND);
    let (status, erasure) = delete(&server, &token, &path).await;
    assert_eq!(status, StatusCode::OK, "{erasure}");
    assert_eq!(erasure["wa_id"], CUSTOMER);
    assert_eq!((erasure["conversations"].as_u64(), erasure["messages"].as_u64()), (Some(1), Some(3)));
    assert_eq!(erasure["media_files"], 1);
    server.settled().await;

    // The directory no longer knows the contact; the media file is gone.
    assert_eq!(server.get(&token, &path).await.0, StatusCode::NOT_FOUND);
    let (_, contacts) = server.get(&token, "/v1/contacts").await;
    assert_eq!(contacts["items"], json!([]));
    assert_eq!(server.get(&token, &format!("{path}/export")).await.0, StatusCode::NOT_FOUND);
    // Asking again records nothing new and runs the cleanup again.
    let (status, again) = delete(&server, &token, &path).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((again["messages"].as_u64(), again["conversations"].as_u64()), (Some(3), Some(1)));
    assert_eq!(delete(&server, &token, "/v1/contacts/4915100000000").await.0, StatusCode::NOT_FOUND);
    assert!(server.app.blobs.get(&blob_key).await.unwrap().is_none());

    // Messages and the conversation stay, their personal fields unreadable.
    let (_, list) = server.get(&token, &format!("/v1/messages?conversation_id={conversation}")).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|m| m["content"].is_null()), "{list}");
    let (_, c) = server.get(&token, &format!("/v1/conversations/{conversation}")).await;
    assert_eq!(c["contact"]["name"], Value::Null, "{c}");
    assert_eq!(c["last_message"]["text"], Value::Null, "{c}");
    let (_, found) = server.get(&token, "/v1/messages/search?q=blender").await;
    assert_eq!(found["items"], json!([]));
    let terms = server.app.blinder.terms(TENANT, &["blender".to_string()], false).await.unwrap().unwrap();
    assert!(server.app.blinder.index().search(TENANT, &terms, None, 10).await.unwrap().items.is_empty());

    // The events stay as they were (sealed), and the erasure is one of them.
    assert_eq!(server.app.store.read_stream(&ids::message_stream(TENANT, image), 0).await.unwrap(), message_events);
    let contact_events = server.app.store.read_stream(&ids::contact_stream(TENANT, CUSTOMER), 0).await.unwrap();
    assert_eq!(contact_events.last().unwrap().event_type, "ContactErased");
    assert_eq!(contact_events.iter().filter(|e| e.event_type == "ContactErased").count(), 1, "recorded once");
    server.settled().await;
    let (status, audit) = server.get(&token, "/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let erased: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["type"] == "ContactErased").collect();
    assert_eq!(erased.len(), 1, "{audit}");
    assert_eq!(erased[0]["actor"], "user:tester");

    // The customer writes again: a new contact with a new key; the old messages stay unreadable.
    let mut again = fresh(fixture("inbound_text.json"));
    again["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.AGAIN");
    again["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!("Hello again, blender fixed?");
    assert_eq!(server.webhook(&again, APP_SECRET).await.0, StatusCode::OK);
    server.settled().await;
    let (status, contact) = server.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert_eq!((contact["name"].as_str(), contact["tags"].clone()), (Some("Sheena Nelson"), json!([])));
    let (_, list) = server.get(&token, &format!("/v1/messages?conversation_id={conversation}")).await;
    let readable: Vec<Value> = bodies(&list["items"]).into_iter().filter(|b| !b.is_null()).collect();
    assert_eq!(list["items"].as_array().unwrap().len(), 4, "{list}");
    assert_eq!(readable, [json!("Hello again, blender fixed?")], "only the new message reads: {list}");
    let (_, found) = server.get(&token, "/v1/messages/search?q=blender").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

/// Replies not yet sent when their contact is erased (at least one is held
/// back by the pair rate limit) never go out: their content no longer opens.
#[tokio::test]
async fn a_reply_held_back_at_erasure_fails_and_never_goes_out() {
    let (server, fake, token, _) = setup().await;
    // The setup's reply took one send of the pair's burst of ten; the
    // eleventh reply waits about six seconds for the pair's next send.
    let mut replies = Vec::new();
    for n in 0..10 {
        let reply = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": format!("Update {n}")}});
        let (status, queued) = server.post(&token, "/v1/messages", &reply).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        replies.push(queued["id"].as_str().unwrap().to_owned());
    }
    let (status, erasure) = delete(&server, &token, &format!("/v1/contacts/{CUSTOMER}")).await;
    assert_eq!(status, StatusCode::OK, "{erasure}");
    // Each reply either went out (it has a wamid) or failed.
    let conversation = ids::conversation_id(TENANT, PNID, CUSTOMER);
    let settled = server
        .eventually(Duration::from_secs(20), || async {
            let (_, page) = server.get(&token, &format!("/v1/messages?conversation_id={conversation}")).await;
            let views: Vec<Value> = page["items"]
                .as_array()?
                .iter()
                .filter(|m| replies.iter().any(|id| m["id"] == id.as_str()))
                .cloned()
                .collect();
            let done =
                views.len() == replies.len() && views.iter().all(|m| !m["wamid"].is_null() || m["status"] == "failed");
            done.then_some(views)
        })
        .await;
    // At least the held reply failed; any other whose turn came after the
    // erasure failed the same way. None of them reached WhatsApp.
    let failed: Vec<&Value> = settled.iter().filter(|m| m["status"] == "failed").collect();
    assert!(!failed.is_empty(), "the held reply failed: {settled:?}");
    for m in &failed {
        assert_eq!((m["error"]["kind"].as_str(), &m["wamid"]), (Some("contact_erased"), &Value::Null), "{m}");
    }
    let sent: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/messages")).collect();
    assert_eq!(sent.len(), 1 + replies.len() - failed.len(), "the setup's reply and the replies that did not fail");
    server.stop().await;
}
