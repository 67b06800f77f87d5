//! The EventBridge bus against the emulator: the bus port's conformance suite,
//! observed through a rule whose target is an SQS queue.

mod emulator;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use parley_aws::eventbridge::{from_envelope, EventBridgeBus};
use parley_events::bus::{conformance, BusObserver, IntegrationBus, IntegrationEvent};

/// Reads what a bus rule delivered to its queue.
struct QueueObserver {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

#[async_trait]
impl BusObserver for QueueObserver {
    async fn delivered(&self, count: usize, within: Duration) -> Vec<IntegrationEvent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < count && tokio::time::Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive from the target queue");
            for m in out.messages.unwrap_or_default() {
                let envelope: serde_json::Value =
                    serde_json::from_str(m.body().unwrap_or_default()).expect("the target gets JSON");
                got.push(from_envelope(&envelope).expect("an EventBridge envelope"));
                let receipt = m.receipt_handle.expect("a receipt handle");
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await.unwrap();
            }
        }
        got
    }
}

/// A fresh bus with a rule sending every `parley.test` event to a fresh queue.
async fn bus_with_queue_target() -> (Arc<dyn IntegrationBus>, Arc<dyn BusObserver>) {
    let config = emulator::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = emulator::unique("bus");

    events.create_event_bus().name(&name).send().await.unwrap();
    let queue_url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap();
    events
        .put_rule()
        .name("all-parley-test")
        .event_bus_name(&name)
        .event_pattern(r#"{"source": ["parley.test"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("all-parley-test")
        .event_bus_name(&name)
        .targets(Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();

    let bus = EventBridgeBus::new(events, name);
    (Arc::new(bus), Arc::new(QueueObserver { sqs, queue_url }))
}

#[tokio::test]
async fn eventbridge_bus_conforms() {
    conformance::run_bus_suite(bus_with_queue_target).await;
}

#[tokio::test]
async fn an_event_larger_than_a_call_is_rejected_before_sending() {
    let (bus, seen) = bus_with_queue_target().await;
    let err = bus.publish(&[conformance::sample(1, 300 * 1024)]).await.unwrap_err();
    assert!(matches!(err, parley_events::BusError::Rejected { .. }), "{err:?}");
    assert!(seen.delivered(1, Duration::from_millis(500)).await.is_empty());
}

#[tokio::test]
async fn the_sealed_marker_matches_the_application_sealing() {
    assert_eq!(parley_events::bus::SEALED_MARKER, parley_app::sealing::SEALED_KEY);
}
