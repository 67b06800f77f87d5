//! Runs the generator against a small HTTP/1 server on 127.0.0.1 that checks every request
//! the way Parley's webhook endpoint would (signature over the raw body, JSON shape) and
//! counts what it received.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parley_loadgen::{run, LoadConfig, RunIds, Target};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

const SECRET: &str = "loadgen-test-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";

/// How the test server answers.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Answer 503 to every n-th request (0: never).
    fail_every: u64,
    /// Wait this long before answering.
    delay: Duration,
}

const ALWAYS_OK: Behaviour = Behaviour { fail_every: 0, delay: Duration::ZERO };

#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    requests: AtomicU64,
    bad_signatures: AtomicU64,
    bad_bodies: AtomicU64,
    wamids: Mutex<HashSet<String>>,
    messages: AtomicU64,
    froms: Mutex<HashSet<String>>,
}

async fn start_server(behaviour: Behaviour) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds loopback");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            state.connections.fetch_add(1, Ordering::SeqCst);
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&state), behaviour, request));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, seen)
}

async fn handle(
    seen: Arc<Seen>,
    behaviour: Behaviour,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let number = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let signature = request.headers().get("x-hub-signature-256").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = request.into_body().collect().await?.to_bytes();
    tokio::time::sleep(behaviour.delay).await;

    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let valid = signature
        .as_deref()
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(|hex_tag| hex::decode(hex_tag).ok())
        .is_some_and(|tag| mac.verify_slice(&tag).is_ok());
    if !valid {
        seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return Ok(answer(StatusCode::UNAUTHORIZED));
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        seen.bad_bodies.fetch_add(1, Ordering::SeqCst);
        return Ok(answer(StatusCode::BAD_REQUEST));
    };
    let value = &json["entry"][0]["changes"][0]["value"];
    let messages = value["messages"].as_array().cloned().unwrap_or_default();
    if value["metadata"]["phone_number_id"] != PHONE_NUMBER_ID || messages.is_empty() {
        seen.bad_bodies.fetch_add(1, Ordering::SeqCst);
        return Ok(answer(StatusCode::BAD_REQUEST));
    }
    if number.checked_rem(behaviour.fail_every) == Some(0) {
        return Ok(answer(StatusCode::SERVICE_UNAVAILABLE));
    }
    for message in &messages {
        seen.messages.fetch_add(1, Ordering::SeqCst);
        let wamid = message["id"].as_str().unwrap_or_default().to_owned();
        seen.wamids.lock().expect("lock").insert(wamid);
        seen.froms.lock().expect("lock").insert(message["from"].as_str().unwrap_or_default().to_owned());
    }
    Ok(answer(StatusCode::OK))
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = status;
    response
}

fn config(addr: SocketAddr, messages: u64, per_webhook: u64) -> LoadConfig {
    LoadConfig {
        target: Target::parse(&format!("http://{addr}/webhooks/whatsapp")).expect("loopback"),
        app_secret: SECRET.as_bytes().to_vec(),
        phone_number_id: PHONE_NUMBER_ID.into(),
        display_phone_number: "15550783881".into(),
        waba_id: "102290129340398".into(),
        ids: RunIds::random(),
        messages,
        conversations: 50,
        connections: 8,
        per_webhook,
        max_duration: Duration::from_secs(20),
        grace: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn every_message_arrives_once_signed_over_kept_alive_connections() {
    let (addr, seen) = start_server(ALWAYS_OK).await;
    let config = config(addr, 400, 1);
    let ids = config.ids.clone();
    let report = run(config).await.expect("runs");

    assert_eq!((report.requests, report.ok, report.errors), (400, 400, 0), "{report}");
    assert_eq!((report.messages_sent, report.messages_ok), (400, 400));
    assert_eq!(report.run_id, ids.run_id);
    assert!(report.messages_per_second > 0.0);
    assert!(report.p50_ms > 0.0 && report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);

    assert_eq!(seen.requests.load(Ordering::SeqCst), 400);
    assert_eq!(seen.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(seen.bad_bodies.load(Ordering::SeqCst), 0);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 8, "one keep-alive connection per worker");
    let wamids = seen.wamids.lock().expect("lock");
    assert_eq!(wamids.len(), 400, "wamids are distinct");
    assert!(wamids.iter().all(|id| id.contains(&ids.run_id)), "wamids carry the run id");
    let froms = seen.froms.lock().expect("lock");
    assert_eq!(froms.len(), 50, "messages cycle over the conversations");
    assert!(froms.iter().all(|from| from.starts_with(&ids.wa_id_prefix)));
}

#[tokio::test]
async fn several_messages_per_webhook_add_up() {
    let (addr, seen) = start_server(ALWAYS_OK).await;
    let report = run(config(addr, 100, 3)).await.expect("runs");
    assert_eq!((report.requests, report.ok, report.errors), (34, 34, 0), "{report}");
    assert_eq!(report.messages_ok, 100);
    assert_eq!(seen.messages.load(Ordering::SeqCst), 100);
    assert_eq!(seen.wamids.lock().expect("lock").len(), 100);
}

#[tokio::test]
async fn failed_answers_are_counted_not_hidden() {
    let (addr, seen) = start_server(Behaviour { fail_every: 5, delay: Duration::ZERO }).await;
    let report = run(config(addr, 200, 1)).await.expect("runs");
    assert_eq!((report.requests, report.ok, report.errors), (200, 160, 40), "{report}");
    assert_eq!(report.messages_sent, 200);
    assert_eq!(report.messages_ok, 160);
    assert_eq!(report.errors_by_kind.get("http_503"), Some(&40));
    assert_eq!(seen.wamids.lock().expect("lock").len(), 160);
}

#[tokio::test]
async fn a_server_that_is_down_makes_every_request_fail() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let report = run(config(addr, 30, 1)).await.expect("runs");
    assert_eq!((report.requests, report.ok, report.errors), (30, 0, 30), "{report}");
    assert_eq!(report.errors_by_kind.get("connect"), Some(&30));
    assert_eq!(report.messages_ok, 0);
}

#[tokio::test]
async fn the_run_stops_at_its_deadline() {
    let (addr, seen) = start_server(Behaviour { fail_every: 0, delay: Duration::from_millis(50) }).await;
    let mut config = config(addr, 1_000_000, 1);
    config.max_duration = Duration::from_millis(500);
    let report = run(config).await.expect("runs");
    assert!(report.seconds >= 0.5 && report.seconds < 3.0, "{report}");
    // 8 connections, about 50 ms a request, for half a second.
    assert!(report.requests > 8 && report.requests < 200, "{report}");
    assert_eq!(report.errors, 0, "requests in flight at the deadline finish");
    assert_eq!(seen.requests.load(Ordering::SeqCst), report.requests);
}

#[tokio::test]
async fn the_binary_prints_one_json_line_and_exits_zero() {
    let (addr, seen) = start_server(ALWAYS_OK).await;
    let url = format!("http://{addr}/webhooks/whatsapp");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
            .args(["--url", &url, "--phone-number-id", PHONE_NUMBER_ID, "--display-phone-number", "15550783881"])
            .args(["--messages", "120", "--conversations", "10", "--connections", "4", "--max-seconds", "20"])
            .arg("--json")
            .env("PARLEY_LOADGEN_APP_SECRET", SECRET)
            .output()
            .expect("runs the binary")
    })
    .await
    .expect("joins");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let report: Value = serde_json::from_str(lines[0]).expect("json line");
    assert_eq!(report["messages_sent"], 120);
    assert_eq!(report["ok"], 120);
    assert_eq!(report["errors"], 0);
    let run_id = report["run_id"].as_str().expect("run id");
    assert!(stderr.contains(run_id), "the run id is announced: {stderr}");
    assert_eq!(seen.wamids.lock().expect("lock").len(), 120);
}

#[tokio::test]
async fn the_binary_exits_non_zero_when_requests_fail() {
    let (addr, _seen) = start_server(ALWAYS_OK).await;
    let url = format!("http://{addr}/webhooks/whatsapp");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
            .args(["--url", &url, "--phone-number-id", PHONE_NUMBER_ID, "--display-phone-number", "D"])
            .args(["--app-secret", "wrong-secret", "--messages", "10", "--connections", "2", "--json"])
            .output()
            .expect("runs the binary")
    })
    .await
    .expect("joins");
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["errors"], 10);
    assert_eq!(report["errors_by_kind"]["http_401"], 10);
}

#[test]
fn the_binary_refuses_remote_urls() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
        .args(["--url", "http://198.51.100.7:3000/webhooks/whatsapp", "--app-secret", "S"])
        .args(["--phone-number-id", "P", "--display-phone-number", "D"])
        .output()
        .expect("runs the binary");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
