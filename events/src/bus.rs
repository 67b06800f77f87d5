//! The integration event bus: domain events as other systems may see them.
//!
//! Domain events are Parley's private history; their shape changes with the
//! model. An [`IntegrationEvent`] is the published contract: a versioned
//! `detail_type` (`parley.MessageReceived.v1`), a `source` naming the
//! deployment (`parley.<stage>`) and a `detail` holding the envelope and the
//! event's data, with every sealed (encrypted personal) field taken out. The
//! schema is documented in `events/docs/integration-events.md`.
//!
//! [`IntegrationBus`] is the port (EventBridge in AWS); [`InProcessBus`] is
//! the local adapter, broadcasting to in-process subscribers.
//! [`IntegrationPublisher`] is the worker that forwards the global log to a
//! bus, as a projection with its own checkpoint.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::checkpoint::SqliteCheckpoints;
use crate::envelope::RecordedEvent;
use crate::projection::{Projection, ProjectionError};

/// The key that marks a sealed value inside event data (`{"$sealed": {...}}`),
/// as the application's sealing writes it.
pub const SEALED_MARKER: &str = "$sealed";

/// Every `source` starts with this, followed by the stage: `parley.prod`.
pub const SOURCE_PREFIX: &str = "parley";

/// A domain event as published to the integration bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationEvent {
    /// `parley.<stage>`: which deployment published it.
    pub source: String,
    /// `parley.<EventType>.v<schema_version>`: what it is, in which version.
    pub detail_type: String,
    /// When the domain event occurred, in whole seconds (the precision EventBridge keeps).
    pub time: DateTime<Utc>,
    /// The event itself; see [`IntegrationEvent::from_recorded`].
    pub detail: Value,
}

impl IntegrationEvent {
    /// The integration event for a recorded domain event of deployment `stage`.
    ///
    /// `detail` carries the envelope (`event_id`, `stream_id`, `version`,
    /// `tenant_id`, `type`, `schema_version`, `occurred_at`, `recorded_at`,
    /// `correlation_id`, `causation_id`, `actor`, `global_position`), the
    /// event's `data`, and `redacted`: the JSON pointers (within `data`) of the
    /// sealed fields, which are null in `data`. Sealed values never leave,
    /// not even as ciphertext: a consumer could not open them, and erasing a
    /// contact must not leave copies of its sealed data in other systems.
    pub fn from_recorded(event: &RecordedEvent, stage: &str) -> Self {
        let mut data = event.data.clone();
        let mut redacted = Vec::new();
        redact_sealed(&mut data, &mut String::new(), &mut redacted);
        let detail = serde_json::json!({
            "event_id": event.event_id,
            "stream_id": event.stream_id,
            "version": event.version,
            "tenant_id": event.tenant_id,
            "type": event.event_type,
            "schema_version": event.schema_version,
            "occurred_at": event.occurred_at,
            "recorded_at": event.recorded_at,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "actor": event.actor,
            "global_position": event.global_position,
            "data": data,
            "redacted": redacted,
        });
        IntegrationEvent {
            source: source_for(stage),
            detail_type: detail_type_for(&event.event_type, event.schema_version),
            time: event.occurred_at.trunc_subsecs(0),
            detail,
        }
    }

    /// The domain event's id, the key consumers deduplicate on.
    pub fn event_id(&self) -> Option<&str> {
        self.detail.get("event_id").and_then(Value::as_str)
    }
}

/// `parley.<stage>`.
pub fn source_for(stage: &str) -> String {
    format!("{SOURCE_PREFIX}.{stage}")
}

/// `parley.<EventType>.v<schema_version>`.
pub fn detail_type_for(event_type: &str, schema_version: u32) -> String {
    format!("{SOURCE_PREFIX}.{event_type}.v{schema_version}")
}

/// Replaces each sealed value under `value` by null and records its JSON pointer.
fn redact_sealed(value: &mut Value, pointer: &mut String, redacted: &mut Vec<String>) {
    match value {
        Value::Object(map) if map.contains_key(SEALED_MARKER) => {
            redacted.push(pointer.clone());
            *value = Value::Null;
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                // RFC 6901 escaping, so the pointer finds the field again.
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                redact_sealed(child, pointer, redacted);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                redact_sealed(child, pointer, redacted);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// Why events could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus could not be reached or kept failing; publishing again may work.
    #[error("integration bus unavailable: {0}")]
    Unavailable(String),
    /// The bus refused an event as it is (too large, malformed); retrying will not help.
    #[error("integration bus rejected event {event_id}: {reason}")]
    Rejected { event_id: String, reason: String },
}

/// Where integration events go.
#[async_trait]
pub trait IntegrationBus: Send + Sync + 'static {
    /// Publishes every event, or fails; on failure some may have been
    /// published (delivery is at least once: consumers deduplicate on `event_id`).
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError>;
}

/// An in-process bus: each event goes to every current subscriber.
///
/// Like a bus without rules, events nobody subscribed to are dropped. A
/// subscriber that falls more than `capacity` events behind loses the oldest
/// (its receiver reports the lag).
pub struct InProcessBus {
    sender: broadcast::Sender<IntegrationEvent>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        InProcessBus { sender }
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IntegrationEvent> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl IntegrationBus for InProcessBus {
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        for event in events {
            // An error only means there is no subscriber right now.
            let _ = self.sender.send(event.clone());
        }
        Ok(())
    }
}

/// Forwards every recorded event to a bus, in log order.
///
/// It runs as a projection: each batch is published, then the checkpoint
/// moves. A crash between the two publishes the batch again on restart, so
/// delivery is at least once (consumers deduplicate on `event_id`); a failed
/// publish leaves the checkpoint where it was and the runner retries.
/// Resetting it republishes the whole log.
pub struct IntegrationPublisher {
    bus: std::sync::Arc<dyn IntegrationBus>,
    checkpoints: SqliteCheckpoints,
    stage: String,
}

impl IntegrationPublisher {
    /// The checkpoint name.
    pub const NAME: &'static str = "integration-publisher";

    /// Publishes as deployment `stage` (the `source` is `parley.<stage>`).
    pub fn new(
        bus: std::sync::Arc<dyn IntegrationBus>,
        checkpoints: SqliteCheckpoints,
        stage: impl Into<String>,
    ) -> Self {
        IntegrationPublisher { bus, checkpoints, stage: stage.into() }
    }
}

#[async_trait]
impl Projection for IntegrationPublisher {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.checkpoints.get(Self::NAME).await
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else { return Ok(()) };
        let published: Vec<_> = events.iter().map(|e| IntegrationEvent::from_recorded(e, &self.stage)).collect();
        self.bus.publish(&published).await.map_err(ProjectionError::read_model)?;
        self.checkpoints.set(Self::NAME, last.global_position).await
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        self.checkpoints.set(Self::NAME, 0).await
    }
}

/// Observes a bus under test from the consumer's side: an in-process
/// subscription, or a queue behind a bus rule.
#[async_trait]
pub trait BusObserver: Send + Sync + 'static {
    /// Waits until `count` events arrived (or `within` passed) and returns all that did.
    async fn delivered(&self, count: usize, within: std::time::Duration) -> Vec<IntegrationEvent>;
}

/// The one conformance suite every [`IntegrationBus`] adapter passes. `make`
/// builds a bus together with an observer subscribed to all it publishes.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use serde_json::Map;
    use std::future::Future;
    use std::sync::Arc;
    use std::time::Duration;

    const WITHIN: Duration = Duration::from_secs(10);

    pub async fn run_bus_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>)>,
    {
        delivers_each_event_once_as_published(make().await).await;
        delivers_more_events_than_one_call_carries(make().await).await;
        delivers_events_larger_than_one_call_carries(make().await).await;
        publishing_nothing_is_fine(make().await).await;
    }

    /// An integration event for tests, `size` bytes of data or so.
    pub fn sample(n: usize, size: usize) -> IntegrationEvent {
        let occurred = DateTime::from_timestamp(1_764_000_000 + n as i64, 0).unwrap_or_default();
        let mut detail = Map::new();
        detail.insert("event_id".into(), Value::String(format!("00000000-0000-7000-8000-{n:012}")));
        detail.insert("tenant_id".into(), Value::String("t-conformance".into()));
        detail.insert("type".into(), Value::String("MessageTagged".into()));
        detail.insert("data".into(), serde_json::json!({ "n": n, "pad": "p".repeat(size) }));
        IntegrationEvent {
            source: source_for("test"),
            detail_type: detail_type_for("MessageTagged", 1),
            time: occurred,
            detail: Value::Object(detail),
        }
    }

    fn by_id(mut events: Vec<IntegrationEvent>) -> Vec<IntegrationEvent> {
        events.sort_by(|a, b| a.event_id().cmp(&b.event_id()));
        events
    }

    async fn delivers_each_event_once_as_published((bus, seen): (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>)) {
        let events: Vec<_> = (0..3).map(|n| sample(n, 10)).collect();
        bus.publish(&events).await.unwrap();
        let got = seen.delivered(3, WITHIN).await;
        assert_eq!(by_id(got), events, "every field arrives as published, each event once");
        assert!(seen.delivered(1, Duration::from_millis(300)).await.is_empty(), "nothing more arrives");
    }

    async fn delivers_more_events_than_one_call_carries((bus, seen): (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>)) {
        let events: Vec<_> = (0..25).map(|n| sample(n, 10)).collect();
        bus.publish(&events).await.unwrap();
        assert_eq!(by_id(seen.delivered(25, WITHIN).await), events);
    }

    async fn delivers_events_larger_than_one_call_carries(
        (bus, seen): (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>),
    ) {
        // Five events of about 60 KiB: more than the 256 KiB one EventBridge call takes.
        let events: Vec<_> = (0..5).map(|n| sample(n, 60 * 1024)).collect();
        bus.publish(&events).await.unwrap();
        assert_eq!(by_id(seen.delivered(5, WITHIN).await), events);
    }

    async fn publishing_nothing_is_fine((bus, seen): (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>)) {
        bus.publish(&[]).await.unwrap();
        assert!(seen.delivered(1, Duration::from_millis(300)).await.is_empty());
    }

    /// Observes an [`InProcessBus`] through one subscription.
    pub struct InProcessObserver {
        receiver: tokio::sync::Mutex<broadcast::Receiver<IntegrationEvent>>,
    }

    impl InProcessObserver {
        pub fn new(bus: &InProcessBus) -> Self {
            InProcessObserver { receiver: tokio::sync::Mutex::new(bus.subscribe()) }
        }
    }

    #[async_trait]
    impl BusObserver for InProcessObserver {
        async fn delivered(&self, count: usize, within: Duration) -> Vec<IntegrationEvent> {
            let mut receiver = self.receiver.lock().await;
            let deadline = tokio::time::Instant::now() + within;
            let mut got = Vec::new();
            while got.len() < count {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Ok(event)) => got.push(event),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => panic!("subscriber lost {n} events"),
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
                }
            }
            got
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use uuid::Uuid;

    fn recorded(event_type: &str, data: Value) -> RecordedEvent {
        let at = DateTime::parse_from_rfc3339("2026-11-22T05:38:14.123456Z").unwrap().with_timezone(&Utc);
        RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: "conversation-t1-n1-c1".into(),
            version: 4,
            tenant_id: "t1".into(),
            event_type: event_type.into(),
            schema_version: 2,
            occurred_at: at,
            recorded_at: at,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "webhook".into(),
            data,
            global_position: 17,
        }
    }

    #[test]
    fn carries_the_envelope_under_a_versioned_detail_type() {
        let event = recorded("MessageDelivered", serde_json::json!({ "wamid": "wamid.X", "status": "delivered" }));
        let published = IntegrationEvent::from_recorded(&event, "prod");
        assert_eq!(published.source, "parley.prod");
        assert_eq!(published.detail_type, "parley.MessageDelivered.v2");
        assert_eq!(published.time.to_rfc3339(), "2026-11-22T05:38:14+00:00");
        let d = &published.detail;
        assert_eq!(d["event_id"], event.event_id.to_string());
        assert_eq!(d["stream_id"], "conversation-t1-n1-c1");
        assert_eq!(d["version"], 4);
        assert_eq!(d["tenant_id"], "t1");
        assert_eq!(d["type"], "MessageDelivered");
        assert_eq!(d["schema_version"], 2);
        assert_eq!(d["global_position"], 17);
        assert_eq!(d["causation_id"], Value::Null);
        assert_eq!(d["data"], event.data);
        assert_eq!(d["redacted"], serde_json::json!([]));
        assert_eq!(published.event_id(), Some(event.event_id.to_string().as_str()));
    }

    #[test]
    fn sealed_fields_leave_as_null_and_are_listed() {
        let sealed = serde_json::json!({ SEALED_MARKER: { "k": "contact-key", "n": "bm9uY2U=", "c": "Y2lwaGVy" } });
        let event = recorded(
            "MessageReceived",
            serde_json::json!({
                "wamid": "wamid.Y",
                "content": sealed,
                "parts": [ { "caption": sealed }, { "id": 1 } ],
                "odd/key~": sealed,
            }),
        );
        let published = IntegrationEvent::from_recorded(&event, "dev");
        let data = &published.detail["data"];
        assert_eq!(data["wamid"], "wamid.Y");
        assert_eq!(data["content"], Value::Null);
        assert_eq!(data["parts"][0]["caption"], Value::Null);
        assert_eq!(data["parts"][1]["id"], 1);
        let mut redacted: Vec<String> = serde_json::from_value(published.detail["redacted"].clone()).unwrap();
        redacted.sort();
        assert_eq!(redacted, vec!["/content", "/odd~1key~0", "/parts/0/caption"]);
        for pointer in &redacted {
            assert_eq!(data.pointer(pointer), Some(&Value::Null), "{pointer} finds the redacted field");
        }
        let text = serde_json::to_string(&published).unwrap();
        assert!(!text.contains("Y2lwaGVy") && !text.contains(SEALED_MARKER), "no sealed value leaves: {text}");
    }

    #[test]
    fn round_trips_through_json_and_rejects_unknown_fields() {
        let published = IntegrationEvent::from_recorded(&recorded("ContactOptedOut", serde_json::json!({})), "dev");
        let json = serde_json::to_value(&published).unwrap();
        assert_eq!(serde_json::from_value::<IntegrationEvent>(json.clone()).unwrap(), published);
        let mut extra = json;
        extra["surprise"] = Value::Bool(true);
        assert!(serde_json::from_value::<IntegrationEvent>(extra).is_err());
    }

    #[tokio::test]
    async fn in_process_bus_conforms() {
        conformance::run_bus_suite(|| async {
            let bus = Arc::new(InProcessBus::new(1024));
            let observer = Arc::new(conformance::InProcessObserver::new(&bus));
            (bus as Arc<dyn IntegrationBus>, observer as Arc<dyn BusObserver>)
        })
        .await;
    }

    struct FailingBus;

    #[async_trait]
    impl IntegrationBus for FailingBus {
        async fn publish(&self, _: &[IntegrationEvent]) -> Result<(), BusError> {
            Err(BusError::Unavailable("down".into()))
        }
    }

    fn positioned(position: u64) -> RecordedEvent {
        RecordedEvent { global_position: position, ..recorded("MessageTagged", serde_json::json!({ "n": position })) }
    }

    #[tokio::test]
    async fn the_publisher_forwards_batches_and_then_moves_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = SqliteCheckpoints::open(&dir.path().join("c.db")).unwrap();
        let bus = Arc::new(InProcessBus::new(16));
        let mut subscriber = bus.subscribe();
        let publisher = IntegrationPublisher::new(bus, checkpoints.clone(), "dev");
        assert_eq!(publisher.checkpoint().await.unwrap(), 0);

        let batch = [positioned(3), positioned(5)];
        publisher.apply(&batch).await.unwrap();
        assert_eq!(publisher.checkpoint().await.unwrap(), 5);
        for event in &batch {
            let got = subscriber.recv().await.unwrap();
            assert_eq!(got, IntegrationEvent::from_recorded(event, "dev"));
        }
        publisher.apply(&[]).await.unwrap();
        assert_eq!(publisher.checkpoint().await.unwrap(), 5, "an empty batch changes nothing");
        publisher.reset().await.unwrap();
        assert_eq!(publisher.checkpoint().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_publish_leaves_the_checkpoint_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = SqliteCheckpoints::open(&dir.path().join("c.db")).unwrap();
        checkpoints.set(IntegrationPublisher::NAME, 2).await.unwrap();
        let publisher = IntegrationPublisher::new(Arc::new(FailingBus), checkpoints, "dev");
        assert!(publisher.apply(&[positioned(3)]).await.is_err());
        assert_eq!(publisher.checkpoint().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn publishing_without_subscribers_succeeds() {
        let bus = InProcessBus::new(4);
        bus.publish(&[conformance::sample(1, 1)]).await.unwrap();
    }
}
