//! Writers racing on one stream whose tip calves every few events: every
//! append lands once, in order, through the conflict, reordering and
//! calve-race paths. (The full suite with small tips is too slow on moto,
//! whose transactions copy every table, to meet the suite's deadlines.)

mod common;

use std::sync::Arc;

use chrono::Utc;
use parley_aws::dynamodb::DynamoEventStore;
use parley_events::{EventStore, ExpectedVersion, NewEvent, StoreError};
use serde_json::json;
use uuid::Uuid;

const RACERS: usize = 6;
const APPENDS: usize = 5;

fn event(racer: usize, n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Raced".into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: format!("racer-{racer}"),
        data: json!({ "racer": racer, "n": n }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_on_a_calving_stream_each_land_once_in_order() {
    let client = common::dynamodb().await;
    let table = common::unique_name("events-calving");
    DynamoEventStore::create_table(&client, &table).await.expect("create table");
    let store = Arc::new(DynamoEventStore::new(client, table).with_max_tip_bytes(600));
    let racers: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..APPENDS {
                    let new = event(racer, n);
                    ids.push(new.event_id);
                    let mut expected = store.read_stream("s-hot", 0).await.expect("read").len() as u64;
                    loop {
                        match store.append("t", "s-hot", ExpectedVersion::Exact(expected), vec![new.clone()]).await {
                            Ok(_) => break,
                            Err(StoreError::Conflict { actual, .. }) => expected = actual,
                            Err(other) => panic!("racer {racer} append {n}: {other}"),
                        }
                    }
                }
                ids
            })
        })
        .collect();
    let mut appended = Vec::new();
    for racer in racers {
        appended.extend(racer.await.expect("racer"));
    }

    let stream = store.read_stream("s-hot", 0).await.expect("read");
    assert_eq!(
        stream.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=(RACERS * APPENDS) as u64).collect::<Vec<_>>()
    );
    let mut landed: Vec<Uuid> = stream.iter().map(|e| e.event_id).collect();
    landed.sort();
    appended.sort();
    assert_eq!(landed, appended, "every append landed exactly once");
    let positions: Vec<u64> = stream.iter().map(|e| e.global_position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions follow versions: {positions:?}");
    assert_eq!(store.read_all(0, 1000).await.expect("read all"), stream, "the log holds the stream, in order");
}
