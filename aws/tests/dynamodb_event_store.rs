//! The DynamoDB event store against the emulator: the port's conformance
//! suite, plus what only this adapter does (calving, the global log's
//! handling of unfinished appends).

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use parley_aws::dynamodb::event_store::{LOG_KEY, SETTLE_HORIZON};
use parley_aws::dynamodb::DynamoEventStore;
use parley_events::conformance::run_event_store_suite;
use parley_events::{EventStore, ExpectedVersion, NewEvent, StoreError};
use serde_json::json;
use uuid::Uuid;

async fn fresh_store() -> (aws_sdk_dynamodb::Client, String, DynamoEventStore) {
    let client = common::dynamodb().await;
    let table = common::unique_name("events");
    DynamoEventStore::create_table(&client, &table).await.expect("create table");
    (client.clone(), table.clone(), DynamoEventStore::new(client, table))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_event_store_suite() {
    run_event_store_suite(|| async { fresh_store().await.2 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_event_store_suite_with_small_tips() {
    // The suite's events take about 150 bytes: tips calve every eight or so,
    // so every case also runs through batch items.
    run_event_store_suite(|| async { fresh_store().await.2.with_max_tip_bytes(1200) }).await;
}

fn event(n: usize, padding: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Counted".into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "test".into(),
        data: json!({ "n": n, "padding": "x".repeat(padding) }),
    }
}

async fn items(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) -> Vec<i64> {
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("p = :p")
        .expression_attribute_values(":p", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    output.items().iter().map(|item| item["i"].as_n().expect("number").parse().expect("sort key")).collect()
}

#[tokio::test]
async fn full_tips_are_calved_into_batches_and_read_back_whole() {
    let (client, table, store) = fresh_store().await;
    let store = store.with_max_tip_bytes(4 * 1024);
    let mut version = 0;
    let mut written = Vec::new();
    for n in 0..12 {
        // About 1 KiB per event: the tip passes 4 KiB every few appends.
        let batch = vec![event(n, 1000)];
        written.extend(batch.iter().map(|e| e.event_id));
        version = store.append("t", "s-calve", ExpectedVersion::Exact(version), batch).await.expect("append").version;
    }
    let sort_keys = items(&client, &table, "s-calve").await;
    assert_eq!(sort_keys[0], -1, "the tip sorts first");
    assert!(sort_keys.len() >= 3, "a 12 KiB stream with a 4 KiB bound has calved batches: {sort_keys:?}");
    let read = store.read_stream("s-calve", 0).await.expect("read");
    assert_eq!(read.iter().map(|e| e.event_id).collect::<Vec<_>>(), written, "every event, in order, once");
    assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    let log = store.read_all(0, 100).await.expect("read all");
    assert_eq!(log, read, "the global log holds the calved events too");
    // A conflict is still answered from the tip alone.
    let stale = store.append("t", "s-calve", ExpectedVersion::Exact(3), vec![event(0, 0)]).await;
    assert!(matches!(stale, Err(StoreError::Conflict { actual: 12, .. })), "{stale:?}");
}

#[tokio::test]
async fn reserved_stream_ids_are_refused() {
    let (_, _, store) = fresh_store().await;
    for stream in ["$log", "$pos", ""] {
        let result = store.append("t", stream, ExpectedVersion::Any, vec![event(0, 0)]).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{stream:?}: {result:?}");
    }
    assert_eq!(store.head_position().await.expect("head"), 0);
}

/// Writes a log entry as an append does right after reserving its positions.
async fn put_entry(client: &aws_sdk_dynamodb::Client, table: &str, first: u64, stream: &str, reserved_at: i64) {
    let n = |v: String| AttributeValue::N(v);
    client
        .put_item()
        .table_name(table)
        .item("p", AttributeValue::S(LOG_KEY.into()))
        .item("i", n(first.to_string()))
        .item("s", AttributeValue::S(stream.into()))
        .item("v", n("1".into()))
        .item("n", n("1".into()))
        .item("w", n(reserved_at.to_string()))
        .send()
        .await
        .expect("put entry");
    // Move the counter past the entry, as the reservation did.
    client
        .update_item()
        .table_name(table)
        .key("p", AttributeValue::S("$pos".into()))
        .key("i", n("0".into()))
        .update_expression("SET c = :c")
        .expression_attribute_values(":c", n(first.to_string()))
        .send()
        .await
        .expect("move counter");
}

#[tokio::test]
async fn readers_wait_for_an_unfinished_append_until_it_settles() {
    let (client, table, store) = fresh_store().await;
    store.append("t", "s-1", ExpectedVersion::NoStream, vec![event(1, 0)]).await.expect("append");
    // An append that reserved position 2 and has not (yet) written its tip.
    put_entry(&client, &table, 2, "s-unfinished", Utc::now().timestamp_millis()).await;
    let third = store.append("t", "s-3", ExpectedVersion::NoStream, vec![event(3, 0)]).await.expect("append");
    assert_eq!(third.last_position, 3);

    let log = store.read_all(0, 10).await.expect("read");
    assert_eq!(log.iter().map(|e| e.global_position).collect::<Vec<_>>(), vec![1], "stops before the pending entry");
    assert_eq!(store.head_position().await.expect("head"), 3, "the head is the newest commit");

    // The same entry reserved long ago can no longer commit: readers pass it.
    let long_ago = Utc::now().timestamp_millis() - 2 * SETTLE_HORIZON.as_millis() as i64;
    put_entry(&client, &table, 2, "s-unfinished", long_ago).await;
    let log = store.read_all(0, 10).await.expect("read");
    assert_eq!(log.iter().map(|e| e.global_position).collect::<Vec<_>>(), vec![1, 3]);
}

#[tokio::test]
async fn readers_wait_at_a_gap_in_the_positions_until_it_settles() {
    let (client, table, store) = fresh_store().await;
    store.append("t", "s-1", ExpectedVersion::NoStream, vec![event(1, 0)]).await.expect("append");
    // Position 2 was reserved but its entry never written: the counter moved on.
    client
        .update_item()
        .table_name(&table)
        .key("p", AttributeValue::S("$pos".into()))
        .key("i", AttributeValue::N("0".into()))
        .update_expression("ADD c :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("reserve");
    let third = store.append("t", "s-3", ExpectedVersion::NoStream, vec![event(3, 0)]).await.expect("append");
    assert_eq!(third.last_position, 3);
    let log = store.read_all(0, 10).await.expect("read");
    assert_eq!(log.len(), 1, "a fresh gap may still be filled: {log:?}");
    assert_eq!(store.read_all(1, 10).await.expect("read").len(), 0, "also when reading from just before it");
}
