//! The Graph API client against small loopback servers that answer with the
//! fixture bodies, hang, or are not there at all.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use parley_whatsapp::client::{Credentials, GraphClient, SendError, WhatsAppApi};
use parley_whatsapp::errors::{ErrorKind, RetryPolicy};
use parley_whatsapp::send::SendRequest;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// What the fake Graph API saw: path number, authorization header, body.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

fn creds() -> Credentials {
    Credentials { phone_number_id: "106540352242922".into(), access_token: "EAAG-token".into() }
}

/// A Graph API stand-in answering every send with `status` and `body`.
async fn graph_answering(status: StatusCode, body: Vec<u8>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let app = Router::new().route(
        "/{version}/{pnid}/messages",
        post(move |Path((version, pnid)): Path<(String, String)>, headers: HeaderMap, request: Bytes| {
            let log = Arc::clone(&log);
            let body = body.clone();
            async move {
                assert_eq!(version, "v26.0");
                let auth = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
                let json: Value = serde_json::from_slice(&request).unwrap_or(Value::Null);
                log.lock().expect("log").push((pnid, auth, json));
                (status, [(header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    (common::serve(app).await, seen)
}

fn client(base: &str, timeout: Duration) -> GraphClient {
    GraphClient::new(base, "v26.0", timeout)
}

#[tokio::test]
async fn an_accepted_send_returns_the_wamid_and_sends_the_cloud_api_shape() {
    let (base, seen) = graph_answering(StatusCode::OK, common::fixture("send_response.json")).await;
    let mut request = SendRequest::text("16505551234", "Hello");
    request.context_message_id = Some("wamid.IN1".into());
    request.biz_opaque_callback_data = Some("msg-42".into());
    let accepted = client(&base, Duration::from_secs(5)).send(&creds(), &request).await.expect("accepted");
    assert_eq!(accepted.wamid, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
    assert_eq!(accepted.message_status.as_deref(), Some("accepted"));

    let seen = seen.lock().expect("log");
    let (pnid, auth, body) = &seen[0];
    assert_eq!(pnid, "106540352242922");
    assert_eq!(auth.as_deref(), Some("Bearer EAAG-token"));
    assert_eq!(
        body,
        &json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "text",
            "text": {"body": "Hello"},
            "context": {"message_id": "wamid.IN1"},
            "biz_opaque_callback_data": "msg-42"
        })
    );
}

#[tokio::test]
async fn throughput_errors_are_classified_whatever_the_status() {
    for status in [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS] {
        let (base, _) = graph_answering(status, common::fixture("send_error_130429.json")).await;
        let error = client(&base, Duration::from_secs(5))
            .send(&creds(), &SendRequest::text("16505551234", "Hi"))
            .await
            .expect_err("refused");
        match &error {
            SendError::Api { http_status, code, subcode, message, kind, fbtrace_id } => {
                assert_eq!(*http_status, status.as_u16());
                assert_eq!(*code, 130429);
                assert_eq!(*subcode, None);
                assert!(message.starts_with("(#130429) Rate limit hit"), "{message}");
                assert!(message.contains("throughput has been reached"), "{message}");
                assert_eq!(*kind, ErrorKind::ThroughputLimit);
                assert_eq!(fbtrace_id.as_deref(), Some("AbCdEfGh124"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        assert_eq!(error.retry_policy(), RetryPolicy::Backoff);
    }
}

#[tokio::test]
async fn template_errors_are_template_errors() {
    let (base, _) = graph_answering(StatusCode::BAD_REQUEST, common::fixture("send_error_132000.json")).await;
    let error = client(&base, Duration::from_secs(5))
        .send(&creds(), &SendRequest::text("16505551234", "Hi"))
        .await
        .expect_err("refused");
    assert!(matches!(&error, SendError::Api { kind: ErrorKind::TemplateError, code: 132000, .. }), "{error:?}");
    assert_eq!(error.kind(), Some(ErrorKind::TemplateError));
    assert_eq!(error.retry_policy(), RetryPolicy::Never);
}

#[tokio::test]
async fn an_unreadable_server_error_is_a_protocol_error_worth_retrying() {
    let (base, _) = graph_answering(StatusCode::SERVICE_UNAVAILABLE, b"<html>down</html>".to_vec()).await;
    let error = client(&base, Duration::from_secs(5))
        .send(&creds(), &SendRequest::text("16505551234", "Hi"))
        .await
        .expect_err("refused");
    assert!(matches!(error, SendError::Protocol { http_status: 503, .. }), "{error:?}");
    assert_eq!(error.retry_policy(), RetryPolicy::Backoff);
}

#[tokio::test]
async fn a_server_that_never_answers_is_ambiguous() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    // Accept connections and read what comes, never answering.
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
            });
        }
    });
    let started = Instant::now();
    let error = client(&format!("http://{address}"), Duration::from_millis(300))
        .send(&creds(), &SendRequest::text("16505551234", "Hi"))
        .await
        .expect_err("no answer");
    assert!(matches!(error, SendError::Ambiguous(_)), "{error:?}");
    assert_eq!(error.retry_policy(), RetryPolicy::Never);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_closed_port_is_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let error = client(&format!("http://{address}"), Duration::from_secs(2))
        .send(&creds(), &SendRequest::text("16505551234", "Hi"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, SendError::NotSent(_)), "{error:?}");
    assert_eq!(error.retry_policy(), RetryPolicy::Backoff);
}

#[test]
fn credentials_do_not_print_the_token() {
    let printed = format!("{:?}", creds());
    assert!(printed.contains("106540352242922"));
    assert!(!printed.contains("EAAG-token"));
}
