//! Jobs end to end: a CSV export through the job queue and runner, its
//! signed download link, the mail to the requester, and retries of a job
//! that keeps failing.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use parley_app::services::jobs::NewJob;
use parley_domain::job::JobKind;
use serde_json::{json, Value};

async fn wait_for_job(server: &Server, token: &str, id: &str, status: &str) -> Value {
    let path = format!("/v1/jobs/{id}");
    server
        .eventually(Duration::from_secs(15), || async {
            // The read model may not have seen the job yet.
            let (code, job) = server.get(token, &path).await;
            assert!(code == StatusCode::OK || code == StatusCode::NOT_FOUND, "{job}");
            (job["status"] == status).then_some(job)
        })
        .await
}

#[tokio::test]
async fn an_export_job_writes_a_csv_behind_an_expiring_link_and_mails_it() {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(20))).await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "On its way, \"today\"."}});
    let (status, queued) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    server.settled().await;

    let (status, bad) = server.post(&token, "/v1/messages/export", &json!({"direction": "sideways"})).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    let (status, bad) = server.post(&token, "/v1/messages/export", &json!({"colour": "red"})).await;
    assert!(status.is_client_error(), "unknown fields are refused: {bad}");

    let (status, accepted) = server
        .post(&token, "/v1/messages/export", &json!({"direction": "outbound", "notify_email": "ops@acme.test"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job_id"].as_str().unwrap().to_owned();
    let job = wait_for_job(&server, &token, &id, "succeeded").await;
    assert_eq!((job["progress"].as_u64(), job["attempts"].as_u64(), job["kind"].as_str()), (Some(100), Some(1), Some("message_export")));
    let url = job["download_url"].as_str().unwrap().to_owned();

    let csv = reqwest::get(&url).await.unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut reader = csv_rows(&text);
    let header = reader.remove(0);
    assert_eq!(header[0], "id");
    assert_eq!(reader.len(), 1, "only the outbound message: {text}");
    let text_col = header.iter().position(|h| h == "text").unwrap();
    assert_eq!(reader[0][text_col], "On its way, \"today\".");
    assert_eq!(reader[0][header.iter().position(|h| h == "id").unwrap()], queued["id"].as_str().unwrap());

    // A tampered link is refused, and so is another tenant's look at the job.
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status().as_u16(), 403);
    let other = server.token("bolt", Role::Owner);
    assert_eq!(server.get(&other, &format!("/v1/jobs/{id}")).await.0, StatusCode::NOT_FOUND);
    assert!(server.get(&other, "/v1/jobs").await.1["items"].as_array().unwrap().is_empty());

    // Without filters both messages are exported; the list shows both jobs, newest first.
    let (_, all) = server.post(&token, "/v1/messages/export", &json!({})).await;
    let all_id = all["job_id"].as_str().unwrap().to_owned();
    let job = wait_for_job(&server, &token, &all_id, "succeeded").await;
    let text = reqwest::get(job["download_url"].as_str().unwrap()).await.unwrap().text().await.unwrap();
    assert_eq!(csv_rows(&text).len(), 3, "header + inbound + outbound: {text}");
    let (_, list) = server.get(&token, "/v1/jobs?limit=1").await;
    assert_eq!(list["items"][0]["id"], all_id.as_str());
    let (_, rest) = server.get(&token, &format!("/v1/jobs?cursor={}", list["next_cursor"].as_str().unwrap())).await;
    assert_eq!(rest["items"][0]["id"], id.as_str());

    let (_, doc) = server.get(&token, "/openapi.json").await;
    for path in ["/v1/jobs", "/v1/jobs/{id}", "/v1/messages/export", "/v1/analytics/summary", "/v1/billing/usage",
                 "/v1/billing/invoices", "/v1/billing/invoices/{id}", "/v1/billing/plan", "/webhooks/stripe"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    for bad in ["from=2026-02-10&to=2026-02-01", "from=2025-01-01&to=2026-02-01", "granularity=week", "colour=red"] {
        let (code, p) = server.get(&token, &format!("/v1/analytics/summary?{bad}")).await;
        assert!(code.is_client_error(), "{bad}: {p}");
    }
    let (code, p) = server.get(&token, "/v1/billing/usage?month=2026-13").await;
    assert_eq!((code, p["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    let viewer = server.token("acme", Role::Viewer);
    assert_eq!(server.post(&viewer, "/v1/messages/export", &json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(server.get(&viewer, "/v1/billing/invoices").await.0, StatusCode::FORBIDDEN);
    assert_eq!(server.http.get(format!("{}/v1/jobs", server.base)).send().await.unwrap().status().as_u16(), 401);

    let mails = server.outbox().await;
    let mail = mails.iter().find(|m| m.to == "ops@acme.test").expect("the requester is mailed");
    assert!(mail.subject.contains("ready"), "{mail:?}");
    assert!(mail.text.contains("/blobs/exports/acme/"), "{mail:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_until_its_attempts_are_spent_then_reported() {
    let server = Server::start_with(WhatsApp::Simulator(Duration::from_millis(20)), |c| {
        c.ops.job_max_attempts = 3;
        c.ops.job_retry_delay = Duration::from_millis(50);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    // Parameters the export cannot read: every attempt fails.
    let id = server
        .ops
        .queue_job(
            "acme",
            NewJob {
                kind: JobKind::MessageExport,
                params: json!({"no_such_filter": true}),
                requested_by: "user:ops".into(),
                notify: Some("ops@acme.test".into()),
            },
        )
        .await
        .unwrap();
    let job = wait_for_job(&server, &token, &id.to_string(), "failed").await;
    assert_eq!(job["attempts"], 3);
    assert!(job["error"].as_str().unwrap().contains("not an export filter"), "{job}");
    assert!(job["download_url"].is_null());
    let mails = server
        .eventually(Duration::from_secs(5), || async {
            let m = server.outbox().await;
            (!m.is_empty()).then_some(m)
        })
        .await;
    assert_eq!(mails.len(), 1, "one mail, for the final failure only: {mails:?}");
    assert!(mails[0].subject.contains("failed") && mails[0].text.contains("after 3 attempts"), "{:?}", mails[0]);
    server.stop().await;
}

/// Splits CSV text into records with the csv crate's reader.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}
