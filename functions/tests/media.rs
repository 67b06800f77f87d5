//! Media end to end on the local runtime, against the strict Graph API fake:
//! inbound files land in the blob store and are served back, outbound files
//! uploaded to Parley go to WhatsApp's media store before the send names
//! them, and files WhatsApp would refuse are refused before anything is queued.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use parley_app::auth::Role;
use parley_domain::ids;
use parley_whatsapp::fake::FakeAnswer;
use serde_json::{json, Value};

const TENANT: &str = "acme";

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(parley_whatsapp::media::sha256(bytes))
}

/// The message as the API shows it, once `probe` holds.
async fn message_when(server: &Server, token: &str, id: uuid::Uuid, probe: impl Fn(&Value) -> bool) -> Value {
    server
        .eventually(Duration::from_secs(20), || async {
            let (status, m) = server.get(token, &format!("/v1/messages/{id}")).await;
            (status == StatusCode::OK && probe(&m)).then_some(m)
        })
        .await
}

async fn get_raw(server: &Server, token: &str, path: &str) -> reqwest::Response {
    server.http.get(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap()
}

async fn upload(server: &Server, token: &str, mime: &str, bytes: Vec<u8>, query: &str) -> (StatusCode, Value) {
    let r = server
        .http
        .post(format!("{}/v1/media{query}", server.base))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(bytes)
        .send()
        .await
        .unwrap();
    read(r).await
}

#[tokio::test]
async fn inbound_media_is_fetched_into_blobs_and_served_back() {
    let (server, fake, token) = server_with_strict_fake(TENANT).await;
    let jpeg: Vec<u8> = b"\xff\xd8\xff\xe0JFIF".iter().copied().chain((0..=255u8).cycle().take(4000)).collect();
    let pdf = b"%PDF-1.7 the order confirmation".to_vec();
    let voice = b"OggS\0\x02 opus voice note".to_vec();
    let image_id = fake.add_media(PNID, "image/jpeg", jpeg.clone());
    let document_id = fake.add_media(PNID, "application/pdf", pdf.clone());
    let audio_id = fake.add_media(PNID, "audio/ogg", voice.clone());
    // The document arrives corrupted; the audio's first look-up meets an outage.
    fake.corrupt_media(&document_id);
    fake.script_media(&audio_id, [FakeAnswer::Error(131000)]);

    let mut body = fresh(fixture("inbound_media.json"));
    let messages = body["entry"][0]["changes"][0]["value"]["messages"].as_array_mut().unwrap();
    for (message, (id, bytes)) in
        messages.iter_mut().zip([(&image_id, &jpeg), (&document_id, &pdf), (&audio_id, &voice)])
    {
        let kind = message["type"].as_str().unwrap().to_owned();
        message[&kind]["id"] = json!(id);
        // Webhooks carry the hash base64-encoded.
        message[&kind]["sha256"] = json!(b64_sha256(bytes));
    }
    let (status, outcome) = server.webhook(&body, APP_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["messages"], 4);

    let image = ids::inbound_message_id(TENANT, "wamid.IMG0001");
    let document = ids::inbound_message_id(TENANT, "wamid.DOC0001");
    let audio = ids::inbound_message_id(TENANT, "wamid.AUD0001");
    let location = ids::inbound_message_id(TENANT, "wamid.LOC0001");

    let m = message_when(&server, &token, image, |m| m["media"]["state"] == "stored").await;
    assert_eq!(m["media"]["mime_type"], "image/jpeg");
    assert_eq!(m["media"]["size"], jpeg.len());
    assert_eq!(m["media"]["sha256"], hex::encode(parley_whatsapp::media::sha256(&jpeg)));
    assert!(m["media"].get("blob_key").is_none(), "blob keys stay inside Parley");
    let blob = server.app.blobs.get(&ids::inbound_media_blob_key(TENANT, image)).await.unwrap().expect("in blobs");
    assert_eq!(blob.bytes.as_ref(), jpeg.as_slice(), "the bytes landed in the blob store");

    let r = get_raw(&server, &token, &format!("/v1/messages/{image}/media")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), jpeg.as_slice());

    let m = message_when(&server, &token, document, |m| m["media"]["state"] == "failed").await;
    assert!(m["media"]["error"].as_str().unwrap().contains("sha256_mismatch"), "{m}");
    let (status, problem) = server.get(&token, &format!("/v1/messages/{document}/media")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(server.app.blobs.get(&ids::inbound_media_blob_key(TENANT, document)).await.unwrap().is_none());

    // The outage was retried.
    let m = message_when(&server, &token, audio, |m| m["media"]["state"] == "stored").await;
    assert_eq!(m["media"]["mime_type"], "audio/ogg; codecs=opus", "the webhook's own type is kept");
    let r = get_raw(&server, &token, &format!("/v1/messages/{audio}/media")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), voice.as_slice());
    let audio_lookups = fake.requests().iter().filter(|r| r.path == format!("/v26.0/{audio_id}")).count();
    assert_eq!(audio_lookups, 2, "one failed look-up, one retry");

    let (_, m) = server.get(&token, &format!("/v1/messages/{location}")).await;
    assert!(m["media"].is_null(), "a location has no file: {m}");
    let (status, _) = server.get(&token, &format!("/v1/messages/{location}/media")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another tenant gets 404 for the same message.
    let other = server.token("other-tenant", Role::Owner);
    let (status, problem) = server.get(&other, &format!("/v1/messages/{image}/media")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(fake.refused().is_empty(), "every call was well-formed: {:?}", fake.refused());
    // Every download carried the number's token (the fake refuses others),
    // and a redelivered webhook fetches nothing again.
    let before = fake.requests().len();
    server.webhook(&body, APP_SECRET).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), before);
    server.stop().await;
}

#[tokio::test]
async fn outbound_by_blob_id_uploads_then_sends_by_media_id() {
    let (server, fake, token) = server_with_strict_fake(TENANT).await;
    // The customer wrote, so the window is open.
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n".iter().copied().chain((0..=255u8).cycle().take(10_000)).collect();
    let (status, uploaded) = upload(&server, &token, "image/png", png.clone(), "").await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["mime_type"], "image/png");
    assert_eq!(uploaded["size"], png.len());
    let blob_id = uploaded["blob_id"].as_str().unwrap().to_owned();

    let pdf = b"%PDF-1.7 invoice".to_vec();
    let (status, doc) = upload(&server, &token, "application/pdf", pdf.clone(), "?filename=invoice.pdf").await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");

    let send = json!({"from": PNID, "to": CUSTOMER, "type": "image",
                      "image": {"blob_id": blob_id, "caption": "your order"}});
    let (status, queued) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id: uuid::Uuid = queued["id"].as_str().unwrap().parse().unwrap();
    let m = message_when(&server, &token, id, |m| m["wamid"].is_string()).await;
    assert_eq!(m["content"]["blob_id"], blob_id.as_str(), "the message keeps what was asked: {m}");

    let document = json!({"from": PNID, "to": CUSTOMER, "type": "document",
                          "document": {"blob_id": doc["blob_id"], "caption": "invoice"}});
    let (status, queued) = server.post(&token, "/v1/messages", &document).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let doc_message: uuid::Uuid = queued["id"].as_str().unwrap().parse().unwrap();
    message_when(&server, &token, doc_message, |m| m["wamid"].is_string()).await;

    let requests = fake.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    let media_path = format!("/v26.0/{PNID}/media");
    let messages_path = format!("/v26.0/{PNID}/messages");
    assert_eq!(paths, vec![&media_path, &messages_path, &media_path, &messages_path], "upload, then send, per message");
    assert_eq!(requests[0].body["messaging_product"], "whatsapp");
    assert_eq!(requests[0].body["type"], "image/png");
    assert_eq!(requests[0].body["file"]["size"], png.len());
    let sent = &requests[1].body;
    assert_eq!(sent["type"], "image");
    assert_eq!(sent["image"]["caption"], "your order");
    assert!(sent["image"].get("blob_id").is_none(), "Parley's blob id never reaches WhatsApp: {sent}");
    let media_id = sent["image"]["id"].as_str().expect("sent by media id");
    let stored = fake.media(media_id).expect("the id the upload answered");
    assert_eq!(stored.bytes.as_ref(), png.as_slice());
    assert_eq!(requests[2].body["file"]["filename"], "invoice.pdf");
    let doc_id = requests[3].body["document"]["id"].as_str().unwrap();
    assert_eq!(fake.media(doc_id).unwrap().bytes.as_ref(), pdf.as_slice());
    assert!(fake.refused().is_empty(), "{:?}", fake.refused());
    server.stop().await;
}

#[tokio::test]
async fn files_whatsapp_would_refuse_are_refused_before_anything_is_queued() {
    let (server, fake, token) = server_with_strict_fake(TENANT).await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    server.settled().await;
    let messages_before = server.app.read_models.count_messages(TENANT).await.unwrap();

    let too_big = vec![0u8; (parley_domain::media::IMAGE_MAX_BYTES + 1) as usize];
    let (status, problem) = upload(&server, &token, "image/png", too_big, "").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("media_too_large")));
    let (status, problem) = upload(&server, &token, "image/gif", b"GIF89a".to_vec(), "").await;
    assert_eq!(problem["code"], "media_type_unsupported", "{status} {problem}");
    let static_sticker = [b"RIFF\0\0\0\0WEBPVP8 ".to_vec(), vec![0u8; 150 * 1024]].concat();
    let (status, problem) = upload(&server, &token, "image/webp", static_sticker, "").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("media_too_large")));
    let (status, problem) = upload(&server, &token, "application/pdf", Vec::new(), "").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("media_empty")));

    let head = server.event_log_head().await;
    let (_, pdf) = upload(&server, &token, "application/pdf", b"%PDF-1.7".to_vec(), "").await;
    assert!(server.event_log_head().await > head, "an upload is recorded");
    let head = server.event_log_head().await;
    let refused = [
        // A PDF is not an image.
        (json!({"type": "image", "image": {"blob_id": pdf["blob_id"]}}), "media_type_unsupported"),
        (json!({"type": "sticker", "sticker": {"blob_id": pdf["blob_id"]}}), "media_type_unsupported"),
        // No such upload.
        (json!({"type": "video", "video": {"blob_id": uuid::Uuid::now_v7()}}), "media_not_found"),
    ];
    for (content, code) in refused {
        let mut send = content.clone();
        send["from"] = json!(PNID);
        send["to"] = json!(CUSTOMER);
        let (status, problem) = server.post(&token, "/v1/messages", &send).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{content}: {problem}");
        assert_eq!(problem["code"], code, "{content}: {problem}");
    }
    // Another tenant cannot send this tenant's upload.
    let other = server.token("other-tenant", Role::Owner);
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "document", "document": {"blob_id": pdf["blob_id"]}});
    let (status, problem) = server.post(&other, "/v1/messages", &send).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("media_not_found")));

    assert_eq!(server.event_log_head().await, head, "nothing was recorded");
    server.settled().await;
    assert_eq!(server.app.read_models.count_messages(TENANT).await.unwrap(), messages_before, "nothing queued");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.requests().is_empty(), "WhatsApp saw nothing: {:?}", fake.requests());
    server.stop().await;
}
