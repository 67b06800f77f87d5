//! The DynamoDB search index against the emulator: the search index suite
//! the SQLite adapter passes, the projection path from sealed events to
//! found messages, and a search that runs out of its reading budget.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parley_app::sealing::{EventSealer, Meta};
use parley_app::search::conformance::run_search_index_suite;
use parley_app::search::{Blinder, SearchChange, SearchIndex, SearchIndexer};
use parley_aws::dynamodb::{DynamoReadModels, DynamoSearchIndex};
use parley_domain::event::MessageReceived;
use parley_domain::Event;
use parley_events::RecordedEvent;
use uuid::Uuid;

async fn index(client: &aws_sdk_dynamodb::Client) -> DynamoSearchIndex {
    let table = common::unique_name("search");
    DynamoReadModels::create_table(client, &table).await.expect("create table");
    DynamoSearchIndex::new(client.clone(), table)
}

#[tokio::test]
async fn passes_the_search_index_suite() {
    let client = common::dynamodb().await;
    run_search_index_suite(|| {
        let client = client.clone();
        async move { Arc::new(index(&client).await) as Arc<dyn SearchIndex> }
    })
    .await;
}

fn received(tenant: &str, id: Uuid, text: &str, at: DateTime<Utc>) -> Event {
    Event::MessageReceived(MessageReceived {
        message_id: id,
        conversation_id: Uuid::now_v7(),
        number_id: "106540352242922".into(),
        wa_id: "16505551234".into(),
        wamid: format!("wamid.{tenant}.{id}"),
        kind: "text".into(),
        content: serde_json::json!({ "body": text }),
        context: None,
        referral: None,
        sent_at: at,
        received_at: at,
    })
}

async fn recorded(sealer: &EventSealer, tenant: &str, id: Uuid, event: &Event, position: u64) -> RecordedEvent {
    let at = Utc::now();
    let new = sealer.encode(tenant, Some("16505551234"), event, &Meta::new("test"), at).await.expect("encode");
    RecordedEvent {
        event_id: new.event_id,
        stream_id: format!("{tenant}/message/{id}"),
        version: 1,
        tenant_id: tenant.into(),
        event_type: new.event_type,
        schema_version: new.schema_version,
        occurred_at: at,
        recorded_at: at,
        correlation_id: new.correlation_id,
        causation_id: None,
        actor: new.actor,
        data: new.data,
        global_position: position,
    }
}

/// Sealed events in, blinded terms stored, the same words found: nothing in
/// the table reads as the text.
#[tokio::test]
async fn sealed_messages_are_found_by_their_words_and_the_table_holds_no_text() {
    let client = common::dynamodb().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let vault: Arc<dyn parley_vault::Vault> = Arc::new(parley_vault::LocalVault::open(dir.path()).expect("vault"));
    let sealer = Arc::new(EventSealer::new(vault.clone()));
    let table = common::unique_name("search");
    DynamoReadModels::create_table(&client, &table).await.expect("create table");
    let index: Arc<dyn SearchIndex> = Arc::new(DynamoSearchIndex::new(client.clone(), &table));
    let blinder = Arc::new(Blinder::new(index.clone(), vault));
    let indexer = SearchIndexer::new(sealer.clone(), blinder.clone());

    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let now = Utc::now();
    let events = vec![
        recorded(&sealer, "acme", first, &received("acme", first, "Where is my REFUND for order 1234?", now), 1).await,
        recorded(&sealer, "acme", second, &received("acme", second, "Refund arrived, thanks", now), 2).await,
        recorded(&sealer, "globex", first, &received("globex", first, "refund refund", now), 3).await,
    ];
    let changes = indexer.changes(&events).await.expect("changes");
    index.apply(&changes).await.expect("apply");
    index.apply(&changes).await.expect("a redelivery changes nothing");

    let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let terms = blinder.terms("acme", &words(&["refund", "order"]), false).await.expect("terms").expect("a key");
    let found = index.search("acme", &terms, None, 10).await.expect("search");
    assert_eq!(found.items.iter().map(|h| h.message_id).collect::<Vec<_>>(), [first]);
    let terms = blinder.terms("acme", &words(&["refund"]), false).await.expect("terms").expect("a key");
    assert_eq!(index.search("acme", &terms, None, 10).await.expect("search").items.len(), 2);
    // The other tenant's key makes other terms of the same word.
    let theirs = blinder.terms("globex", &words(&["refund"]), false).await.expect("terms").expect("a key");
    assert_ne!(theirs, terms);
    assert_eq!(index.search("globex", &terms, None, 10).await.expect("search").items.len(), 0);

    let scan = client.scan().table_name(&table).send().await.expect("scan");
    let dump = format!("{:?}", scan.items());
    for word in ["refund", "REFUND", "order", "1234", "thanks"] {
        assert!(!dump.contains(word), "{word} is in the table: {dump}");
    }
}

/// Twenty-five messages say "hello"; only the oldest also says "invoice". A
/// search that may read two pages of five postings answers with what it
/// found and a cursor, and following the cursors finds the one message.
#[tokio::test]
async fn a_search_past_its_reading_budget_goes_on_from_its_cursor() {
    let client = common::dynamodb().await;
    let index = index(&client).await.with_read_budget(5, 2);
    let start: DateTime<Utc> = "2026-11-02T09:00:00Z".parse().expect("time");
    let changes: Vec<_> = (0..25u128)
        .map(|n| SearchChange::Add {
            tenant_id: "acme".into(),
            message_id: Uuid::from_u128(n + 1),
            created_at: start + Duration::minutes(n as i64),
            terms: if n == 0 { vec!["hello".into(), "invoice".into()] } else { vec!["hello".into()] },
        })
        .collect();
    index.apply(&changes).await.expect("apply");
    let terms = vec!["hello".to_string(), "invoice".to_string()];
    let (mut cursor, mut requests, mut found) = (None, 0, Vec::new());
    loop {
        let page = index.search("acme", &terms, cursor.as_deref(), 10).await.expect("search");
        requests += 1;
        found.extend(page.items.iter().map(|h| h.message_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(requests < 10, "every request moves on");
    }
    assert_eq!(found, [Uuid::from_u128(1)]);
    assert_eq!(requests, 3, "25 postings at 10 per request");
}
