//! A local Lambda Runtime API: the HTTP interface a custom runtime
//! (`provided.al2023`) polls for invocations. It starts a handler binary the
//! way Lambda does, hands it invocations and returns its answers, and notes
//! when the binary first asks for work: the end of its init phase.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:parley-test";

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: Mutex<Option<Instant>>,
    polled: Notify,
}

pub struct RuntimeApi {
    address: String,
    submit: mpsc::UnboundedSender<(String, Value)>,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Serves the Runtime API on an ephemeral loopback port.
    pub async fn start() -> RuntimeApi {
        let (submit, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(None),
            polled: Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        RuntimeApi { address, submit, shared }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for a function using this API.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Waits until the function asks for its first invocation; `None` on timeout.
    pub async fn first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.polled.notified();
            if let Some(at) = *self.shared.first_poll.lock().unwrap() {
                return Some(at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, notified).await.is_err() {
                return *self.shared.first_poll.lock().unwrap();
            }
        }
    }

    /// Hands `payload` to the function and waits for its answer.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.submit.send((id, payload)).expect("the runtime API is serving");
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answers within a minute")
            .expect("an answer")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    {
        let mut first = shared.first_poll.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
        }
    }
    shared.polled.notify_waiters();
    let Some((id, payload)) = shared.queue.lock().await.recv().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), String::new());
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("a header value"));
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", FUNCTION_ARN.to_owned());
    set("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
    (StatusCode::OK, headers, payload.to_string())
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, Outcome::Response(json_or_text(&body)))
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, Outcome::Error(json_or_text(&body)))
}

async fn init_error(body: Bytes) -> StatusCode {
    eprintln!("init error reported: {}", String::from_utf8_lossy(&body));
    StatusCode::ACCEPTED
}

/// A handler binary started as Lambda starts it, against `api`, with the
/// function's environment `env` (plus the caller's, for AWS credentials and
/// the emulator's endpoint).
pub fn start_function(binary: &Path, api: &RuntimeApi, env: &[(&str, String)]) -> (Function, Instant) {
    let mut command = std::process::Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "parley-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/parley-test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    (Function(Some(child)), started)
}

/// A running function process, stopped when dropped.
pub struct Function(Option<std::process::Child>);

impl Function {
    /// Waits (off the async threads) for the process to end by itself.
    pub async fn wait_with_output(mut self) -> std::process::Output {
        let child = self.0.take().expect("a running process");
        tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("the waiting thread")
            .expect("its output")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
