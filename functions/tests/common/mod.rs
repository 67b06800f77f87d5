//! A real Parley server on an ephemeral loopback port, with helpers to drive
//! it the way WhatsApp and API clients do.

#![allow(dead_code)]

#[cfg(feature = "lambda")]
pub mod runtime_api;
#[cfg(feature = "lambda")]
pub mod stage;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use parley_app::auth::Role;
use parley_app::{App, Config};
use parley_functions::local::Local;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const PNID: &str = "106540352242922";
pub const DISPLAY: &str = "15550783881";
pub const WABA: &str = "102290129340398";
pub const CUSTOMER: &str = "16505551234";
pub const APP_SECRET: &str = "test-app-secret";
pub const ACCESS_TOKEN: &str = "test-access-token";

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/whatsapp/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

/// The fixture with every message and status timestamp set to now, as a
/// webhook that arrives right after the customer wrote.
pub fn fresh(mut body: Value) -> Value {
    let now = chrono::Utc::now().timestamp().to_string();
    let list = |v: &mut Value, key: &str| v.get_mut(key).and_then(Value::as_array_mut).map(std::mem::take);
    let mut entries = list(&mut body, "entry").unwrap_or_default();
    for entry in &mut entries {
        let mut changes = list(entry, "changes").unwrap_or_default();
        for change in &mut changes {
            for key in ["messages", "statuses"] {
                if let Some(items) = change.get_mut("value").and_then(|v| v.get_mut(key)).and_then(Value::as_array_mut)
                {
                    for item in items {
                        item["timestamp"] = json!(now);
                    }
                }
            }
        }
        entry["changes"] = Value::Array(changes);
    }
    body["entry"] = Value::Array(entries);
    body
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How the server reaches WhatsApp in a test.
pub enum WhatsApp {
    /// The built-in simulator, with this delay between statuses.
    Simulator(Duration),
    /// A scripted stand-in for the Graph API.
    Fake(Arc<FakeGraph>),
}

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub app: Arc<App>,
    pub ops: Arc<parley_app::ops::Ops>,
    pub ops_models: Arc<parley_app::readmodel::ops::SqliteOpsReadModels>,
    pub projections: Arc<parley_events::ProjectionRunner>,
    issuer: Arc<parley_app::auth::LocalIssuer>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(whatsapp: WhatsApp) -> Server {
        Server::start_with(whatsapp, |_| {}).await
    }

    pub async fn start_with(whatsapp: WhatsApp, tweak: impl FnOnce(&mut Config)) -> Server {
        Server::start_with_clock(whatsapp, Arc::new(parley_app::SystemClock), tweak).await
    }

    /// A server whose application clock is `clock` (schedules, windows, billing months).
    pub async fn start_with_clock(
        whatsapp: WhatsApp,
        clock: Arc<dyn parley_app::Clock>,
        tweak: impl FnOnce(&mut Config),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.http_addr = addr;
        config.public_url = format!("http://{addr}");
        config.data_dir = dir.path().to_path_buf();
        config.window_closer_interval = Duration::from_millis(200);
        match &whatsapp {
            WhatsApp::Simulator(delay) => config.simulator_status_delay = *delay,
            WhatsApp::Fake(fake) => config.whatsapp_api_base = Some(fake.base.clone()),
        }
        tweak(&mut config);
        let local = Local::open_with_clock(config, clock).unwrap();
        let app = local.app.clone();
        let ops = local.ops.clone();
        let ops_models = local.ops_models.clone();
        let issuer = local.issuer.clone();
        let projections = local.projections.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            local
                .run(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            app,
            ops,
            ops_models,
            projections,
            issuer,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops the server and its workers but keeps the data directory.
    pub async fn stop_workers_only(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Stops the server and waits for every worker to finish.
    pub async fn stop(mut self) {
        self.stop_workers_only().await;
    }

    /// Every mail the server has written to its outbox.
    pub async fn outbox(&self) -> Vec<parley_app::mail::SentMail> {
        use parley_app::mail::MailProbe;
        let probe = parley_app::mail::OutboxMailer::open(&self.data_dir().join("outbox"), "probe@parley.test").unwrap();
        probe.delivered().await.unwrap()
    }

    pub fn token(&self, tenant: &str, role: Role) -> String {
        self.issuer.issue(tenant, "tester", role, chrono::Utc::now(), chrono::Duration::hours(1)).unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        read(r).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await.unwrap();
        read(r).await
    }

    pub async fn register_number(&self, token: &str, pnid: &str, app_secret: &str) -> (StatusCode, Value) {
        let body = json!({
            "phone_number_id": pnid, "display_phone_number": DISPLAY, "waba_id": WABA,
            "access_token": ACCESS_TOKEN, "app_secret": app_secret, "verify_token": "verify-me",
        });
        let registered = self.post(token, "/v1/numbers", &body).await;
        // Read models follow the event log; what comes next reads them.
        self.settled().await;
        registered
    }

    /// Creates an approved-on-submit template with one body text and waits
    /// for the read models to know it.
    pub async fn create_template(&self, token: &str, name: &str, category: &str, text: &str) {
        let template = json!({"name": name, "language": "en_US", "category": category,
                              "components": [{"type": "BODY", "text": text}]});
        let (code, created) = self.post(token, "/v1/templates", &template).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        self.settled().await;
    }

    /// Posts a webhook body signed with `secret`, as WhatsApp does.
    pub async fn webhook(&self, body: &Value, secret: &str) -> (StatusCode, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        self.webhook_raw(&raw, Some(&sign(secret, &raw))).await
    }

    pub async fn webhook_raw(&self, raw: &[u8], signature: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/webhooks/whatsapp", self.base)).body(raw.to_vec());
        req = req.header("content-type", "application/json");
        if let Some(sig) = signature {
            req = req.header("X-Hub-Signature-256", sig);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn event_log_head(&self) -> u64 {
        let r = self.http.get(format!("{}/health", self.base)).send().await.unwrap();
        read(r).await.1["event_log_head"].as_u64().unwrap()
    }

    /// Polls `probe` until it returns Some, for at most `timeout`.
    pub async fn eventually<T, F, Fut>(&self, timeout: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "condition not met within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every read model has applied every event appended so far.
    pub async fn settled(&self) {
        let projections = self.projections.clone();
        self.eventually(Duration::from_secs(10), || {
            let projections = projections.clone();
            async move { projections.lag().await.ok().filter(|l| l.iter().all(|(_, lag)| *lag == 0)).map(|_| ()) }
        })
        .await;
    }
}

/// A server that reaches the strict Graph API fake (every request checked
/// against the documented shapes), with `tenant`'s owner token and the
/// test number registered.
pub async fn server_with_strict_fake(tenant: &str) -> (Server, parley_whatsapp::fake::StrictGraphFake, String) {
    let fake = parley_whatsapp::fake::StrictGraphFake::start("v26.0", &[(PNID, ACCESS_TOKEN)]).await.expect("fake");
    let base = fake.base_url().to_owned();
    let server = Server::start_with(WhatsApp::Simulator(Duration::from_millis(20)), |c| {
        c.whatsapp_api_base = Some(base);
    })
    .await;
    let token = server.token(tenant, Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (server, fake, token)
}

pub async fn read(r: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(ct, "application/problem+json", "errors are problem+json: {value}");
        for member in ["type", "title", "status", "detail", "code"] {
            assert!(value.get(member).is_some(), "problem lacks {member}: {value}");
        }
    }
    (status, value)
}

/// A scripted Graph API: answers sends with queued responses (default:
/// success with the next wamid) and records every request.
pub struct FakeGraph {
    pub base: String,
    script: Mutex<Vec<(u16, Value)>>,
    pub requests: Mutex<Vec<(String, Option<String>, Value)>>,
    wamids: Mutex<Vec<String>>,
    /// Template calls: (method and path, authorization, body).
    pub template_requests: Mutex<Vec<(String, Option<String>, Value)>>,
    /// The status new templates get (default APPROVED).
    pub template_status: Mutex<String>,
    /// Templates the business account holds, as the list call answers them.
    pub remote_templates: Mutex<Vec<Value>>,
}

impl FakeGraph {
    pub async fn start() -> Arc<FakeGraph> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(FakeGraph {
            base: format!("http://{}", listener.local_addr().unwrap()),
            script: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            wamids: Mutex::new(Vec::new()),
            template_requests: Mutex::new(Vec::new()),
            template_status: Mutex::new("APPROVED".into()),
            remote_templates: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/{version}/{pnid}/messages", post(fake_send))
            .route(
                "/{version}/{pnid}/message_templates",
                post(fake_template_create).get(fake_template_list).delete(fake_template_delete),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        fake
    }

    /// The next sends answer with these (HTTP status, body), in order.
    pub fn answer(&self, status: u16, body: Value) {
        self.script.lock().unwrap().push((status, body));
    }

    /// The next successful sends get these wamids, in order.
    pub fn next_wamid(&self, wamid: &str) {
        self.wamids.lock().unwrap().push(wamid.to_owned());
    }

    pub fn sends(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn fake_send(
    State(fake): State<Arc<FakeGraph>>,
    Path((version, pnid)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    fake.requests.lock().unwrap().push((format!("/{version}/{pnid}/messages"), auth, body.clone()));
    let scripted = {
        let mut s = fake.script.lock().unwrap();
        (!s.is_empty()).then(|| s.remove(0))
    };
    if let Some((status, answer)) = scripted {
        if status != 200 {
            return (StatusCode::from_u16(status).unwrap(), axum::Json(answer));
        }
    }
    if body["status"] == "read" {
        return (StatusCode::OK, axum::Json(json!({"success": true})));
    }
    let wamid = {
        let mut w = fake.wamids.lock().unwrap();
        if w.is_empty() {
            format!("wamid.FAKE{}", uuid::Uuid::new_v4().simple())
        } else {
            w.remove(0)
        }
    };
    let mut ok = fixture("send_response.json");
    ok["messages"][0]["id"] = json!(wamid);
    ok["contacts"][0]["wa_id"] = body["to"].clone();
    ok["contacts"][0]["input"] = body["to"].clone();
    (StatusCode::OK, axum::Json(ok))
}

fn auth_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn fake_template_create(
    State(fake): State<Arc<FakeGraph>>,
    Path((version, waba)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    let path = format!("POST /{version}/{waba}/message_templates");
    fake.template_requests.lock().unwrap().push((path, auth_of(&headers), body.clone()));
    let status = fake.template_status.lock().unwrap().clone();
    let id = format!("{}", 1_689_556_908_000_000u64 + fake.template_requests.lock().unwrap().len() as u64);
    let mut remote = body.clone();
    remote["id"] = json!(id);
    remote["status"] = json!(status);
    fake.remote_templates.lock().unwrap().push(remote);
    (StatusCode::OK, axum::Json(json!({"id": id, "status": status, "category": body["category"]})))
}

async fn fake_template_list(
    State(fake): State<Arc<FakeGraph>>,
    Path((version, waba)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    let path = format!("GET /{version}/{waba}/message_templates");
    fake.template_requests.lock().unwrap().push((path, auth_of(&headers), Value::Null));
    let data = fake.remote_templates.lock().unwrap().clone();
    (StatusCode::OK, axum::Json(json!({"data": data, "paging": {"cursors": {"before": "a", "after": "b"}}})))
}

async fn fake_template_delete(
    State(fake): State<Arc<FakeGraph>>,
    Path((version, waba)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, axum::Json<Value>) {
    let name = q.get("name").cloned().unwrap_or_default();
    let path = format!("DELETE /{version}/{waba}/message_templates?name={name}");
    fake.template_requests.lock().unwrap().push((path, auth_of(&headers), Value::Null));
    fake.remote_templates.lock().unwrap().retain(|t| t["name"] != name.as_str());
    (StatusCode::OK, axum::Json(json!({"success": true})))
}
