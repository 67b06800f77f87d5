//! The DynamoDB back-office read models (jobs, analytics, billing) against
//! the emulator: the ops conformance suite the SQLite adapter passes, and
//! parity with SQLite over a random workload, redelivered batches included.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use parley_app::readmodel::analytics::AnalyticsReadModel;
use parley_app::readmodel::billing::BillingReadModel;
use parley_app::readmodel::jobs::JobReadModel;
use parley_app::readmodel::ops::SqliteOpsReadModels;
use parley_app::readmodel::ops_conformance::{run_ops_readmodel_suite, OpsReadModels};
use parley_app::sealing::EventSealer;
use parley_aws::dynamodb::{DynamoOpsReadModels, DynamoReadModels};
use parley_domain::billing::Month;
use parley_events::RecordedEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

fn sealer(dir: &tempfile::TempDir) -> Arc<EventSealer> {
    Arc::new(EventSealer::new(Arc::new(parley_vault::LocalVault::open(dir.path()).expect("vault"))))
}

async fn dynamo_models(client: &aws_sdk_dynamodb::Client, sealer: Arc<EventSealer>) -> Arc<DynamoOpsReadModels> {
    let table = common::unique_name("ops-read-models");
    DynamoReadModels::create_table(client, &table).await.expect("create table");
    Arc::new(DynamoOpsReadModels::new(client.clone(), table, sealer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_ops_read_models_suite() {
    let client = common::dynamodb().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sealer = sealer(&dir);
    run_ops_readmodel_suite(|| {
        let (client, sealer) = (client.clone(), sealer.clone());
        async move {
            let models = dynamo_models(&client, sealer).await;
            OpsReadModels {
                projections: vec![models.projection()],
                jobs: models.clone(),
                analytics: models.clone(),
                billing: models,
            }
        }
    })
    .await;
}

/// Events of a random month of traffic, with per-stream versions and log positions.
struct Workload {
    events: Vec<RecordedEvent>,
    versions: BTreeMap<String, u64>,
}

impl Workload {
    fn push(&mut self, tenant: &str, stream: &str, event_type: &str, data: Value, at: DateTime<Utc>) {
        let version = self.versions.entry(stream.to_owned()).or_default();
        *version += 1;
        self.events.push(RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: stream.to_owned(),
            version: *version,
            tenant_id: tenant.to_owned(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            occurred_at: at,
            recorded_at: at,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "parity".into(),
            data,
            global_position: self.events.len() as u64 + 1,
        });
    }

    fn random(rng: &mut StdRng) -> Workload {
        let mut w = Workload { events: Vec::new(), versions: BTreeMap::new() };
        let start: DateTime<Utc> = "2026-03-30T08:00:00Z".parse().unwrap_or_default();
        let mut outbound: Vec<(String, String)> = Vec::new();
        for step in 0..120 {
            let tenant = ["t1", "t2"][rng.gen_range(0..2)];
            let number = ["n1", "n2"][rng.gen_range(0..2)];
            let conversation = format!("00000000-0000-7000-8000-00000000000{}", rng.gen_range(0..4));
            // Two days across a month's end.
            let at = start + Duration::minutes(step * 30);
            let stamp = at.to_rfc3339();
            match rng.gen_range(0..10) {
                0..=2 => {
                    let id = Uuid::now_v7();
                    let stream = format!("{tenant}/message/{id}");
                    let data = json!({"message_id": id, "conversation_id": conversation, "number_id": number,
                        "wa_id": "c1", "wamid": format!("w{step}"), "kind": "text", "content": {"body": "hi"},
                        "context": null, "sent_at": stamp, "received_at": stamp});
                    w.push(tenant, &stream, "MessageReceived", data, at);
                }
                3..=5 => {
                    let id = Uuid::now_v7();
                    let stream = format!("{tenant}/message/{id}");
                    let template = rng.gen_bool(0.5);
                    let name = ["promo", "otp"][rng.gen_range(0..2)];
                    let content = if template { json!({ "name": name }) } else { json!({"body": "hello"}) };
                    let kind = if template { "template" } else { "text" };
                    let data = json!({"message_id": id, "conversation_id": conversation, "number_id": number,
                        "wa_id": "c1", "kind": kind, "content": content,
                        "reply_to": null, "queued_at": stamp});
                    w.push(tenant, &stream, "MessageQueued", data, at);
                    outbound.push((tenant.to_owned(), stream));
                }
                6..=8 if !outbound.is_empty() => {
                    let (tenant, stream) = outbound[rng.gen_range(0..outbound.len())].clone();
                    let category = ["marketing", "utility", "service"][rng.gen_range(0..3)];
                    let kind = if category == "service" { "free_customer_service" } else { "regular" };
                    let pricing = json!({"billable": category != "service", "pricing_model": "PMP",
                        "category": category, "pricing_type": kind});
                    match rng.gen_range(0..5) {
                        0 => w.push(&tenant, &stream, "MessageSent", json!({"at": stamp, "pricing": pricing}), at),
                        1 => w.push(&tenant, &stream, "MessageDelivered", json!({"at": stamp, "pricing": pricing}), at),
                        2 => w.push(&tenant, &stream, "MessageRead", json!({"at": stamp}), at),
                        3 => w.push(&tenant, &stream, "MessagePlayed", json!({"at": stamp}), at),
                        _ => w.push(
                            &tenant,
                            &stream,
                            "MessageFailed",
                            json!({"at": stamp, "failure": {"code": 131049, "kind": "marketing_cap", "title": null, "detail": null}}),
                            at,
                        ),
                    }
                }
                _ => {
                    let job = Uuid::now_v7();
                    let stream = format!("{tenant}/job/{job}");
                    w.push(
                        tenant,
                        &stream,
                        "JobQueued",
                        json!({"job_id": job, "kind": "message_export",
                        "params": {}, "requested_by": "user:1", "notify": null, "max_attempts": 2, "at": stamp}),
                        at,
                    );
                    w.push(tenant, &stream, "JobStarted", json!({"attempt": 1, "at": stamp}), at);
                    if rng.gen_bool(0.5) {
                        w.push(tenant, &stream, "JobSucceeded", json!({"artifact": "exports/x.csv", "at": stamp}), at);
                    }
                }
            }
        }
        w
    }
}

/// What the three ports answer for the workload's tenants, days and months.
async fn answers(
    jobs: &dyn JobReadModel,
    analytics: &dyn AnalyticsReadModel,
    billing: &dyn BillingReadModel,
) -> Vec<String> {
    let mut out = Vec::new();
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 3, 29).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2026, 4, 3).unwrap_or_default(),
    );
    for tenant in ["t1", "t2"] {
        let mut daily = analytics.daily(tenant, from, to, None).await.expect("daily");
        for row in daily.values_mut() {
            row.first_response_secs.sort_unstable();
        }
        out.push(format!("{tenant} daily {daily:?}"));
        let one = analytics.daily(tenant, from, from.succ_opt().unwrap_or(from), Some("n1")).await.expect("daily");
        out.push(format!("{tenant} n1 {:?}", one.keys().collect::<Vec<_>>()));
        for month in [Month { year: 2026, month: 3 }, Month { year: 2026, month: 4 }] {
            out.push(format!("{tenant} usage {month} {:?}", billing.usage(tenant, month).await.expect("usage")));
        }
        let mut cursor = None;
        loop {
            let page = jobs.jobs(tenant, cursor.as_deref(), 7).await.expect("jobs");
            out.extend(page.items.iter().map(|j| format!("{tenant} job {j:?}")));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    out.push(format!("billed {:?}", billing.billed_tenants().await.expect("tenants")));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_as_sqlite_does_after_a_random_workload_delivered_twice() {
    let seed = std::env::var("PARLEY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    println!("PARLEY_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let workload = Workload::random(&mut rng);
    let dir = tempfile::tempdir().expect("temp dir");
    let sealer = sealer(&dir);

    let sqlite = SqliteOpsReadModels::open(&dir.path().join("ops.db")).expect("sqlite");
    for projection in sqlite.projections(sealer.clone()) {
        projection.apply(&workload.events).await.expect("sqlite projection");
    }

    // The stream hands the projector overlapping batches: each batch again,
    // and every earlier batch once more at the end.
    let client = common::dynamodb().await;
    let dynamo = dynamo_models(&client, sealer).await;
    let batches: Vec<&[RecordedEvent]> = workload.events.chunks(17).collect();
    for batch in &batches {
        dynamo.apply(batch).await.expect("apply");
        dynamo.apply(batch).await.expect("apply again");
    }
    dynamo.apply(&workload.events).await.expect("the whole log again");

    let expected = answers(sqlite.as_ref(), sqlite.as_ref(), sqlite.as_ref()).await;
    let actual = answers(dynamo.as_ref(), dynamo.as_ref(), dynamo.as_ref()).await;
    assert!(expected.iter().any(|line| line.contains(": CategoryUsage")), "the workload meters usage: {expected:#?}");
    for (e, a) in expected.iter().zip(&actual) {
        assert_eq!(e, a, "seed {seed}");
    }
    assert_eq!(expected.len(), actual.len(), "seed {seed}");
}
