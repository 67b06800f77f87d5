//! A month of simulated traffic through the local runtime on a manual
//! clock: every inbound message, reply and template send goes through the
//! real webhook, API, sender and projections; statuses come back signed
//! with Meta's `pricing` objects. At the turn of the month the scheduler
//! issues the invoice (PDF, mail, Stripe through a local stand-in speaking
//! its wire format); the Stripe webhook reports a failed payment, dunning
//! mails follow on their days, then the payment. The invoice is checked
//! against a hand computation, the analytics against counts of the input,
//! and the read models against a rebuild from zero.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::*;
use parley_app::auth::Role;
use parley_app::ops::StripeSettings;
use parley_app::readmodel::ops::SqliteOpsReadModels;
use parley_app::readmodel::sqlite::SqliteReadModels;
use parley_app::readmodel::{ConversationFilter, MessageView, ReadModels};
use parley_app::services::scheduler::ScheduleState;
use parley_app::ManualClock;
use parley_events::ProjectionRunner;
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "whsec_test_month";
const CUSTOMERS: [&str; 2] = ["16505550000", "16505550001"];

/// Records what Parley asks of Stripe and answers as Stripe does.
struct FakeStripe {
    base: String,
    requests: Mutex<Vec<(String, String, Option<String>)>>,
}

async fn stripe_post(
    State(fake): State<Arc<FakeStripe>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer sk_test_month");
    if !authorized {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"message": "Invalid API Key provided"}})));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let id = match path.as_str() {
        "customers" => "cus_fake_1".to_owned(),
        "invoices" => "in_fake_1".to_owned(),
        p if p.starts_with("invoices/") && p.ends_with("/finalize") => "in_fake_1".to_owned(),
        "invoiceitems" => format!("ii_{}", fake.requests.lock().unwrap().len()),
        _ => return (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"message": "Unrecognized request URL"}}))),
    };
    fake.requests.lock().unwrap().push((path, body, key));
    (StatusCode::OK, axum::Json(json!({"id": id, "object": "thing"})))
}

async fn start_stripe() -> Arc<FakeStripe> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Arc::new(FakeStripe {
        base: format!("http://{}", listener.local_addr().unwrap()),
        requests: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new().route("/v1/{*path}", post(stripe_post)).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    fake
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

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

fn status(wamid: &str, to: &str, kind: &str, when: DateTime<Utc>, pricing: Option<Value>) -> Value {
    let mut s = json!({"id": wamid, "status": kind, "timestamp": when.timestamp().to_string(), "recipient_id": to});
    if let Some(p) = pricing {
        s["pricing"] = p;
    }
    if kind == "failed" {
        s["errors"] = json!([{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
                              "message": "Marketing message cap", "error_data": {"details": "held back"}}]);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
        "statuses": [s]}}]}]})
}

fn pricing(billable: bool, category: &str, kind: &str) -> Value {
    json!({"billable": billable, "pricing_model": "PMP", "category": category, "type": kind})
}

#[derive(Clone, Copy, PartialEq)]
enum Sent {
    Reply,
    Marketing,
    Utility,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_traffic_is_invoiced_and_counted_exactly() {
    let clock = Arc::new(ManualClock::new(at("2026-01-10T09:00:00Z")));
    let stripe = start_stripe().await;
    let graph = FakeGraph::start().await;
    let mut server = Server::start_with_clock(WhatsApp::Fake(graph), clock.clone(), |c| {
        c.ops.stripe = Some(StripeSettings {
            api_base: stripe.base.clone(),
            secret_key: "sk_test_month".into(),
            webhook_secret: WEBHOOK_SECRET.into(),
        });
        // The test runs the schedule itself, at the times it chooses.
        c.ops.scheduler_interval = Duration::from_secs(3600);
    })
    .await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    server.create_template(&token, "spring_sale", "MARKETING", "Spring sale: 20 % off.").await;
    server.create_template(&token, "order_update", "UTILITY", "Your order has shipped.").await;

    // January 10th: the starter plan, billed in EUR with 19 % VAT; the trial runs to the 24th.
    let (code, plan) = server
        .post(
            &token,
            "/v1/billing/plan",
            &json!({"plan": "starter", "email": "billing@acme.test", "tax_id": "DE123456789",
                    "vat_rate_percent": 19, "currency": "EUR"}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    assert_eq!(plan["trial_ends_at"], "2026-01-24T09:00:00Z");
    let agent = server.token("acme", Role::Agent);
    assert_eq!(server.post(&agent, "/v1/billing/plan", &json!({"plan": "growth"})).await.0, StatusCode::FORBIDDEN);
    let (code, _) = server.post(&token, "/v1/billing/plan", &json!({"plan": "platinum"})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    // February, day by day: two customers write at 09:00; the first gets an
    // answer after 1-5 minutes, the second after 10; then a marketing and a
    // utility template. Every seventh day the marketing send fails.
    let mut response_secs = Vec::new();
    for day in 1..=28u32 {
        let t0 = Utc.with_ymd_and_hms(2026, 2, day, 9, 0, 0).unwrap();
        if day == 15 {
            // Upgrade at midnight on the 15th: half the month on each plan.
            clock.set(Utc.with_ymd_and_hms(2026, 2, 15, 0, 0, 0).unwrap());
            let (code, change) = server.post(&token, "/v1/billing/plan", &json!({"plan": "growth"})).await;
            assert_eq!((code, change["previous"].as_str()), (StatusCode::OK, Some("starter")), "{change}");
        }
        clock.set(t0);
        for (k, customer) in CUSTOMERS.iter().enumerate() {
            let (code, r) =
                server.webhook(&inbound(customer, &format!("wamid.IN-{day}-{k}"), t0, "hello"), APP_SECRET).await;
            assert_eq!(code, StatusCode::OK, "{r}");
        }
        let first_answer = i64::from(day % 5 + 1) * 60;
        let mut sent = Vec::new();
        for (k, after) in [(0usize, first_answer), (1, 600)] {
            clock.set(t0 + Span::seconds(after));
            let body = json!({"from": PNID, "to": CUSTOMERS[k], "type": "text", "text": {"body": "Thanks, on it."}});
            let (code, q) = server.post(&token, "/v1/messages", &body).await;
            assert_eq!(code, StatusCode::ACCEPTED, "day {day}: {q}");
            sent.push((q["id"].as_str().unwrap().to_owned(), CUSTOMERS[k], Sent::Reply));
            response_secs.push(after);
        }
        for (k, name, kind) in [(0, "spring_sale", Sent::Marketing), (1, "order_update", Sent::Utility)] {
            let body = json!({"from": PNID, "to": CUSTOMERS[k], "type": "template",
                              "template": {"name": name, "language": {"code": "en_US"}}});
            let (code, q) = server.post(&token, "/v1/messages", &body).await;
            assert_eq!(code, StatusCode::ACCEPTED, "day {day}: {q}");
            sent.push((q["id"].as_str().unwrap().to_owned(), CUSTOMERS[k], kind));
        }
        // Meta answers each send; its statuses come back a little later.
        let later = t0 + Span::seconds(700);
        for (id, to, kind) in sent {
            let path = format!("/v1/messages/{id}");
            let wamid = server
                .eventually(Duration::from_secs(10), || async {
                    let (_, m) = server.get(&token, &path).await;
                    m["wamid"].as_str().map(str::to_owned)
                })
                .await;
            let price = match kind {
                Sent::Reply => pricing(false, "service", "free_customer_service"),
                Sent::Marketing => pricing(true, "marketing", "regular"),
                Sent::Utility => pricing(true, "utility", "regular"),
            };
            let statuses: Vec<Value> = if kind == Sent::Marketing && day % 7 == 0 {
                vec![status(&wamid, to, "failed", later, None)]
            } else {
                let mut s = vec![
                    status(&wamid, to, "sent", later, Some(price.clone())),
                    status(&wamid, to, "delivered", later + Span::seconds(5), Some(price)),
                ];
                if kind == Sent::Reply {
                    s.push(status(&wamid, to, "read", later + Span::seconds(60), None));
                }
                s
            };
            for s in statuses {
                let (code, r) = server.webhook(&s, APP_SECRET).await;
                assert_eq!(code, StatusCode::OK, "{r}");
            }
        }
    }
    server.settled().await;

    // Usage, as metered from the statuses' pricing objects.
    let (_, usage) = server.get(&token, "/v1/billing/usage?month=2026-02").await;
    let category = |name: &str| usage["categories"].as_array().unwrap().iter().find(|c| c["category"] == name).cloned();
    assert_eq!(usage["billable"], 24 + 28, "{usage}");
    assert_eq!(category("marketing").unwrap()["billable"], 24);
    assert_eq!(category("utility").unwrap()["billable"], 28);
    assert_eq!(
        (category("service").unwrap()["billable"].as_u64(), category("service").unwrap()["free"].as_u64()),
        (Some(0), Some(56))
    );
    assert_eq!(usage["plan"], "growth");

    // Analytics for the month in one call, against counts of the input.
    let (code, summary) = server.get(&token, "/v1/analytics/summary?from=2026-02-01&to=2026-02-28").await;
    assert_eq!(code, StatusCode::OK, "{summary}");
    let totals = &summary["totals"];
    assert_eq!(totals["inbound"], 56);
    assert_eq!(totals["outbound"], 112);
    assert_eq!(totals["delivered"], 108);
    assert_eq!(totals["read"], 56);
    assert_eq!(totals["failed"], 4);
    assert_eq!(totals["failed_by_kind"], json!({"marketing_cap": 4}));
    assert_eq!(totals["templates"], json!({"order_update": 28, "spring_sale": 28}));
    assert_eq!(totals["delivery_rate"].as_f64(), Some(((108.0 / 112.0) * 10_000.0_f64).round() / 10_000.0));
    response_secs.sort_unstable();
    let rank = |p: usize| response_secs[(p * response_secs.len()).div_ceil(100) - 1];
    assert_eq!(totals["first_responses"], 56);
    assert_eq!(totals["first_response_median_secs"].as_i64(), Some(rank(50)));
    assert_eq!(totals["first_response_p90_secs"].as_i64(), Some(rank(90)));
    let days = summary["days"].as_array().unwrap();
    assert_eq!(days.len(), 28);
    assert_eq!((days[6]["date"].as_str(), days[6]["failed"].as_u64()), (Some("2026-02-07"), Some(1)));

    // March 1st: the invoicer issues February's invoice.
    clock.set(at("2026-03-01T00:05:00Z"));
    let mut schedule = ScheduleState::default();
    let pass = server.ops.run_schedule(&mut schedule, clock_now(&server)).await.unwrap();
    assert_eq!(pass.invoices_issued, 1);
    server.settled().await;
    let (_, list) = server.get(&token, "/v1/billing/invoices").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let invoice = &items[0];
    // By hand: starter 49.00 for 14 of 28 days = 24.50; growth 199.00 for 14 of 28 days = 99.50;
    // all 52 billable messages are within the allowance; VAT 19 % of 124.00 = 23.56.
    let amounts: Vec<i64> =
        invoice["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts.iter().filter(|a| **a != 0).copied().collect::<Vec<_>>(), vec![2_450, 9_950]);
    assert_eq!(
        (invoice["subtotal"].as_i64(), invoice["vat"].as_i64(), invoice["total"].as_i64()),
        (Some(12_400), Some(2_356), Some(14_756))
    );
    assert_eq!((invoice["currency"].as_str(), invoice["tax_id"].as_str()), (Some("EUR"), Some("DE123456789")));
    assert_eq!(invoice["status"], "open");
    let lines = invoice["lines"].to_string();
    assert!(lines.contains("marketing messages: 24 (24 included)") && lines.contains("free of charge: 56"), "{lines}");
    let pdf = reqwest::get(invoice["pdf_url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let id = invoice["id"].as_str().unwrap();
    assert_eq!(server.get(&token, &format!("/v1/billing/invoices/{id}")).await.1["total"], 14_756);
    let other = server.token("bolt", Role::Owner);
    assert_eq!(server.get(&other, &format!("/v1/billing/invoices/{id}")).await.0, StatusCode::NOT_FOUND);

    // Stripe got the customer, the invoice, one item per charged line plus VAT, and the finalization.
    let calls: Vec<String> = stripe.requests.lock().unwrap().iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(
        calls,
        ["customers", "invoices", "invoiceitems", "invoiceitems", "invoiceitems", "invoices/in_fake_1/finalize"]
    );
    let item_total: i64 = stripe
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == "invoiceitems")
        .map(|(_, body, _)| form_value(body, "amount").parse::<i64>().unwrap())
        .sum();
    assert_eq!(item_total, 14_756);

    // A re-run issues nothing twice.
    let again = server.ops.run_schedule(&mut ScheduleState::default(), clock_now(&server)).await.unwrap();
    assert_eq!(again.invoices_issued, 0);
    assert_eq!(stripe.requests.lock().unwrap().len(), 6);
    let invoice_mails = mails_to(&server, "billing@acme.test", "Parley invoice").await;
    assert_eq!(invoice_mails, 1);

    // The payment fails: a bad signature changes nothing, a genuine one marks it.
    let failed = json!({"id": "evt_1", "type": "invoice.payment_failed",
                        "data": {"object": {"id": "in_fake_1", "object": "invoice"}}});
    assert_eq!(stripe_webhook(&server, &failed, "whsec_wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(stripe_webhook(&server, &failed, WEBHOOK_SECRET).await, StatusCode::OK);
    server.settled().await;
    assert_eq!(server.get(&token, "/v1/billing/invoices").await.1["items"][0]["status"], "payment_failed");

    // Dunning: at once, not again the next day, again on day 3; none once paid.
    let mut dunned = 0;
    for (offset_days, expected) in [(0, 1), (1, 0), (3, 1)] {
        clock.set(at("2026-03-01T00:10:00Z") + Span::days(offset_days));
        let pass = server.ops.run_schedule(&mut schedule, clock_now(&server)).await.unwrap();
        assert_eq!(pass.dunning_mails, expected, "day {offset_days}");
        dunned += expected;
        server.settled().await;
    }
    let paid =
        json!({"id": "evt_2", "type": "invoice.paid", "data": {"object": {"id": "in_fake_1", "object": "invoice"}}});
    assert_eq!(stripe_webhook(&server, &paid, WEBHOOK_SECRET).await, StatusCode::OK);
    server.settled().await;
    clock.set(at("2026-03-09T00:00:00Z"));
    assert_eq!(server.ops.run_schedule(&mut schedule, clock_now(&server)).await.unwrap().dunning_mails, 0);
    assert_eq!(server.get(&token, "/v1/billing/invoices").await.1["items"][0]["status"], "paid");
    assert_eq!(mails_to(&server, "billing@acme.test", "Payment failed").await, dunned);

    // Every back-office read model, rebuilt from zero, equals the one built as events came.
    // Stop every writer (workers, schedules, HTTP), then bring the live read models to the head.
    server.stop_workers_only().await;
    server.projections.catch_up().await.unwrap();
    let live = server.ops_models.dump().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = SqliteOpsReadModels::open(&dir.path().join("ops.db")).unwrap();
    let runner = ProjectionRunner::new(server.app.store.clone(), fresh.projections(server.app.sealer.clone()));
    runner.catch_up().await.unwrap();
    let rebuilt = fresh.dump().await.unwrap();
    assert!(live.len() > 100, "the read models hold the month: {}", live.len());
    assert_eq!(live, rebuilt);

    // So do the message and conversation read models.
    let core = SqliteReadModels::open(&dir.path().join("readmodels.db")).unwrap();
    ProjectionRunner::new(server.app.store.clone(), core.projections()).catch_up().await.unwrap();
    let (live_messages, rebuilt_messages) =
        (all_messages(server.app.read_models.as_ref()).await, all_messages(core.as_ref()).await);
    assert_eq!(live_messages.len(), 56 + 112);
    assert_eq!(live_messages, rebuilt_messages);
    let now = clock_now(&server);
    let filter = ConversationFilter::default();
    let live = server.app.read_models.conversations("acme", &filter, now, None, 200).await.unwrap();
    assert_eq!(live.items.len(), 2);
    assert_eq!(live, core.conversations("acme", &filter, now, None, 200).await.unwrap());
    server.stop().await;
}

async fn all_messages(read_models: &dyn ReadModels) -> Vec<MessageView> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = read_models.messages("acme", None, cursor.as_deref(), 200).await.unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

fn clock_now(server: &Server) -> DateTime<Utc> {
    server.app.clock.now()
}

fn form_value(body: &str, key: &str) -> String {
    body.split('&').find_map(|pair| pair.strip_prefix(&format!("{key}="))).unwrap_or_default().to_owned()
}

async fn mails_to(server: &Server, to: &str, subject: &str) -> usize {
    server.outbox().await.iter().filter(|m| m.to == to && m.subject.contains(subject)).count()
}

async fn stripe_webhook(server: &Server, event: &Value, secret: &str) -> StatusCode {
    let raw = serde_json::to_vec(event).unwrap();
    let signature = parley_app::services::stripe::sign(secret, &raw, Utc::now().timestamp());
    let r = server
        .http
        .post(format!("{}/webhooks/stripe", server.base))
        .header("Stripe-Signature", signature)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    read(r).await.0
}
