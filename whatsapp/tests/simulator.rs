//! The simulator end to end: Parley's client sends through it, and a local
//! webhook receiver gets what Meta would post.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use chrono::Utc;
use parley_whatsapp::client::{Credentials, GraphClient, SendError, WhatsAppApi};
use parley_whatsapp::errors::ErrorKind;
use parley_whatsapp::send::SendRequest;
use parley_whatsapp::signature::verify;
use parley_whatsapp::simulator::{router, NumberProfile, RetrySchedule, Simulator, SimulatorConfig, StaticDirectory};
use parley_whatsapp::webhook::{parse, StatusKind, StatusUpdate, WebhookItem};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const PNID: &str = "106540352242922";
const DISPLAY: &str = "15550783881";
const WABA: &str = "102290129340398";
const TOKEN: &str = "EAAG-simulated";
const SECRET: &str = "app-secret";
const CUSTOMER: &str = "16505551234";
const WAIT: Duration = Duration::from_secs(5);

/// A signed webhook as the receiver got it.
struct Received {
    signature: Option<String>,
    body: Bytes,
}

/// A webhook receiver on loopback answering `status` to the first
/// `failures` posts and 200 after; returns its URL, what it received and the
/// number of posts.
async fn receiver(failures: u32) -> (String, mpsc::UnboundedReceiver<Received>, Arc<AtomicU32>) {
    let (sender, received) = mpsc::unbounded_channel();
    let posts = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&posts);
    let app = Router::new().route(
        "/webhooks/whatsapp",
        post(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            let counter = Arc::clone(&counter);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let signature =
                    headers.get("x-hub-signature-256").and_then(|value| value.to_str().ok()).map(str::to_owned);
                let _ = sender.send(Received { signature, body });
                StatusCode::OK
            }
        }),
    );
    let base = common::serve(app).await;
    (format!("{base}/webhooks/whatsapp"), received, posts)
}

struct World {
    simulator: Arc<Simulator>,
    base: String,
    client: GraphClient,
    webhooks: mpsc::UnboundedReceiver<Received>,
    posts: Arc<AtomicU32>,
}

async fn world(read_receipts: bool, failures: u32) -> World {
    let (webhook_url, webhooks, posts) = receiver(failures).await;
    let directory = StaticDirectory::new().with_number(
        PNID,
        TOKEN,
        SECRET,
        NumberProfile { display_phone_number: Some(DISPLAY.into()), waba_id: Some(WABA.into()) },
    );
    let simulator = Simulator::with_retry_schedule(
        SimulatorConfig { webhook_url, status_delay: Duration::from_millis(20), read_receipts },
        Arc::new(directory),
        RetrySchedule { attempts: 3, first_delay: Duration::from_millis(20), timeout: Duration::from_secs(2) },
    );
    let base = common::serve(Router::new().nest("/simulator", router(Arc::clone(&simulator)))).await;
    let client = GraphClient::new(&format!("{base}/simulator"), "v26.0", Duration::from_secs(5));
    World { simulator, base, client, webhooks, posts }
}

fn creds() -> Credentials {
    Credentials { phone_number_id: PNID.into(), access_token: TOKEN.into() }
}

/// The next webhook: its signature verified, its single item returned.
async fn next_item(webhooks: &mut mpsc::UnboundedReceiver<Received>) -> WebhookItem {
    let received =
        tokio::time::timeout(WAIT, webhooks.recv()).await.expect("a webhook in time").expect("receiver open");
    verify(SECRET.as_bytes(), &received.body, received.signature.as_deref())
        .expect("signed with the number's app secret");
    let mut items = parse(&received.body).expect("parses").items();
    assert_eq!(items.len(), 1);
    items.remove(0)
}

async fn next_status(webhooks: &mut mpsc::UnboundedReceiver<Received>) -> StatusUpdate {
    match next_item(webhooks).await {
        WebhookItem::Status { phone_number_id, waba_id, status } => {
            assert_eq!(phone_number_id, PNID);
            assert_eq!(waba_id, WABA);
            status
        }
        other => panic!("expected a status, got {other:?}"),
    }
}

#[tokio::test]
async fn a_send_gets_sent_delivered_and_read_in_order_signed_and_echoed() {
    let mut world = world(true, 0).await;
    let mut request = SendRequest::text(CUSTOMER, "Your order shipped");
    request.biz_opaque_callback_data = Some("parley-msg-1".into());
    let before = Utc::now().timestamp();
    let accepted = world.client.send(&creds(), &request).await.expect("accepted");
    assert!(accepted.wamid.starts_with("wamid."));
    assert_eq!(accepted.message_status.as_deref(), Some("accepted"));

    let mut kinds = Vec::new();
    for _ in 0..3 {
        let status = next_status(&mut world.webhooks).await;
        assert_eq!(status.wamid, accepted.wamid);
        assert_eq!(status.recipient_id, CUSTOMER);
        assert_eq!(status.biz_opaque_callback_data.as_deref(), Some("parley-msg-1"));
        assert!(status.timestamp.timestamp() >= before);
        match status.status {
            StatusKind::Sent | StatusKind::Delivered => {
                let pricing = status.pricing.expect("pricing on sent and delivered");
                assert_eq!(pricing.billable, Some(false));
                assert_eq!(pricing.pricing_model.as_deref(), Some("PMP"));
                assert_eq!(pricing.category.as_deref(), Some("service"));
                assert_eq!(pricing.pricing_type.as_deref(), Some("free_customer_service"));
            }
            _ => assert_eq!(status.pricing, None),
        }
        kinds.push(status.status);
    }
    assert_eq!(kinds, [StatusKind::Sent, StatusKind::Delivered, StatusKind::Read]);

    let sent = world.simulator.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].wamid, accepted.wamid);
    assert_eq!(sent[0].phone_number_id, PNID);
    assert_eq!(sent[0].request, request);
}

#[tokio::test]
async fn templates_are_billed_and_read_receipts_can_be_off() {
    let mut world = world(false, 0).await;
    let request = SendRequest {
        to: CUSTOMER.into(),
        kind: "template".into(),
        content: json!({"name": "order_confirmation", "language": {"code": "en_US"}}),
        context_message_id: None,
        biz_opaque_callback_data: None,
    };
    let accepted = world.client.send(&creds(), &request).await.expect("accepted");
    for expected in [StatusKind::Sent, StatusKind::Delivered] {
        let status = next_status(&mut world.webhooks).await;
        assert_eq!(status.status, expected);
        assert_eq!(status.wamid, accepted.wamid);
        assert_eq!(status.biz_opaque_callback_data, None);
        let pricing = status.pricing.expect("pricing");
        assert_eq!(pricing.billable, Some(true));
        assert_eq!(pricing.category.as_deref(), Some("utility"));
        assert_eq!(pricing.pricing_type.as_deref(), Some("regular"));
    }
    // Without read receipts nothing follows delivered.
    let more = tokio::time::timeout(Duration::from_millis(200), world.webhooks.recv()).await;
    assert!(more.is_err(), "no read status without read receipts");
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_code_190() {
    let world = world(true, 0).await;
    let wrong = Credentials { phone_number_id: PNID.into(), access_token: "not-it".into() };
    let error = world.client.send(&wrong, &SendRequest::text(CUSTOMER, "Hi")).await.expect_err("refused");
    assert!(
        matches!(error, SendError::Api { http_status: 401, code: 190, kind: ErrorKind::AuthError, .. }),
        "{error:?}"
    );

    let response = reqwest::Client::new()
        .post(format!("{}/simulator/v26.0/{PNID}/messages", world.base))
        .json(&json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "Hi"}}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], 190);
    assert!(body["error"]["fbtrace_id"].is_string());
    assert!(world.simulator.sent().is_empty());
}

#[tokio::test]
async fn unknown_numbers_and_invalid_bodies_get_code_100() {
    let world = world(true, 0).await;
    let unknown = Credentials { phone_number_id: "999".into(), access_token: TOKEN.into() };
    let error = world.client.send(&unknown, &SendRequest::text(CUSTOMER, "Hi")).await.expect_err("unknown number");
    assert!(
        matches!(
            error,
            SendError::Api { http_status: 400, code: 100, subcode: Some(33), kind: ErrorKind::InvalidParameter, .. }
        ),
        "{error:?}"
    );

    let too_long = SendRequest::text(CUSTOMER, "x".repeat(4097));
    let error = world.client.send(&creds(), &too_long).await.expect_err("too long");
    match error {
        SendError::Api { http_status: 400, code: 100, message, .. } => {
            assert!(message.contains("text.body"), "{message}")
        }
        other => panic!("expected code 100, got {other:?}"),
    }
    assert!(world.simulator.sent().is_empty());

    let wrong_version = reqwest::Client::new()
        .post(format!("{}/simulator/latest/{PNID}/messages", world.base))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_version.status(), 400);
}

#[tokio::test]
async fn mark_as_read_is_answered_with_success() {
    let world = world(true, 0).await;
    let response = reqwest::Client::new()
        .post(format!("{}/simulator/v26.0/{PNID}/messages", world.base))
        .bearer_auth(TOKEN)
        .json(&json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"success": true}));
    assert!(world.simulator.sent().is_empty(), "marking read sends nothing");
}

async fn inject(base: &str, phone_number_id: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/simulator/_inbound/{phone_number_id}"))
        .json(&body)
        .send()
        .await
        .expect("answer")
}

#[tokio::test]
async fn inbound_text_arrives_as_one_signed_message() {
    let mut world = world(true, 0).await;
    let before = Utc::now().timestamp();
    let response =
        inject(&world.base, PNID, json!({"from": CUSTOMER, "name": "Sheena Nelson", "text": "Does it come in blue?"}))
            .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let wamid = answer["wamid"].as_str().expect("wamid").to_owned();

    match next_item(&mut world.webhooks).await {
        WebhookItem::Message { phone_number_id, display_phone_number, waba_id, contact_name, message } => {
            assert_eq!(phone_number_id, PNID);
            assert_eq!(display_phone_number, DISPLAY);
            assert_eq!(waba_id, WABA);
            assert_eq!(contact_name.as_deref(), Some("Sheena Nelson"));
            assert_eq!(message.wamid, wamid);
            assert_eq!(message.from, CUSTOMER);
            assert_eq!(message.kind, "text");
            assert_eq!(message.text(), Some("Does it come in blue?"));
            assert!(message.timestamp.timestamp() >= before);
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn inbound_other_types_and_replies() {
    let mut world = world(true, 0).await;
    let response = inject(
        &world.base,
        PNID,
        json!({"from": CUSTOMER, "type": "interactive", "context_message_id": "wamid.OUT1",
               "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}}),
    )
    .await;
    assert_eq!(response.status(), 202);
    match next_item(&mut world.webhooks).await {
        WebhookItem::Message { contact_name, message, .. } => {
            assert_eq!(contact_name, None);
            assert_eq!(message.kind, "interactive");
            assert_eq!(message.text(), Some("Yes"));
            assert_eq!(message.context.expect("context")["id"], "wamid.OUT1");
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn inbound_mistakes_are_refused() {
    let world = world(true, 0).await;
    let unknown = inject(&world.base, "999", json!({"from": CUSTOMER, "text": "Hi"})).await;
    assert_eq!(unknown.status(), 404);
    for body in [
        json!({"from": "not-a-number", "text": "Hi"}),
        json!({"from": CUSTOMER}),
        json!({"from": CUSTOMER, "type": "image"}),
        json!({"text": "Hi"}),
    ] {
        let response = inject(&world.base, PNID, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.expect("json");
        assert_eq!(answer["error"]["code"], 100, "{body}");
    }
}

#[tokio::test]
async fn webhooks_are_retried_until_accepted() {
    let mut world = world(true, 2).await;
    let response = inject(&world.base, PNID, json!({"from": CUSTOMER, "text": "Hello?"})).await;
    assert_eq!(response.status(), 202);
    match next_item(&mut world.webhooks).await {
        WebhookItem::Message { message, .. } => assert_eq!(message.text(), Some("Hello?")),
        other => panic!("expected a message, got {other:?}"),
    }
    assert_eq!(world.posts.load(Ordering::SeqCst), 3, "two refusals, then delivery");
}

#[tokio::test]
async fn delivery_gives_up_after_its_attempts() {
    let world = world(true, u32::MAX).await;
    let response = inject(&world.base, PNID, json!({"from": CUSTOMER, "text": "Anyone?"})).await;
    assert_eq!(response.status(), 202);
    // Three attempts 20 ms then 40 ms apart; wait well past them.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(world.posts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_sent_log_is_bounded() {
    let world = world(false, 0).await;
    let extra = 5;
    let total = parley_whatsapp::simulator::SENT_LOG_CAPACITY + extra;
    let mut first_wamids = Vec::new();
    for i in 0..total {
        let accepted =
            world.client.send(&creds(), &SendRequest::text(CUSTOMER, format!("n{i}"))).await.expect("accepted");
        if i < extra {
            first_wamids.push(accepted.wamid);
        }
    }
    let sent = world.simulator.sent();
    assert_eq!(sent.len(), parley_whatsapp::simulator::SENT_LOG_CAPACITY);
    assert!(sent.iter().all(|record| !first_wamids.contains(&record.wamid)));
    assert_eq!(sent[0].request.content["body"], format!("n{extra}"));
}
