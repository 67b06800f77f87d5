//! The DynamoDB read models against the emulator: the port's conformance
//! suite, fed through the adapter's projector.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use parley_app::error::AppError;
use parley_app::readmodel::conformance::{run_read_models_suite, Projector};
use parley_app::readmodel::ReadModels;
use parley_aws::dynamodb::DynamoReadModels;
use parley_events::RecordedEvent;

struct StreamProjector(Arc<DynamoReadModels>);

#[async_trait]
impl Projector for StreamProjector {
    async fn project(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        self.0.apply(events).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_read_models_suite() {
    let client = common::dynamodb().await;
    run_read_models_suite(|| {
        let client = client.clone();
        async move {
            let table = common::unique_name("read-models");
            DynamoReadModels::create_table(&client, &table).await.expect("create table");
            let models = Arc::new(DynamoReadModels::new(client, table));
            (Arc::clone(&models) as Arc<dyn ReadModels>, Arc::new(StreamProjector(models)) as Arc<dyn Projector>)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_projectors_apply_each_event_once() {
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    let client = common::dynamodb().await;
    let table = common::unique_name("read-models");
    DynamoReadModels::create_table(&client, &table).await.expect("create table");
    let models = Arc::new(DynamoReadModels::new(client, table));
    let conversation = Uuid::now_v7();
    let stream = format!("t1/conversation/{conversation}");
    let event = |version: u64, event_type: &str, data: serde_json::Value| RecordedEvent {
        event_id: Uuid::now_v7(),
        stream_id: stream.clone(),
        version,
        tenant_id: "t1".into(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        recorded_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "test".into(),
        data,
        global_position: version,
    };
    let mut events =
        vec![event(1, "ConversationOpened", json!({ "number_id": "pn", "wa_id": "49", "at": "2026-01-01T00:00:00Z" }))];
    for version in 2..=21 {
        let at = format!("2026-01-01T00:{:02}:00Z", version);
        events.push(event(version, "InboundMessageRecorded", json!({ "preview": { "at": at } })));
    }
    // Four projectors take overlapping, growing prefixes of the stream at once,
    // as redelivered and retried stream batches would.
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let (models, events) = (Arc::clone(&models), events.clone());
            tokio::spawn(async move {
                for end in (1 + i..=events.len()).step_by(3) {
                    models.apply(&events[..end]).await.expect("apply");
                }
                models.apply(&events).await.expect("apply");
            })
        })
        .collect();
    for racer in racers {
        racer.await.expect("projector");
    }
    let view = models.conversation("t1", conversation).await.expect("read").expect("row");
    assert_eq!(view.unread_count, 20, "every inbound message counted exactly once");
}
