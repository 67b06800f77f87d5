//! Every projection, rebuilt from zero, ends equal to the one built as the
//! events came, after a random workload (seeded; the seed is printed so a
//! failure can be replayed with PARLEY_TEST_SEED).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use parley_app::readmodel::ops::SqliteOpsReadModels;
use parley_app::readmodel::sqlite::SqliteReadModels;
use parley_app::readmodel::{ConversationFilter, MessageView, ReadModels};
use parley_app::search::sqlite::SqliteSearchIndex;
use parley_app::search::{Blinder, SearchIndex, SearchIndexer};
use parley_events::ProjectionRunner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const CUSTOMERS: [&str; 4] = ["16505551000", "16505551001", "16505551002", "16505551003"];
const TEMPLATES: [&str; 3] = ["order_update", "spring_sale", "otp_code"];

async fn all_messages(read_models: &dyn ReadModels, tenant: &str) -> Vec<MessageView> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = read_models.messages(tenant, None, cursor.as_deref(), 200).await.unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_rebuilt_from_zero_equal_the_incremental_ones_after_a_random_workload() {
    let seed = std::env::var("PARLEY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    println!("PARLEY_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::start(WhatsApp::Simulator(Duration::from_millis(5))).await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    let mut delivered_webhooks = Vec::new();
    for step in 0..80 {
        let customer = CUSTOMERS[rng.gen_range(0..CUSTOMERS.len())];
        match rng.gen_range(0..10) {
            0..=2 => {
                let text = if rng.gen_bool(0.05) { "STOP".to_owned() } else { format!("message {step}") };
                let mut body = fresh(fixture("inbound_text.json"));
                let value = &mut body["entry"][0]["changes"][0]["value"];
                value["contacts"][0]["wa_id"] = json!(customer);
                value["messages"][0]["from"] = json!(customer);
                value["messages"][0]["id"] = json!(format!("wamid.R{seed}-{step}"));
                value["messages"][0]["text"]["body"] = json!(text);
                assert_eq!(server.webhook(&body, APP_SECRET).await.0, StatusCode::OK);
                delivered_webhooks.push(body);
            }
            3..=5 => {
                let body =
                    json!({"from": PNID, "to": customer, "type": "text", "text": {"body": format!("reply {step}")}});
                // Refused sends (closed window, opted out) are part of the workload too.
                server.post(&token, "/v1/messages", &body).await;
            }
            6..=7 => {
                let name = TEMPLATES[rng.gen_range(0..TEMPLATES.len())];
                let body = json!({"from": PNID, "to": customer, "type": "template",
                                  "template": {"name": name, "language": {"code": "en_US"}}});
                server.post(&token, "/v1/messages", &body).await;
            }
            8 if !delivered_webhooks.is_empty() => {
                // WhatsApp delivers a webhook again.
                let again = &delivered_webhooks[rng.gen_range(0..delivered_webhooks.len())];
                assert_eq!(server.webhook(again, APP_SECRET).await.0, StatusCode::OK);
            }
            _ => {
                let plan = ["free", "starter", "growth"][rng.gen_range(0..3)];
                server.post(&token, "/v1/billing/plan", &json!({"plan": plan})).await;
                server.post(&token, "/v1/messages/export", &json!({})).await;
            }
        }
    }
    // Let the simulator's statuses and the jobs finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stop every writer (workers, schedules, HTTP), then bring the live read models to the head.
    server.stop_workers_only().await;
    server.projections.catch_up().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ops = SqliteOpsReadModels::open(&dir.path().join("ops.db")).unwrap();
    let core = SqliteReadModels::open(&dir.path().join("readmodels.db")).unwrap();
    let mut projections = core.projections();
    projections.extend(ops.projections(server.app.sealer.clone()));
    // The rebuilt index keys words with the tenant's stored key, as the live one does.
    let search = SqliteSearchIndex::open(&dir.path().join("search.db")).unwrap();
    let live_key = server.app.blinder.index().key("acme").await.unwrap().expect("acme has a search key");
    search.put_key("acme", &live_key).await.unwrap();
    let blinder = Arc::new(Blinder::new(search.clone(), server.app.sealer.vault().clone()));
    projections.push(search.projection(SearchIndexer::new(server.app.sealer.clone(), blinder.clone())));
    ProjectionRunner::new(server.app.store.clone(), projections).catch_up().await.unwrap();

    assert_eq!(server.ops_models.dump().await.unwrap(), ops.dump().await.unwrap(), "seed {seed}");
    let live = all_messages(server.app.read_models.as_ref(), "acme").await;
    assert!(!live.is_empty());
    assert_eq!(live, all_messages(core.as_ref(), "acme").await, "seed {seed}");
    let now = server.app.clock.now();
    let filter = ConversationFilter::default();
    assert_eq!(
        server.app.read_models.conversations("acme", &filter, now, None, 200).await.unwrap(),
        core.conversations("acme", &filter, now, None, 200).await.unwrap(),
        "seed {seed}"
    );
    assert_eq!(server.app.read_models.numbers("acme").await.unwrap(), core.numbers("acme").await.unwrap());
    let mut words: Vec<String> = ["message", "reply", "stop"].map(String::from).to_vec();
    words.extend((0..80).map(|step| step.to_string()));
    let mut found = 0;
    for word in words {
        let terms = blinder.terms("acme", &[word], false).await.unwrap().unwrap();
        let live = server.app.blinder.index().search("acme", &terms, None, 200).await.unwrap();
        assert_eq!(live, search.search("acme", &terms, None, 200).await.unwrap(), "seed {seed}");
        found += live.items.len();
    }
    assert!(found > 0, "the workload's words are found");
    server.stop().await;
}
