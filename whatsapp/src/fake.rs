//! A strict local fake of the Graph API for tests: every request is checked
//! against the documented shapes (path with version and ids, bearer token,
//! body fields) and recorded; each answer can be scripted per recipient as
//! any error of the table, a slow answer or a dropped connection.
//!
//! Media: uploads (`POST /{version}/{phone_number_id}/media`, multipart with
//! `messaging_product`, `type` and `file`), look-ups (`GET /{version}/{media_id}`)
//! and downloads of the URL a look-up answers are checked the same way; tests
//! can place media as if a customer had sent it, and corrupt it.
//!
//! Unlike the built-in simulator it sends no webhooks: tests drive those.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};

use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::graph_error::{GraphError, GraphErrorBody};
use crate::simulator::media::{read_upload, Upload};
use crate::simulator::validate::{send_body, SendBody};

/// How the fake answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeAnswer {
    /// The documented success body.
    Ok,
    /// A Graph error with this code, at the HTTP status Meta uses for it.
    Error(i64),
    /// Success, after this delay.
    Slow(Duration),
    /// Close the connection after reading the request, without an answer.
    Drop,
}

/// One request the fake received and accepted as well-formed.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    pub path: String,
    pub body: Value,
}

/// The HTTP status Meta answers an error code with.
pub fn http_status_for(code: i64) -> u16 {
    match code {
        190 | 0 | 10 | 200..=299 => 401,
        1 | 2 | 131000 => 500,
        131016 => 503,
        _ => 400,
    }
}

#[derive(Default)]
struct Inner {
    /// Answers queued per recipient `to`; `Ok` when none is queued.
    scripts: HashMap<String, VecDeque<FakeAnswer>>,
    /// Answers queued for the next uploads.
    upload_script: VecDeque<FakeAnswer>,
    /// Answers queued per media id, for its look-ups.
    media_scripts: HashMap<String, VecDeque<FakeAnswer>>,
    media: HashMap<String, FakeMedia>,
    next_media_id: u64,
    requests: Vec<FakeRequest>,
    refused: Vec<String>,
    drop_next: usize,
}

/// A file in the fake's media store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMedia {
    /// The number it belongs to: only its token may see it.
    pub phone_number_id: String,
    pub mime_type: String,
    pub bytes: Bytes,
    /// The hash look-ups report (hex); differs from the bytes' once corrupted.
    pub sha256: String,
    /// The file name given on upload.
    pub filename: Option<String>,
}

/// The largest upload the fake reads (WhatsApp's largest cap is 100 MB).
const MAX_UPLOAD_BYTES: usize = 110 * 1024 * 1024;

/// A running fake Graph API on a loopback port.
pub struct StrictGraphFake {
    base: String,
    version: String,
    numbers: HashMap<String, String>,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StrictGraphFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    version: String,
    numbers: HashMap<String, String>,
    inner: Arc<Mutex<Inner>>,
}

impl StrictGraphFake {
    /// Starts a fake for API `version` (such as `v26.0`) that knows these
    /// numbers: `(phone_number_id, access_token)`.
    pub async fn start(version: &str, numbers: &[(&str, &str)]) -> std::io::Result<StrictGraphFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let numbers: HashMap<String, String> =
            numbers.iter().map(|(id, token)| ((*id).to_owned(), (*token).to_owned())).collect();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Shared { version: version.to_owned(), numbers: numbers.clone(), inner: inner.clone() };
        let router = Router::new()
            .route("/{version}/{object_id}/messages", post(messages))
            .route("/{version}/{object_id}/media", post(upload_media))
            .route("/{version}/{object_id}", get(media_info))
            .route("/_media/{media_id}", get(download_media))
            .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
            .with_state(shared);
        let listener = DroppingListener { listener, inner: inner.clone() };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(StrictGraphFake { base, version: version.to_owned(), numbers, inner, task })
    }

    /// The base URL to configure the Graph client with.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The API version it expects.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether it knows this number.
    pub fn knows(&self, phone_number_id: &str) -> bool {
        self.numbers.contains_key(phone_number_id)
    }

    /// The next sends to `to` get these answers, in order.
    pub fn script(&self, to: &str, answers: impl IntoIterator<Item = FakeAnswer>) {
        let mut inner = self.lock();
        inner.scripts.entry(to.to_owned()).or_default().extend(answers);
    }

    /// The next uploads get these answers, in order.
    pub fn script_upload(&self, answers: impl IntoIterator<Item = FakeAnswer>) {
        self.lock().upload_script.extend(answers);
    }

    /// The next look-ups of `media_id` get these answers, in order.
    pub fn script_media(&self, media_id: &str, answers: impl IntoIterator<Item = FakeAnswer>) {
        self.lock().media_scripts.entry(media_id.to_owned()).or_default().extend(answers);
    }

    /// Places a file in the media store as if a customer of
    /// `phone_number_id` had sent it; answers its media id.
    pub fn add_media(&self, phone_number_id: &str, mime_type: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let mut inner = self.lock();
        let id = next_media_id(&mut inner);
        let sha256 = hex::encode(crate::media::sha256(&bytes));
        let media = FakeMedia {
            phone_number_id: phone_number_id.to_owned(),
            mime_type: mime_type.to_owned(),
            bytes,
            sha256,
            filename: None,
        };
        inner.media.insert(id.clone(), media);
        id
    }

    /// Changes the stored bytes of `media_id` but not the hash look-ups
    /// report, as a corrupted transfer would.
    pub fn corrupt_media(&self, media_id: &str) {
        if let Some(media) = self.lock().media.get_mut(media_id) {
            let mut bytes = media.bytes.to_vec();
            bytes.push(0xff);
            media.bytes = Bytes::from(bytes);
        }
    }

    /// A stored file, uploaded or placed.
    pub fn media(&self, media_id: &str) -> Option<FakeMedia> {
        self.lock().media.get(media_id).cloned()
    }

    /// The next connection is dropped after its request is read.
    pub fn drop_next_connection(&self) {
        self.lock().drop_next += 1;
    }

    /// Every well-formed request so far.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.lock().requests.clone()
    }

    /// Why requests were refused as malformed (wrong path, token or body).
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn graph_error(code: i64, message: &str, details: Option<String>) -> Response {
    let status = StatusCode::from_u16(http_status_for(code)).unwrap_or(StatusCode::BAD_REQUEST);
    let mut error = GraphError::new(code, format!("(#{code}) {message}"), details);
    error.fbtrace_id = Some("FakeTrace".to_owned());
    (status, Json(GraphErrorBody { error })).into_response()
}

async fn messages(
    State(shared): State<Shared>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |reason: String, response: Response| {
        shared.inner.lock().unwrap_or_else(|e| e.into_inner()).refused.push(reason);
        response
    };
    if version != shared.version {
        return refuse(format!("version {version}"), graph_error(2500, "Unknown path components", None));
    }
    let Some(expected) = shared.numbers.get(&phone_number_id) else {
        return refuse(format!("unknown number {phone_number_id}"), graph_error(100, "Invalid parameter", None));
    };
    let token = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(expected.as_str()) {
        return refuse("bearer token".to_owned(), graph_error(190, "Invalid OAuth access token", None));
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(format!("body: {e}"), graph_error(100, "Invalid parameter", Some(e.to_string()))),
    };
    let to = match send_body(&parsed) {
        Ok(SendBody::Message(request)) => request.to,
        Ok(SendBody::MarkRead { .. }) => String::new(),
        Err(reason) => return refuse(format!("body: {reason}"), graph_error(100, "Invalid parameter", Some(reason))),
    };
    let answer = {
        let mut inner = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.requests.push(FakeRequest { path: format!("/{version}/{phone_number_id}/messages"), body: parsed });
        inner.scripts.get_mut(&to).and_then(VecDeque::pop_front).unwrap_or(FakeAnswer::Ok)
    };
    let ok = |to: &str| {
        let wamid = format!("wamid.FAKE{}", uuid::Uuid::new_v4().simple());
        if to.is_empty() {
            return (StatusCode::OK, Json(json!({"success": true}))).into_response();
        }
        let body = json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                          "messages": [{"id": wamid, "message_status": "accepted"}]});
        (StatusCode::OK, Json(body)).into_response()
    };
    match answer {
        FakeAnswer::Ok | FakeAnswer::Drop => ok(&to),
        FakeAnswer::Error(code) => graph_error(code, "Scripted error", Some(format!("error {code} as scripted"))),
        FakeAnswer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            ok(&to)
        }
    }
}

fn next_media_id(inner: &mut Inner) -> String {
    inner.next_media_id += 1;
    // Graph media ids are long decimal numbers.
    (1_000_000_000_000_000 + inner.next_media_id).to_string()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

impl Shared {
    fn refuse(&self, reason: String, response: Response) -> Response {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).refused.push(reason);
        response
    }

    fn record(&self, path: String, body: Value) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).requests.push(FakeRequest { path, body });
    }
}

/// `POST /{version}/{phone_number_id}/media`.
async fn upload_media(
    State(shared): State<Shared>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if version != shared.version {
        return shared.refuse(format!("version {version}"), graph_error(2500, "Unknown path components", None));
    }
    let Some(expected) = shared.numbers.get(&phone_number_id) else {
        return shared.refuse(format!("unknown number {phone_number_id}"), graph_error(100, "Invalid parameter", None));
    };
    if bearer(&headers) != Some(expected.as_str()) {
        return shared.refuse("bearer token".to_owned(), graph_error(190, "Invalid OAuth access token", None));
    }
    let checked = match form {
        Ok(form) => read_upload(form).await,
        Err(rejection) => Err(format!("not multipart/form-data: {rejection}")),
    };
    let Upload { kind, filename, bytes } = match checked {
        Ok(upload) => upload,
        Err(reason) => {
            return shared.refuse(format!("upload: {reason}"), graph_error(100, "Invalid parameter", Some(reason)))
        }
    };
    let sha256 = hex::encode(crate::media::sha256(&bytes));
    let summary = json!({
        "messaging_product": "whatsapp", "type": kind,
        "file": {"filename": filename, "content_type": kind, "size": bytes.len(), "sha256": sha256},
    });
    let answer = {
        let mut inner = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.requests.push(FakeRequest { path: format!("/{version}/{phone_number_id}/media"), body: summary });
        inner.upload_script.pop_front().unwrap_or(FakeAnswer::Ok)
    };
    match answer {
        FakeAnswer::Error(code) => graph_error(code, "Scripted error", Some(format!("error {code} as scripted"))),
        other => {
            if let FakeAnswer::Slow(delay) = other {
                tokio::time::sleep(delay).await;
            }
            let mut inner = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
            let id = next_media_id(&mut inner);
            let media = FakeMedia { phone_number_id, mime_type: kind, bytes, sha256, filename };
            inner.media.insert(id.clone(), media);
            (StatusCode::OK, Json(json!({ "id": id }))).into_response()
        }
    }
}

/// `GET /{version}/{media_id}`.
async fn media_info(
    State(shared): State<Shared>,
    Path((version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if version != shared.version {
        return shared.refuse(format!("version {version}"), graph_error(2500, "Unknown path components", None));
    }
    let media = shared.inner.lock().unwrap_or_else(|e| e.into_inner()).media.get(&media_id).cloned();
    let Some(media) = media else {
        return shared.refuse(format!("unknown media {media_id}"), graph_error(100, "Invalid parameter", None));
    };
    let owner_token = shared.numbers.get(&media.phone_number_id);
    if bearer(&headers).is_none() || bearer(&headers) != owner_token.map(String::as_str) {
        return shared.refuse("bearer token".to_owned(), graph_error(190, "Invalid OAuth access token", None));
    }
    shared.record(format!("/{version}/{media_id}"), Value::Null);
    let answer = {
        let mut inner = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.media_scripts.get_mut(&media_id).and_then(VecDeque::pop_front).unwrap_or(FakeAnswer::Ok)
    };
    if let FakeAnswer::Error(code) = answer {
        return graph_error(code, "Scripted error", Some(format!("error {code} as scripted")));
    }
    let base = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let body = json!({
        "messaging_product": "whatsapp",
        "url": format!("http://{base}/_media/{media_id}"),
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "file_size": media.bytes.len(),
        "id": media_id,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /_media/{media_id}`: the download URL a look-up answers.
async fn download_media(State(shared): State<Shared>, Path(media_id): Path<String>, headers: HeaderMap) -> Response {
    let media = shared.inner.lock().unwrap_or_else(|e| e.into_inner()).media.get(&media_id).cloned();
    let Some(media) = media else {
        return shared.refuse(format!("unknown download {media_id}"), StatusCode::NOT_FOUND.into_response());
    };
    let owner_token = shared.numbers.get(&media.phone_number_id);
    if bearer(&headers).is_none() || bearer(&headers) != owner_token.map(String::as_str) {
        return shared.refuse("download without the bearer token".to_owned(), StatusCode::UNAUTHORIZED.into_response());
    }
    shared.record(format!("/_media/{media_id}"), Value::Null);
    ([(axum::http::header::CONTENT_TYPE, media.mime_type)], media.bytes).into_response()
}

/// Accepts connections for axum, except that it reads and then closes the
/// ones it was told to drop.
struct DroppingListener {
    listener: TcpListener,
    inner: Arc<Mutex<Inner>>,
}

impl axum::serve::Listener for DroppingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((mut stream, addr)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let drop_it = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                let d = inner.drop_next > 0;
                inner.drop_next = inner.drop_next.saturating_sub(1);
                d
            };
            if !drop_it {
                return (stream, addr);
            }
            let mut buf = vec![0u8; 64 * 1024];
            let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
            drop(stream);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Credentials, GraphClient, SendError, WhatsAppApi};
    use crate::errors::{ErrorKind, RetryPolicy, MAINTENANCE_WAIT_SECS, PAIR_RATE_LIMIT_WAIT_SECS};
    use crate::send::SendRequest;

    const PNID: &str = "106540352242922";
    const TOKEN: &str = "token-1";

    /// Every row of the fixtures README's error table: code, kind, treatment.
    fn table() -> Vec<(i64, ErrorKind, RetryPolicy)> {
        use ErrorKind as K;
        use RetryPolicy as P;
        let mut rows = vec![
            (130429, K::ThroughputLimit, P::Backoff),
            (131056, K::PairRateLimit, P::AfterSeconds(PAIR_RATE_LIMIT_WAIT_SECS)),
            (131000, K::Transient, P::Backoff),
            (131016, K::Transient, P::Backoff),
            (1, K::Transient, P::Backoff),
            (2, K::Transient, P::Backoff),
            (131057, K::Maintenance, P::AfterSeconds(MAINTENANCE_WAIT_SECS)),
            (80007, K::CallRateLimit, P::Backoff),
            (4, K::CallRateLimit, P::Backoff),
            (131048, K::SpamRateLimit, P::Never),
            (131049, K::MarketingCap, P::Never),
            (131047, K::WindowClosed, P::Never),
            (131026, K::Undeliverable, P::Never),
            (131050, K::MarketingOptOut, P::Never),
            (131051, K::UnsupportedType, P::Never),
            (131053, K::MediaError, P::Never),
            (100, K::InvalidParameter, P::Never),
            (190, K::AuthError, P::RefreshCredentialsOnce),
            (0, K::AuthError, P::RefreshCredentialsOnce),
            (10, K::AuthError, P::RefreshCredentialsOnce),
            (200, K::AuthError, P::RefreshCredentialsOnce),
            (250, K::AuthError, P::RefreshCredentialsOnce),
            (299, K::AuthError, P::RefreshCredentialsOnce),
        ];
        for code in [132000, 132001, 132012, 132015, 132016] {
            rows.push((code, K::TemplateError, P::Never));
        }
        rows
    }

    fn creds() -> Credentials {
        Credentials { phone_number_id: PNID.into(), access_token: TOKEN.into() }
    }

    #[tokio::test]
    async fn every_row_of_the_error_table_maps_to_its_kind_and_treatment() {
        let fake = StrictGraphFake::start("v26.0", &[(PNID, TOKEN)]).await.expect("fake");
        let client = GraphClient::new(fake.base_url(), "v26.0", Duration::from_secs(5));
        for (code, kind, policy) in table() {
            let to = format!("1650555{code:06}");
            fake.script(&to, [FakeAnswer::Error(code)]);
            let err = client.send(&creds(), &SendRequest::text(&to, "hi")).await.expect_err("scripted error");
            match &err {
                SendError::Api { code: c, kind: k, http_status, .. } => {
                    assert_eq!((*c, *k), (code, kind), "code {code}");
                    assert_eq!(*http_status, http_status_for(code));
                }
                other => panic!("code {code}: {other:?}"),
            }
            assert_eq!(err.retry_policy(), policy, "code {code}");
            // The next send to the same customer succeeds: answers are per request.
            client.send(&creds(), &SendRequest::text(&to, "again")).await.expect("unscripted send succeeds");
        }
        assert!(fake.refused().is_empty(), "{:?}", fake.refused());
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_and_slow_or_dropped_answers_are_ambiguous() {
        let fake = StrictGraphFake::start("v26.0", &[(PNID, TOKEN)]).await.expect("fake");
        let client = GraphClient::new(fake.base_url(), "v26.0", Duration::from_millis(300));
        let wrong_token = Credentials { phone_number_id: PNID.into(), access_token: "other".into() };
        let err = client.send(&wrong_token, &SendRequest::text("16505551234", "hi")).await.expect_err("bad token");
        assert_eq!(err.kind(), Some(ErrorKind::AuthError));
        let unknown = Credentials { phone_number_id: "999".into(), access_token: TOKEN.into() };
        assert!(client.send(&unknown, &SendRequest::text("16505551234", "hi")).await.is_err());
        let mut bad = SendRequest::text("16505551234", "hi");
        bad.content = json!({"text": "no body field"});
        let err = client.send(&creds(), &bad).await.expect_err("bad body");
        assert_eq!(err.kind(), Some(ErrorKind::InvalidParameter));
        let old = GraphClient::new(fake.base_url(), "v19.0", Duration::from_secs(1));
        assert!(old.send(&creds(), &SendRequest::text("16505551234", "hi")).await.is_err());
        assert_eq!(fake.refused().len(), 4, "{:?}", fake.refused());
        assert!(fake.requests().is_empty());

        fake.script("16505551234", [FakeAnswer::Slow(Duration::from_secs(2))]);
        let err = client.send(&creds(), &SendRequest::text("16505551234", "slow")).await.expect_err("timeout");
        assert!(matches!(err, SendError::Ambiguous(_)), "{err:?}");
        assert_eq!(err.retry_policy(), RetryPolicy::Never, "a send that may have gone out is never repeated");

        fake.drop_next_connection();
        let err = client.send(&creds(), &SendRequest::text("16505551234", "dropped")).await.expect_err("dropped");
        assert!(matches!(err, SendError::Ambiguous(_)), "{err:?}");

        let ok = client.send(&creds(), &SendRequest::text("16505551234", "fine")).await.expect("ok");
        assert!(ok.wamid.starts_with("wamid."));
        let last = fake.requests().pop().expect("recorded");
        assert_eq!(last.path, format!("/v26.0/{PNID}/messages"));
        assert_eq!(last.body["text"]["body"], "fine");
        client.mark_read(&creds(), "wamid.X").await.expect("mark read");
    }
}

#[cfg(test)]
mod media_tests {
    use super::*;
    use crate::client::{Credentials, GraphClient, SendError, WhatsAppApi};
    use crate::errors::ErrorKind;
    use crate::media::{sha256_matches, MediaUpload};

    const PNID: &str = "106540352242922";
    const TOKEN: &str = "token-1";

    fn creds() -> Credentials {
        Credentials { phone_number_id: PNID.into(), access_token: TOKEN.into() }
    }

    async fn fake_and_client() -> (StrictGraphFake, GraphClient) {
        let fake = StrictGraphFake::start("v26.0", &[(PNID, TOKEN), ("2", "token-2")]).await.expect("fake");
        let client = GraphClient::new(fake.base_url(), "v26.0", Duration::from_secs(5));
        (fake, client)
    }

    #[tokio::test]
    async fn uploads_are_multipart_with_the_documented_fields() {
        let (fake, client) = fake_and_client().await;
        let pdf = Bytes::from_static(b"%PDF-1.7 invoice");
        let upload =
            MediaUpload { mime_type: "application/pdf".into(), filename: "invoice.pdf".into(), bytes: pdf.clone() };
        let id = client.upload_media(&creds(), &upload).await.expect("upload");
        let request = fake.requests().pop().expect("recorded");
        assert_eq!(request.path, format!("/v26.0/{PNID}/media"));
        assert_eq!(request.body["messaging_product"], "whatsapp");
        assert_eq!(request.body["type"], "application/pdf");
        assert_eq!(request.body["file"]["filename"], "invoice.pdf");
        assert_eq!(request.body["file"]["content_type"], "application/pdf");
        assert_eq!(request.body["file"]["size"], pdf.len());
        let stored = fake.media(&id).expect("stored under the answered id");
        assert_eq!((stored.bytes, stored.phone_number_id.as_str()), (pdf, PNID));
        assert!(fake.refused().is_empty(), "{:?}", fake.refused());

        // A JSON body is not an upload.
        let raw = reqwest::Client::new()
            .post(format!("{}/v26.0/{PNID}/media", fake.base_url()))
            .bearer_auth(TOKEN)
            .json(&json!({"messaging_product": "whatsapp", "type": "image/png"}))
            .send()
            .await
            .expect("answer");
        assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
        assert!(fake.refused().iter().any(|r| r.contains("multipart")), "{:?}", fake.refused());
        // Another number's token is refused, and so is a wrong version.
        let wrong = Credentials { phone_number_id: PNID.into(), access_token: "token-2".into() };
        let err = client.upload_media(&wrong, &upload).await.expect_err("bad token");
        assert_eq!(err.kind(), Some(ErrorKind::AuthError));
        let old = GraphClient::new(fake.base_url(), "v19.0", Duration::from_secs(5));
        assert!(old.upload_media(&creds(), &upload).await.is_err());
    }

    #[tokio::test]
    async fn retrieve_then_download_with_the_bearer_token() {
        let (fake, client) = fake_and_client().await;
        let jpeg = Bytes::from_static(b"\xff\xd8\xff\xe0 jpeg bytes");
        let id = fake.add_media(PNID, "image/jpeg", jpeg.clone());
        let info = client.media_info(&creds(), &id).await.expect("look-up");
        assert_eq!(
            (info.id.as_str(), info.mime_type.as_str(), info.file_size),
            (id.as_str(), "image/jpeg", jpeg.len() as u64)
        );
        assert!(sha256_matches(&info.sha256, &jpeg));
        let bytes = client.download_media(&creds(), &info.url, 1 << 20).await.expect("download");
        assert_eq!(bytes, jpeg);
        let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, vec![format!("/v26.0/{id}"), format!("/_media/{id}")]);

        // Only the owning number's token sees the media.
        let other = Credentials { phone_number_id: "2".into(), access_token: "token-2".into() };
        assert!(client.media_info(&other, &id).await.is_err());
        assert!(client.download_media(&other, &info.url, 1 << 20).await.is_err());
        // Downloads without the token are refused by the fake.
        let anonymous = reqwest::get(&info.url).await.expect("answer");
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_corrupted_download_does_not_match_its_sha256() {
        let (fake, client) = fake_and_client().await;
        let id = fake.add_media(PNID, "audio/ogg", Bytes::from_static(b"OggS voice note"));
        fake.corrupt_media(&id);
        let info = client.media_info(&creds(), &id).await.expect("look-up");
        let bytes = client.download_media(&creds(), &info.url, 1 << 20).await.expect("download");
        assert!(!sha256_matches(&info.sha256, &bytes), "the corrupted bytes must not match the reported hash");
    }

    #[tokio::test]
    async fn look_ups_and_uploads_answer_scripted_errors() {
        let (fake, client) = fake_and_client().await;
        let id = fake.add_media(PNID, "image/png", Bytes::from_static(b"png"));
        fake.script_media(&id, [FakeAnswer::Error(131000), FakeAnswer::Error(131053)]);
        let transient = client.media_info(&creds(), &id).await.expect_err("scripted");
        assert_eq!(transient.kind(), Some(ErrorKind::Transient));
        let media_error = client.media_info(&creds(), &id).await.expect_err("scripted");
        assert_eq!(media_error.kind(), Some(ErrorKind::MediaError));
        client.media_info(&creds(), &id).await.expect("unscripted look-up succeeds");
        fake.script_upload([FakeAnswer::Error(131053)]);
        let upload =
            MediaUpload { mime_type: "image/png".into(), filename: "a.png".into(), bytes: Bytes::from_static(b"png") };
        let err = client.upload_media(&creds(), &upload).await.expect_err("scripted");
        assert!(matches!(err, SendError::Api { code: 131053, .. }), "{err:?}");
        let unknown = client.media_info(&creds(), "42").await.expect_err("unknown id");
        assert_eq!(unknown.kind(), Some(ErrorKind::InvalidParameter));
    }
}
