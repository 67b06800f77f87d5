//! The Lambda handlers end to end on the AWS adapters, against the AWS API
//! emulator (`PARLEY_AWS_ENDPOINT`): requests arrive as API Gateway v2
//! payloads, stream records as DynamoDB stream events and outbound jobs as SQS
//! events, each built the way Lambda delivers them.
//!
//! A signed webhook goes in through the webhook function; its events land in
//! DynamoDB; the table's stream records, read back through the emulator's
//! DynamoDB Streams API, feed the projector and the reactor; the read model
//! answers `GET /v1/conversations`; a reply queued by the API reaches SQS and
//! the sender function sends it to the (fake) Graph API exactly once.
//!
//! The back office runs the same way: an export queued through the API
//! reaches the jobs queue through the reactor, the job runner function writes
//! the CSV to S3, and the job's presigned link downloads it; the invoicer
//! function bills every tenant with usage once, however often it runs.

#![cfg(feature = "lambda")]

mod common;

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use axum::http::StatusCode;
use common::{fixture, fresh, sign, FakeGraph, ACCESS_TOKEN, APP_SECRET, CUSTOMER, DISPLAY, PNID, WABA};
use parley_app::auth::{LocalIssuer, Role};
use parley_app::identity::audit::SqliteAuditLog;
use parley_app::identity::local::LocalIdentity;
use parley_app::mail::OutboxMailer;
use parley_app::{Config, SystemClock};
use parley_aws::testing::{emulator_config, stream_records};
use parley_functions::lambda::{AwsRuntime, IdentityPorts};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Deployment {
    runtime: AwsRuntime,
    sdk: aws_config::SdkConfig,
    issuer: Arc<LocalIssuer>,
    _dir: tempfile::TempDir,
}

/// Creates every resource of a stage in the emulator, under fresh names, and
/// composes the functions' runtime on them.
async fn deploy(graph_base: &str) -> Deployment {
    let sdk = emulator_config().await;
    let resources = common::stage::create_stage(&sdk).await;

    let config = Config::from_lookup(|name| match name {
        "PARLEY_WHATSAPP_API_BASE" => Some(graph_base.to_owned()),
        _ => None,
    })
    .expect("configuration");
    // Identity is not under test here: the local provider stands in for Cognito.
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(LocalIssuer::open(dir.path()).unwrap());
    let mailer = Arc::new(OutboxMailer::open(&dir.path().join("outbox"), "Parley <no-reply@parley.test>").unwrap());
    let identity = IdentityPorts {
        identity: Arc::new(
            LocalIdentity::open(&dir.path().join("identity.db"), issuer.clone(), mailer, Arc::new(SystemClock))
                .unwrap(),
        ),
        audit: Arc::new(SqliteAuditLog::open(&dir.path().join("audit.db")).unwrap()),
        tokens: issuer.clone(),
    };
    let runtime = AwsRuntime::compose(&config, resources, &sdk, identity).expect("compose");
    Deployment { runtime, sdk, issuer, _dir: dir }
}

/// An API Gateway HTTP API (payload 2.0) request, as Lambda hands it to `lambda_http`.
fn api_gateway_request(method: &str, path: &str, headers: Value, body: Option<&str>) -> lambda_http::Request {
    let payload = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "parleyapi",
            "domainName": "parleyapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "parleyapi",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&payload.to_string()).expect("an API Gateway v2 request")
}

/// Runs one request through a function's router, as `lambda_http::run` does.
async fn invoke(router: axum::Router, request: lambda_http::Request) -> (StatusCode, Value) {
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let response = router.oneshot(request).await.expect("infallible router");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every stream record written since the last call, as one Lambda DynamoDB event.
async fn next_stream_batch(d: &Deployment, seen: &mut usize) -> DynamoDbEvent {
    let records = stream_records(&d.sdk, &d.runtime.resources.events_table, *seen).await;
    *seen += records.len();
    let mut event = DynamoDbEvent::default();
    event.records = records;
    event
}

/// The messages waiting on a queue, received as the SQS event Lambda would deliver.
async fn receive_as_lambda_event(d: &Deployment, queue_url: &str) -> SqsEvent {
    let sqs = aws_sdk_sqs::Client::new(&d.sdk);
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    let records: Vec<Value> = received
        .messages()
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000" },
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

/// Request headers with a bearer token of acme's owner.
fn owner_headers(d: &Deployment) -> Value {
    let now = chrono::Utc::now();
    let token = d.issuer.issue("acme", "owner-1", Role::Owner, now, chrono::Duration::hours(1)).unwrap();
    json!({ "authorization": format!("Bearer {token}"), "content-type": "application/json" })
}

/// The API function registers the number, and the projector brings it into
/// the read model the webhook looks up. Returns the stream records seen.
async fn register_number(d: &Deployment, bearer: &Value) -> usize {
    let number = json!({
        "phone_number_id": PNID, "display_phone_number": DISPLAY, "waba_id": WABA,
        "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": "verify-me",
    })
    .to_string();
    let request = api_gateway_request("POST", "/v1/numbers", bearer.clone(), Some(&number));
    // As on AWS, the projector runs while the registration waits for the
    // numbers read model to list the number.
    let projector = async {
        let mut seen = 0;
        loop {
            let batch = next_stream_batch(d, &mut seen).await;
            if !batch.records.is_empty() {
                assert!(d.runtime.project(batch).await.batch_item_failures.is_empty());
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let ((status, body), seen) = tokio::join!(invoke(d.runtime.api_router(), request), projector);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_to_read_model_to_send_through_the_lambda_handlers() {
    let graph = FakeGraph::start().await;
    let d = deploy(&graph.base).await;
    let app = d.runtime.app.clone();
    let bearer = owner_headers(&d);
    let mut seen = register_number(&d, &bearer).await;

    // The webhook function takes a signed inbound message.
    let inbound = fresh(fixture("inbound_text.json")).to_string();
    let headers = json!({
        "content-type": "application/json",
        "x-hub-signature-256": sign(APP_SECRET, inbound.as_bytes()),
    });
    let request = api_gateway_request("POST", "/webhooks/whatsapp", headers, Some(&inbound));
    let (status, body) = invoke(parley_app::http::webhook_router(app.clone()), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Its events are in DynamoDB; their stream records feed the projector.
    let batch = next_stream_batch(&d, &mut seen).await;
    assert!(!batch.records.is_empty(), "the webhook's appends reach the table's stream");
    let redelivered = batch.clone();
    let response = d.runtime.project(batch).await;
    assert!(response.batch_item_failures.is_empty());
    // Lambda may deliver a batch again: the read model does not change.
    let response = d.runtime.project(redelivered).await;
    assert!(response.batch_item_failures.is_empty());

    let request = api_gateway_request("GET", "/v1/conversations", bearer.clone(), None);
    let (status, list) = invoke(parley_app::http::router(app.clone()), request).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["contact"]["wa_id"], CUSTOMER);
    assert_eq!(items[0]["unread_count"], 1, "a redelivered stream batch is not counted twice: {list}");

    // A reply: the API queues it, the reactor puts the job on SQS, the sender sends it.
    let reply =
        json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "Hello from Lambda"}}).to_string();
    let request = api_gateway_request("POST", "/v1/messages", bearer.clone(), Some(&reply));
    let (status, queued) = invoke(parley_app::http::router(app.clone()), request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let batch = next_stream_batch(&d, &mut seen).await;
    let response = d.runtime.react(batch.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    d.runtime.project(batch).await;

    let event = receive_as_lambda_event(&d, &d.runtime.resources.outbound_queue_url).await;
    assert_eq!(event.records.len(), 1, "one job for one queued message");
    let response = d.runtime.send(event).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(graph.sends(), 1, "sent to the Graph API once");
    let (path, auth, body) = graph.requests.lock().unwrap()[0].clone();
    assert_eq!(path, format!("/v26.0/{PNID}/messages"));
    assert_eq!(auth.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(body["text"]["body"], "Hello from Lambda");

    // The accepted send (its wamid and attempt) comes back through the stream
    // into the message read model; `sent` itself arrives later, as a status webhook.
    let batch = next_stream_batch(&d, &mut seen).await;
    let response = d.runtime.project(batch).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    let id = queued["id"].as_str().unwrap();
    let request = api_gateway_request("GET", &format!("/v1/messages/{id}"), bearer.clone(), None);
    let (status, message) = invoke(parley_app::http::router(app.clone()), request).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert!(message["wamid"].as_str().is_some_and(|w| w.starts_with("wamid.")), "{message}");
    assert_eq!(message["attempts"], 1, "{message}");

    // The projector indexed both messages' words for search, keyed with a
    // search key it sealed with KMS.
    for (query, expected) in [("another color", "inbound"), ("HELLO lambda", "outbound"), ("hello color", "")] {
        let path = format!("/v1/messages/search?q={}", query.replace(' ', "+"));
        let request = api_gateway_request("GET", &path, bearer.clone(), None);
        let (status, found) = invoke(parley_app::http::router(app.clone()), request).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let directions: Vec<&str> =
            found["items"].as_array().expect("items").iter().filter_map(|m| m["direction"].as_str()).collect();
        let expected: Vec<&str> = [expected].into_iter().filter(|d| !d.is_empty()).collect();
        assert_eq!(directions, expected, "{query}: {found}");
    }

    // GDPR erasure: the contact's KMS-wrapped data key is destroyed, its
    // search terms dropped, its directory row taken out of the listing.
    let request = api_gateway_request("DELETE", &format!("/v1/contacts/{CUSTOMER}"), bearer.clone(), None);
    let (status, erasure) = invoke(parley_app::http::router(app.clone()), request).await;
    assert_eq!(status, StatusCode::OK, "{erasure}");
    assert_eq!(erasure["messages"], 2, "{erasure}");
    let response = d.runtime.project(next_stream_batch(&d, &mut seen).await).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    for path in [format!("/v1/messages/{id}"), "/v1/messages/search?q=hello+lambda".into(), "/v1/contacts".into()] {
        let request = api_gateway_request("GET", &path, bearer.clone(), None);
        let (status, body) = invoke(parley_app::http::router(app.clone()), request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        match body.get("items") {
            Some(items) => assert_eq!(items, &json!([]), "{path}: {body}"),
            None => assert_eq!(body["content"], Value::Null, "{path}: {body}"),
        }
    }
}

/// A priced `sent` status of a message of `tenant`, appended as the status
/// webhook would, so the month has metered usage.
async fn priced_send(d: &Deployment, tenant: &str, category: &str, at: chrono::DateTime<chrono::Utc>) {
    use parley_events::EventStore;
    let message_id = uuid::Uuid::now_v7();
    let event = parley_events::NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "MessageSent".into(),
        schema_version: 1,
        occurred_at: at,
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: "webhook:whatsapp".into(),
        data: json!({"at": at, "pricing": {"billable": true, "pricing_model": "PMP", "category": category,
                     "pricing_type": "regular"}}),
    };
    let stream = parley_domain::ids::message_stream(tenant, message_id);
    d.runtime
        .app
        .store
        .append(tenant, &stream, parley_events::ExpectedVersion::Any, vec![event])
        .await
        .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_and_invoices_run_on_the_lambda_handlers() {
    let graph = FakeGraph::start().await;
    let d = deploy(&graph.base).await;
    let app = d.runtime.app.clone();
    let now = chrono::Utc::now();
    let bearer = owner_headers(&d);

    // A number and one inbound message, so the export has a row.
    let mut seen = register_number(&d, &bearer).await;
    let inbound = fresh(fixture("inbound_text.json")).to_string();
    let headers =
        json!({ "content-type": "application/json", "x-hub-signature-256": sign(APP_SECRET, inbound.as_bytes()) });
    let request = api_gateway_request("POST", "/webhooks/whatsapp", headers, Some(&inbound));
    assert_eq!(invoke(parley_app::http::webhook_router(app.clone()), request).await.0, StatusCode::OK);
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;

    // The API function queues an export; the projector and the reactor see the job.
    let request = api_gateway_request("POST", "/v1/messages/export", bearer.clone(), Some("{}"));
    let (status, accepted) = invoke(d.runtime.api_router(), request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let job_id = accepted["job_id"].as_str().expect("job id").to_owned();
    let batch = next_stream_batch(&d, &mut seen).await;
    assert!(d.runtime.project(batch.clone()).await.batch_item_failures.is_empty());
    assert!(d.runtime.react(batch).await.batch_item_failures.is_empty());
    let request = api_gateway_request("GET", &format!("/v1/jobs/{job_id}"), bearer.clone(), None);
    let (status, job) = invoke(d.runtime.api_router(), request).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("queued")), "{job}");

    // The job runner takes the reactor's message from SQS and runs the export.
    let event = receive_as_lambda_event(&d, &d.runtime.resources.jobs_queue_url).await;
    assert_eq!(event.records.len(), 1, "one queue message for one queued job");
    let response = d.runtime.run_jobs(event).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    let batch = next_stream_batch(&d, &mut seen).await;
    assert!(d.runtime.project(batch.clone()).await.batch_item_failures.is_empty());
    assert!(d.runtime.react(batch).await.batch_item_failures.is_empty());
    let request = api_gateway_request("GET", &format!("/v1/jobs/{job_id}"), bearer.clone(), None);
    let (status, job) = invoke(d.runtime.api_router(), request).await;
    assert_eq!(
        (status, job["status"].as_str(), job["progress"].as_u64()),
        (StatusCode::OK, Some("succeeded"), Some(100))
    );

    // Its link is presigned by S3 and downloads the CSV without credentials.
    let link = job["download_url"].as_str().expect("a download link");
    assert!(link.contains("X-Amz-Signature="), "a presigned URL: {link}");
    let download = reqwest::get(link).await.expect("download");
    assert_eq!(download.status(), reqwest::StatusCode::OK);
    let csv = download.text().await.expect("csv");
    let mut lines = csv.lines();
    assert!(lines.next().is_some_and(|header| header.starts_with("id,conversation_id")), "{csv}");
    assert_eq!(lines.count(), 1, "one message exported: {csv}");
    assert!(csv.contains("Does it come in another color?"), "{csv}");
    // The emulator does not check signatures; the link's lifetime is the configured one.
    let expires = d.runtime.ops.settings.download_ttl.as_secs().min(7 * 24 * 3600);
    assert!(link.contains(&format!("X-Amz-Expires={expires}")), "{link}");

    // Usage this month for two tenants; the invoicer bills the month named in its payload.
    let month = parley_domain::billing::Month::of(now);
    for (tenant, category) in [("acme", "marketing"), ("acme", "utility"), ("globex", "marketing")] {
        priced_send(&d, tenant, category, now).await;
    }
    let batch = next_stream_batch(&d, &mut seen).await;
    assert!(d.runtime.project(batch.clone()).await.batch_item_failures.is_empty());
    // Lambda delivers the batch again: usage is metered once.
    assert!(d.runtime.project(batch).await.batch_item_failures.is_empty());
    let request = api_gateway_request("GET", "/v1/billing/usage", bearer.clone(), None);
    let (status, usage) = invoke(d.runtime.api_router(), request).await;
    assert_eq!((status, usage["month"].as_str()), (StatusCode::OK, Some(month.to_string().as_str())), "{usage}");
    assert_eq!(usage["billable"], 2, "acme's two priced messages, each once: {usage}");

    let payload = json!({ "month": month.to_string() });
    let ran = d.runtime.invoice(&payload).await.expect("invoicer");
    assert_eq!(ran, json!({ "month": month.to_string(), "issued": 2 }), "one invoice per billed tenant");
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;
    let again = d.runtime.invoice(&payload).await.expect("invoicer again");
    assert_eq!(again["issued"], 0, "a re-run issues nothing twice");
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;

    let request = api_gateway_request("GET", "/v1/billing/invoices", bearer.clone(), None);
    let (status, invoices) = invoke(d.runtime.api_router(), request).await;
    assert_eq!(status, StatusCode::OK, "{invoices}");
    let items = invoices["items"].as_array().or(invoices.as_array()).expect("invoices");
    assert_eq!(items.len(), 1, "one invoice for acme: {invoices}");
    assert_eq!(items[0]["month"], month.to_string());
    let lines = items[0]["lines"].to_string();
    assert!(lines.contains("marketing messages: 1") && lines.contains("utility messages: 1"), "{lines}");
    for tenant in ["acme", "globex"] {
        let invoices = d.runtime.ops.billing.invoices(tenant).await.expect("invoices");
        assert_eq!(invoices.len(), 1, "{tenant} has one invoice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiver_cleanup_and_template_poller_run_on_the_lambda_handlers() {
    let graph = FakeGraph::start().await;
    let d = deploy(&graph.base).await;
    let bearer = owner_headers(&d);
    let mut seen = register_number(&d, &bearer).await;

    // A template WhatsApp has not approved yet; the poller records its approval once.
    *graph.template_status.lock().unwrap() = "PENDING".into();
    let template = json!({"name": "order_update", "language": "en_US", "category": "UTILITY",
                          "components": [{"type": "BODY", "text": "Your order {{1}} ships today."}]})
    .to_string();
    let request = api_gateway_request("POST", "/v1/templates", bearer.clone(), Some(&template));
    let (status, created) = invoke(d.runtime.api_router(), request).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;
    assert_eq!(d.runtime.poll_templates().await.expect("poller"), json!({ "changes": 0 }), "still pending");
    graph.remote_templates.lock().unwrap()[0]["status"] = json!("APPROVED");
    assert_eq!(d.runtime.poll_templates().await.expect("poller"), json!({ "changes": 1 }));
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;
    assert_eq!(d.runtime.poll_templates().await.expect("poller"), json!({ "changes": 0 }), "recorded once");
    let request = api_gateway_request("GET", "/v1/templates/order_update", bearer.clone(), None);
    let (status, one) = invoke(d.runtime.api_router(), request).await;
    assert_eq!((status, one["items"][0]["status"].as_str()), (StatusCode::OK, Some("APPROVED")), "{one}");

    // Nothing is queued, so the cleanup fails nothing.
    assert_eq!(d.runtime.clean_up().await.expect("cleanup"), json!({ "expired": 0 }));

    // The archiver queues one run for the one tenant; the job runner runs it from SQS.
    assert_eq!(d.runtime.archive().await.expect("archiver"), json!({ "queued": 1 }));
    let batch = next_stream_batch(&d, &mut seen).await;
    assert!(d.runtime.project(batch.clone()).await.batch_item_failures.is_empty());
    assert!(d.runtime.react(batch).await.batch_item_failures.is_empty());
    let event = receive_as_lambda_event(&d, &d.runtime.resources.jobs_queue_url).await;
    assert_eq!(event.records.len(), 1, "one queue message for the archive run");
    let response = d.runtime.run_jobs(event).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    d.runtime.project(next_stream_batch(&d, &mut seen).await).await;
    let request = api_gateway_request("GET", "/v1/jobs", bearer, None);
    let (status, jobs) = invoke(d.runtime.api_router(), request).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    let runs: Vec<&Value> =
        jobs["items"].as_array().expect("jobs").iter().filter(|j| j["kind"] == "archive_run").collect();
    assert_eq!(runs.len(), 1, "{jobs}");
    assert_eq!(runs[0]["status"], "succeeded", "{jobs}");
}
