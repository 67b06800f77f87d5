//! The scheduled jobs of SPEC 6.3 beyond invoicing, on the local runtime
//! with a manual clock: the archiver (and restore), the expired-message
//! cleanup and the template status poller.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::*;
use parley_app::auth::Role;
use parley_app::readmodel::MessageView;
use parley_app::services::archive::{events_key, messages_key, ArchiveManifest, ArchivedMessage};
use parley_app::services::scheduler::ScheduleState;
use parley_app::{Clock, ManualClock};
use parley_domain::billing::Month;
use parley_domain::ids;
use parley_events::RecordedEvent;
use serde_json::{json, Value};
use uuid::Uuid;

fn inbound(wa_id: &str, wamid: &str, when: DateTime<Utc>, text: &str) -> Value {
    let mut body = fixture("inbound_text.json");
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(wa_id);
    let m = &mut value["messages"][0];
    m["from"] = json!(wa_id);
    m["id"] = json!(wamid);
    m["timestamp"] = json!(when.timestamp().to_string());
    m["text"]["body"] = json!(text);
    body
}

fn status(wamid: &str, to: &str, kind: &str, when: DateTime<Utc>) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
        "statuses": [{"id": wamid, "status": kind, "timestamp": when.timestamp().to_string(), "recipient_id": to}]}}]}]})
}

fn gunzip_lines<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Vec<T> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).expect("gzip");
    text.lines().map(|l| serde_json::from_str(l).expect("one JSON value per line")).collect()
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// Sends a text reply now and waits for its wamid.
async fn reply(server: &Server, token: &str, to: &str, text: &str) -> (Uuid, String) {
    let body = json!({"from": PNID, "to": to, "type": "text", "text": {"body": text}});
    let (code, q) = server.post(token, "/v1/messages", &body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{q}");
    let id: Uuid = q["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/v1/messages/{id}");
    let wamid = server
        .eventually(Duration::from_secs(10), || async {
            let (_, m) = server.get(token, &path).await;
            m["wamid"].as_str().map(str::to_owned)
        })
        .await;
    (id, wamid)
}

/// Messages of acme the search index holds for `word`.
async fn indexed(server: &Server, word: &str) -> usize {
    let terms = server.app.blinder.terms("acme", &[word.to_owned()], false).await.unwrap().expect("a search key");
    server.app.blinder.index().search("acme", &terms, None, 100).await.unwrap().items.len()
}

async fn export(server: &Server, token: &str, filter: Value) -> Vec<Vec<String>> {
    let (code, accepted) = server.post(token, "/v1/messages/export", &filter).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    let path = format!("/v1/jobs/{}", accepted["job_id"].as_str().unwrap());
    let job = server
        .eventually(Duration::from_secs(15), || async {
            let (_, job) = server.get(token, &path).await;
            (job["status"] == "succeeded").then_some(job)
        })
        .await;
    let text = reqwest::get(job["download_url"].as_str().unwrap()).await.unwrap().text().await.unwrap();
    csv_rows(&text)
}

async fn views(server: &Server, ids: &[Uuid]) -> Vec<Option<MessageView>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(server.app.read_models.message("acme", *id).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_archived_exported_and_restored_unchanged() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()));
    let graph = FakeGraph::start().await;
    let server = Server::start_with_clock(WhatsApp::Fake(graph), clock.clone(), |c| {
        c.ops.scheduler_interval = Duration::from_secs(3600);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);

    // January: two conversations' worth of messages, statuses, a tag.
    let mut january = Vec::new();
    let mut late = None;
    for day in 5..=7u32 {
        let t0 = Utc.with_ymd_and_hms(2026, 1, day, 9, 0, 0).unwrap();
        clock.set(t0);
        let wamid = format!("wamid.JAN-{day}");
        assert_eq!(
            server.webhook(&inbound(CUSTOMER, &wamid, t0, &format!("hello {day}")), APP_SECRET).await.0,
            StatusCode::OK
        );
        january.push(ids::inbound_message_id("acme", &wamid));
        clock.set(t0 + Span::minutes(3));
        let (id, out_wamid) = reply(&server, &token, CUSTOMER, &format!("answer {day}")).await;
        january.push(id);
        if day == 7 {
            late = Some((id, out_wamid));
            continue;
        }
        for (kind, after) in [("sent", 4), ("delivered", 5), ("read", 9)] {
            let (code, r) =
                server.webhook(&status(&out_wamid, CUSTOMER, kind, t0 + Span::minutes(after)), APP_SECRET).await;
            assert_eq!(code, StatusCode::OK, "{r}");
        }
    }
    let tagged = january[1];
    let tagging = server.http.put(format!("{}/v1/messages/{tagged}/tags", server.base)).bearer_auth(&token);
    let (code, r) = read(tagging.json(&json!({"tags": ["vip"]})).send().await.unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{r}");
    // February: stays hot.
    let feb = Utc.with_ymd_and_hms(2026, 2, 10, 9, 0, 0).unwrap();
    clock.set(feb);
    server.webhook(&inbound(CUSTOMER, "wamid.FEB-1", feb, "february"), APP_SECRET).await;
    let february = ids::inbound_message_id("acme", "wamid.FEB-1");
    // The last January reply is still in use: its read status comes in April.
    let (late_id, late_wamid) = late.unwrap();
    let april = Utc.with_ymd_and_hms(2026, 4, 20, 9, 0, 0).unwrap();
    clock.set(april);
    server.webhook(&status(&late_wamid, CUSTOMER, "read", april), APP_SECRET).await;
    server.settled().await;

    let archived_ids: Vec<Uuid> = january.iter().copied().filter(|id| *id != late_id).collect();
    let before_views = views(&server, &archived_ids).await;
    assert!(before_views.iter().all(Option::is_some));
    assert_eq!(before_views[1].as_ref().unwrap().tags, ["vip"]);
    let mut before_events: Vec<RecordedEvent> = Vec::new();
    for id in &archived_ids {
        before_events.extend(server.app.store.read_stream(&ids::message_stream("acme", *id), 0).await.unwrap());
    }
    before_events.sort_by_key(|e| e.global_position);
    let total_before = server.app.read_models.count_messages("acme").await.unwrap();
    assert_eq!((indexed(&server, "hello").await, indexed(&server, "answer").await), (3, 3));

    // May 1st: the daily pass queues the archive run (90 days: before January 31st).
    clock.set(Utc.with_ymd_and_hms(2026, 5, 1, 0, 5, 0).unwrap());
    let mut schedule = ScheduleState::default();
    let pass = server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap();
    assert_eq!(pass.archive_runs_queued, 1);
    assert_eq!(server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap().archive_runs_queued, 0, "once a day");
    let job = server
        .eventually(Duration::from_secs(15), || async {
            let (_, list) = server.get(&token, "/v1/jobs").await;
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["kind"] == "archive_run" && j["status"] == "succeeded")
                .cloned()
        })
        .await;
    assert_eq!(job["progress"], 100);
    let manifest_key = server
        .ops
        .job_views
        .job("acme", job["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .artifact
        .unwrap();
    let manifest: ArchiveManifest =
        serde_json::from_slice(&server.app.blobs.get(&manifest_key).await.unwrap().unwrap().bytes).unwrap();
    let jan = Month { year: 2026, month: 1 };
    assert_eq!(manifest.months.len(), 1, "{manifest:?}");
    assert_eq!(manifest.months[0].events, events_key("acme", jan));
    assert_eq!(manifest.months[0].messages, messages_key("acme", jan));
    assert_eq!(manifest.months[0].streams, archived_ids.len());

    // The hot store no longer holds them; the late one and February stay.
    for id in &archived_ids {
        assert!(server.app.store.read_stream(&ids::message_stream("acme", *id), 0).await.unwrap().is_empty());
        assert_eq!(server.app.read_models.message("acme", *id).await.unwrap(), None);
    }
    assert!(server.app.read_models.message("acme", late_id).await.unwrap().is_some(), "in use: hot");
    assert!(server.app.read_models.message("acme", february).await.unwrap().is_some());
    assert_eq!(server.app.read_models.count_messages("acme").await.unwrap(), total_before - archived_ids.len() as u64);
    // Search covers the hot store: only the late reply is still found.
    assert_eq!((indexed(&server, "hello").await, indexed(&server, "answer").await), (0, 1));
    assert_eq!(indexed(&server, "february").await, 1);

    // The blobs hold gzip JSON lines equal to the events and the rows.
    let events_blob = server.app.blobs.get(&events_key("acme", jan)).await.unwrap().unwrap();
    assert_eq!(&events_blob.bytes[..2], &[0x1f, 0x8b]);
    let archived_events: Vec<RecordedEvent> = gunzip_lines(&events_blob.bytes);
    assert_eq!(archived_events, before_events);
    let rows: Vec<ArchivedMessage> =
        gunzip_lines(&server.app.blobs.get(&messages_key("acme", jan)).await.unwrap().unwrap().bytes);
    let mut expected_rows: Vec<MessageView> = before_views.iter().flatten().cloned().collect();
    expected_rows.sort_by_key(|m| (m.created_at, m.id));
    assert_eq!(rows, expected_rows);
    // Personal fields stay sealed, exactly as in the events.
    let mut text = String::new();
    flate2::read::GzDecoder::new(&events_blob.bytes[..]).read_to_string(&mut text).unwrap();
    assert!(!text.contains("hello 5") && !text.contains("answer 5"), "no plain text in the archive");

    // Re-running the month writes nothing twice.
    let cutoff = manifest.cutoff;
    let again = server.ops.archive_before("acme", cutoff, |_, _| async { Ok(()) }).await.unwrap();
    assert!(again.is_empty());
    assert_eq!(server.app.blobs.get(&events_key("acme", jan)).await.unwrap().unwrap().bytes, events_blob.bytes);

    // The export of January still lists them (with their opened text).
    let rows = export(&server, &token, json!({"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})).await;
    let text_col = rows[0].iter().position(|h| h == "text").unwrap();
    let texts: Vec<&str> = rows[1..].iter().map(|r| r[text_col].as_str()).collect();
    assert_eq!(rows.len(), 1 + january.len(), "{rows:?}");
    for day in 5..=7 {
        assert!(
            texts.contains(&format!("hello {day}").as_str()) && texts.contains(&format!("answer {day}").as_str()),
            "{texts:?}"
        );
    }

    // Restore (the CLI, on the same data directory) brings them back as they were.
    let mut server = server;
    server.stop_workers_only().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["archive", "restore", "--tenant", "acme", "--month", "2026-01"])
        .env("PARLEY_DATA_DIR", server.data_dir())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(&format!("{} put back", before_events.len())), "{said}");
    assert_eq!(views(&server, &archived_ids).await, before_views, "read models equal the pre-archive ones");
    let mut restored = Vec::new();
    for id in &archived_ids {
        restored.extend(server.app.store.read_stream(&ids::message_stream("acme", *id), 0).await.unwrap());
    }
    restored.sort_by_key(|e| e.global_position);
    assert_eq!(restored, before_events);
    let twice = server.ops.restore_month("acme", jan).await.unwrap();
    assert_eq!((twice.events, twice.messages), (0, 0), "restoring twice changes nothing");
    assert_eq!(server.app.read_models.count_messages("acme").await.unwrap(), total_before);
    assert_eq!((indexed(&server, "hello").await, indexed(&server, "answer").await), (3, 3), "found again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_that_can_no_longer_go_out_fail_with_a_clear_kind() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let graph = FakeGraph::start().await;
    let server = Server::start_with_clock(WhatsApp::Fake(graph.clone()), clock.clone(), |c| {
        c.ops.scheduler_interval = Duration::from_secs(3600);
        c.ops.queued_message_ttl = Duration::from_secs(3600);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.webhook(&inbound(CUSTOMER, "wamid.Q-1", t0, "hi"), APP_SECRET).await;
    server.settled().await;
    // WhatsApp is in maintenance for two sends: they wait a minute to retry.
    let maintenance = json!({"error": {"message": "Business account is in maintenance mode", "type": "OAuthException",
                                        "code": 131057, "fbtrace_id": "A1"}});
    graph.answer(400, maintenance.clone());
    graph.answer(400, maintenance);

    let queue_one = |text: &'static str| {
        let server = &server;
        let token = token.clone();
        async move {
            let body = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": text}});
            let (code, q) = server.post(&token, "/v1/messages", &body).await;
            assert_eq!(code, StatusCode::ACCEPTED, "{q}");
            let id: Uuid = q["id"].as_str().unwrap().parse().unwrap();
            server
                .eventually(Duration::from_secs(10), || async {
                    let state = server.app.messages.load(&ids::message_stream("acme", id)).await.unwrap().state;
                    matches!(state.dispatch, parley_domain::message::Dispatch::RetryScheduled { .. }).then_some(())
                })
                .await;
            id
        }
    };
    clock.set(t0 + Span::minutes(1));
    let stale = queue_one("waited too long").await;
    let mut schedule = ScheduleState::default();
    assert_eq!(server.ops.expire_queued_messages(clock.now()).await.unwrap(), 0, "young, window open");

    // Two hours on: past the queue's hour, the window still open.
    clock.set(t0 + Span::hours(2));
    let pass = server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap();
    assert_eq!(pass.expired_messages, 1);
    let windowed = queue_one("window closes first").await;
    let (sent, _) = reply(&server, &token, CUSTOMER, "goes out").await;

    // 24h after the inbound message the window has closed.
    clock.set(t0 + Span::hours(24) + Span::minutes(1));
    assert_eq!(server.ops.expire_queued_messages(clock.now()).await.unwrap(), 1);
    assert_eq!(server.ops.expire_queued_messages(clock.now()).await.unwrap(), 0, "nothing fails twice");
    server.settled().await;
    for (id, kind) in [(stale, "expired"), (windowed, "window_closed")] {
        let (_, m) = server.get(&token, &format!("/v1/messages/{id}")).await;
        assert_eq!((m["status"].as_str(), m["error"]["kind"].as_str()), (Some("failed"), Some(kind)), "{m}");
    }
    let (_, m) = server.get(&token, &format!("/v1/messages/{sent}")).await;
    assert_ne!(m["status"], "failed", "{m}");
    assert_eq!(graph.sends(), 3, "the expired ones were never sent again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_poller_records_status_changes_once() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()));
    let graph = FakeGraph::start().await;
    let server = Server::start_with_clock(WhatsApp::Fake(graph.clone()), clock.clone(), |c| {
        c.ops.scheduler_interval = Duration::from_secs(3600);
        c.ops.template_poll_interval = Duration::from_secs(600);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.settled().await;
    *graph.template_status.lock().unwrap() = "PENDING".into();
    let template = json!({"name": "order_update", "language": "en_US", "category": "UTILITY",
                          "components": [{"type": "BODY", "text": "Your order {{1}} ships today."}]});
    let (code, created) = server.post(&token, "/v1/templates", &template).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");

    let mut schedule = ScheduleState::default();
    let lists = || graph.template_requests.lock().unwrap().iter().filter(|r| r.0.starts_with("GET")).count();
    let pass = server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap();
    assert_eq!((pass.template_changes, lists()), (0, 1), "still pending: nothing recorded");
    server.settled().await;
    let head = server.event_log_head().await;

    // WhatsApp approves it; the poll within the interval does not ask yet.
    graph.remote_templates.lock().unwrap()[0]["status"] = json!("APPROVED");
    clock.set(clock.now() + Span::minutes(5));
    assert_eq!(server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap().template_changes, 0);
    assert_eq!(lists(), 1);
    clock.set(clock.now() + Span::minutes(6));
    assert_eq!(server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap().template_changes, 1);
    server.settled().await;
    let (_, one) = server.get(&token, "/v1/templates/order_update").await;
    assert_eq!(one["items"][0]["status"], "APPROVED", "{one}");
    let after_change = server.event_log_head().await;
    assert!(after_change > head);

    // Polling again changes nothing and records nothing.
    clock.set(clock.now() + Span::minutes(11));
    assert_eq!(server.ops.run_schedule(&mut schedule, clock.now()).await.unwrap().template_changes, 0);
    assert_eq!(lists(), 3);
    server.settled().await;
    assert_eq!(server.event_log_head().await, after_change, "idempotent: no event when nothing changed");
    server.stop().await;
}
