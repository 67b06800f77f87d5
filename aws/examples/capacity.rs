//! Measures the DynamoDB capacity units of Parley's event store per use case.
//!
//! Run it against DynamoDB Local (which reports real consumed capacity;
//! moto's numbers are constants):
//!
//! ```text
//! PARLEY_AWS_ENDPOINT=http://127.0.0.1:8000 cargo run -p parley-aws --example capacity
//! ```
//!
//! It replays the store traffic of the inbound and outbound use cases with
//! events of realistic sizes (sealed message bodies are ciphertext) and
//! prints the read and write units each one consumed. `events/docs/dynamodb.md`
//! quotes its output.

use chrono::Utc;
use parley_aws::config::AwsTarget;
use parley_aws::dynamodb::{CapacityUnits, DynamoEventStore};
use parley_events::{EventStore, ExpectedVersion, NewEvent, StoreError};
use serde_json::json;
use uuid::Uuid;

/// An event of `event_type` whose data takes about `bytes` bytes.
fn event(event_type: &str, bytes: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: Some(Uuid::now_v7()),
        actor: "webhook:whatsapp".into(),
        data: json!({ "body": "x".repeat(bytes.saturating_sub(12)) }),
    }
}

/// Sizes of the data of the events involved (bytes of JSON).
const MESSAGE_RECEIVED: usize = 700; // wamid, sender, sealed text, timestamps
const MESSAGE_QUEUED: usize = 700;
const CONVERSATION_RECORD: usize = 180; // message id, direction, time
const CONTACT_CREATED: usize = 300; // wa_id, sealed profile name
const STATUS: usize = 150; // wamid, status, time

struct Meter<'a> {
    store: &'a DynamoEventStore,
    before: CapacityUnits,
}

impl<'a> Meter<'a> {
    fn start(store: &'a DynamoEventStore) -> Self {
        Self { store, before: store.consumed_capacity() }
    }

    fn stop(self) -> CapacityUnits {
        let after = self.store.consumed_capacity();
        CapacityUnits { read: after.read - self.before.read, write: after.write - self.before.write }
    }
}

fn print(label: &str, units: CapacityUnits) {
    println!("{label:<72} {:>6.1} RCU {:>6.1} WCU", units.read, units.write);
}

/// Appends to `stream` whatever `events` holds, at its current version.
async fn append(store: &DynamoEventStore, stream: &str, events: Vec<NewEvent>) -> Result<(), StoreError> {
    let version = store.read_stream(stream, 0).await?.len() as u64;
    store.append("tenant-1", stream, ExpectedVersion::Exact(version), events).await.map(|_| ())
}

/// One inbound message: load message, contact and conversation, then append.
async fn inbound(store: &DynamoEventStore, n: usize, new_contact: bool) -> Result<CapacityUnits, StoreError> {
    let message = format!("message-in-{n}-{}", Uuid::now_v7());
    let contact = if new_contact { format!("contact-{}", Uuid::now_v7()) } else { "contact-regular".into() };
    let conversation =
        if new_contact { format!("conversation-{}", Uuid::now_v7()) } else { "conversation-busy".into() };
    let meter = Meter::start(store);
    let message_version = store.read_stream(&message, 0).await?.len() as u64;
    let contact_version = store.read_stream(&contact, 0).await?.len() as u64;
    let conversation_version = store.read_stream(&conversation, 0).await?.len() as u64;
    store
        .append(
            "tenant-1",
            &message,
            ExpectedVersion::Exact(message_version),
            vec![event("MessageReceived", MESSAGE_RECEIVED)],
        )
        .await?;
    if new_contact {
        store
            .append(
                "tenant-1",
                &contact,
                ExpectedVersion::Exact(contact_version),
                vec![event("ContactCreated", CONTACT_CREATED)],
            )
            .await?;
    }
    let mut conversation_events = vec![event("InboundMessageRecorded", CONVERSATION_RECORD)];
    if conversation_version == 0 {
        conversation_events.insert(0, event("ConversationOpened", CONVERSATION_RECORD));
    }
    store.append("tenant-1", &conversation, ExpectedVersion::Exact(conversation_version), conversation_events).await?;
    Ok(meter.stop())
}

/// One outbound send: queue, dispatch, sent, then delivered and read statuses.
async fn outbound(store: &DynamoEventStore) -> Result<Vec<(&'static str, CapacityUnits)>, StoreError> {
    let message = format!("message-out-{}", Uuid::now_v7());
    let mut steps = Vec::new();
    let meter = Meter::start(store);
    store.read_stream(&message, 0).await?;
    store.append("tenant-1", &message, ExpectedVersion::NoStream, vec![event("MessageQueued", MESSAGE_QUEUED)]).await?;
    append(store, "conversation-busy", vec![event("OutboundMessageRecorded", CONVERSATION_RECORD)]).await?;
    steps.push(("queue (load message, append MessageQueued + conversation record)", meter.stop()));
    for (label, event_type) in [
        ("dispatch started (load, append)", "MessageDispatchStarted"),
        ("sent (load, append)", "MessageSent"),
        ("delivered status (load, append)", "MessageDelivered"),
        ("read status (load, append)", "MessageRead"),
    ] {
        let meter = Meter::start(store);
        append(store, &message, vec![event(event_type, STATUS)]).await?;
        steps.push((label, meter.stop()));
    }
    Ok(steps)
}

async fn run(max_tip_bytes: u64) -> Result<(), StoreError> {
    let config = AwsTarget::from_env().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("events-capacity-{}", Uuid::now_v7().simple());
    DynamoEventStore::create_table(&client, &table).await?;
    let store = DynamoEventStore::new(client.clone(), &table).with_max_tip_bytes(max_tip_bytes);
    println!("\n## tip bound {max_tip_bytes} bytes");

    print("inbound, first message of a new contact (3 loads, 3 appends)", inbound(&store, 0, true).await?);
    // Fill the busy conversation so its tip sits at various sizes.
    append(&store, "contact-regular", vec![event("ContactCreated", CONTACT_CREATED)]).await?;
    let mut samples = Vec::new();
    for n in 1..=120 {
        samples.push(inbound(&store, n, false).await?);
    }
    let mean = |range: std::ops::Range<usize>| {
        let slice = &samples[range];
        let count = slice.len() as f64;
        CapacityUnits {
            read: slice.iter().map(|u| u.read).sum::<f64>() / count,
            write: slice.iter().map(|u| u.write).sum::<f64>() / count,
        }
    };
    print("inbound, known contact: message 2 of the conversation", samples[0]);
    print("inbound, known contact: mean over messages 2..=121", mean(0..samples.len()));
    print("inbound, known contact: mean over messages 100..=121", mean(99..samples.len()));
    for (label, units) in outbound(&store).await? {
        print(&format!("outbound {label}"), units);
    }
    let before = store.consumed_capacity();
    let log = store.read_all(0, 1000).await?;
    let after = store.consumed_capacity();
    println!(
        "read_all of the whole log: {} events, {:.1} RCU ({:.3} RCU per event)",
        log.len(),
        after.read - before.read,
        (after.read - before.read) / log.len() as f64
    );
    client.delete_table().table_name(&table).send().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for bound in [32 * 1024, 8 * 1024, 4 * 1024] {
        run(bound).await?;
    }
    Ok(())
}
