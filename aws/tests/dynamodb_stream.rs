//! Stream records of the events table, read back from the emulator's
//! DynamoDB Streams API and delivered in the JSON shape Lambda uses, decode
//! into exactly the events that were appended: once each, in order, calves
//! and refused appends included.

mod common;

use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::Utc;
use parley_aws::dynamodb::{recorded_events_from_stream, DynamoEventStore, StreamDecodeError};
use parley_aws::testing::stream_records;
use parley_events::{EventStore, ExpectedVersion, NewEvent};
use serde_json::json;
use uuid::Uuid;

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: format!("Happened{n}"),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: n.is_multiple_of(2).then(Uuid::now_v7),
        actor: "test".into(),
        data: json!({ "n": n, "text": "olá 👋", "padding": "x".repeat(200) }),
    }
}

#[tokio::test]
async fn stream_records_decode_into_the_appended_events() {
    let client = common::dynamodb().await;
    let table = common::unique_name("events-stream");
    DynamoEventStore::create_table(&client, &table).await.expect("create table");
    // A small tip bound, so the stream also carries calves (batch inserts and tip rewrites).
    let store = DynamoEventStore::new(client, &table).with_max_tip_bytes(1200);
    let mut n = 0;
    let mut next = |count: usize| {
        n += count;
        (n - count..n).map(event).collect::<Vec<_>>()
    };
    store.append("t1", "conversation-a", ExpectedVersion::NoStream, next(2)).await.expect("append");
    store.append("t1", "message-b", ExpectedVersion::NoStream, next(1)).await.expect("append");
    let mut version = 2;
    for _ in 0..6 {
        version = store
            .append("t1", "conversation-a", ExpectedVersion::Exact(version), next(1))
            .await
            .expect("append")
            .version;
    }
    let refused = store.append("t1", "conversation-a", ExpectedVersion::Exact(1), next(1)).await;
    assert!(refused.is_err(), "a stale append is refused: {refused:?}");
    store.append("t2", "message-b", ExpectedVersion::Any, next(3)).await.expect("append");

    let records = stream_records(&common::emulator_config().await, &table, 0).await;
    assert!(
        records
            .iter()
            .any(|r| r.event_name == "INSERT" && r.change.keys["i"] != serde_dynamo::AttributeValue::N("-1".into())),
        "the test covers calved batches"
    );
    let decoded = recorded_events_from_stream(&records).expect("decode");
    let mut appended = store.read_all(0, 100).await.expect("read all");
    assert_eq!(appended.len(), 12);
    // Records are in order per item; across streams the log's order may differ.
    let mut by_stream = decoded.clone();
    by_stream.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    appended.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    assert_eq!(by_stream, appended, "each appended event exactly once, envelope intact");
    for stream in ["conversation-a", "message-b"] {
        let versions: Vec<u64> = decoded.iter().filter(|e| e.stream_id == stream).map(|e| e.version).collect();
        assert!(versions.windows(2).all(|w| w[0] + 1 == w[1]), "{stream} in version order: {versions:?}");
    }
}

#[tokio::test]
async fn records_without_a_new_image_are_refused() {
    let record: EventRecord = serde_json::from_value(json!({
        "eventID": "1",
        "eventName": "MODIFY",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_700_000_000,
            "Keys": { "p": { "S": "s" }, "i": { "N": "-1" } },
            "SizeBytes": 10,
            "StreamViewType": "KEYS_ONLY",
        },
    }))
    .expect("record");
    let result = recorded_events_from_stream(&[record]);
    assert!(matches!(result, Err(StreamDecodeError::MissingImage { .. })), "{result:?}");
}
