//! Stream records of the events table, read back from the emulator's
//! DynamoDB Streams API and delivered in the JSON shape Lambda uses, decode
//! into exactly the events that were appended: once each, in order, calves
//! and refused appends included.

mod common;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use parley_aws::dynamodb::{recorded_events_from_stream, DynamoEventStore, StreamDecodeError};
use parley_events::{EventStore, ExpectedVersion, NewEvent};
use serde_json::{json, Map, Value};
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

/// An attribute value in DynamoDB's JSON form, as Lambda delivers images.
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": STANDARD.encode(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": image_json(map) }),
        other => panic!("the events table writes no {other:?}"),
    }
}

fn image_json(image: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(image.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<_, _>>())
}

/// Every record of the table's stream so far, shaped as a Lambda event record.
async fn stream_records(table: &str) -> Vec<EventRecord> {
    let config = common::emulator_config().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&config);
    let listed = streams.list_streams().table_name(table).send().await.expect("list streams");
    let arn = listed.streams()[0].stream_arn().expect("stream arn").to_owned();
    let described = streams.describe_stream().stream_arn(&arn).send().await.expect("describe stream");
    let shards = described.stream_description().expect("description").shards().to_vec();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().expect("shard id"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(current) = iterator.take() {
            let page = streams.get_records().shard_iterator(current).send().await.expect("get records");
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let change = record.dynamodb().expect("stream record");
                let lambda_shape = json!({
                    "eventID": record.event_id(),
                    "eventName": record.event_name().map(|n| n.as_str()),
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": arn,
                    "dynamodb": {
                        "ApproximateCreationDateTime": Utc::now().timestamp(),
                        "Keys": image_json(change.keys().unwrap_or(&Default::default())),
                        "NewImage": image_json(change.new_image().unwrap_or(&Default::default())),
                        "SequenceNumber": change.sequence_number(),
                        "SizeBytes": change.size_bytes().unwrap_or(0),
                        "StreamViewType": "NEW_IMAGE",
                    },
                });
                records.push(serde_json::from_value(lambda_shape).expect("a Lambda DynamoDB event record"));
            }
            iterator = page.next_shard_iterator;
        }
    }
    records
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

    let records = stream_records(&table).await;
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
