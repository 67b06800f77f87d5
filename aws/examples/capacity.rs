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
//! events of realistic sizes (sealed message bodies are ciphertext), projects
//! the inbound events into the read-model table as the stream projector
//! would, and prints the read and write units each part consumed.
//! `events/docs/dynamodb.md` quotes its output.

use chrono::Utc;
use parley_aws::config::AwsTarget;
use parley_aws::dynamodb::{CapacityUnits, DynamoEventStore, DynamoReadModels};
use parley_events::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use serde_json::json;
use uuid::Uuid;

/// A sealed text of about `bytes` bytes, as the vault leaves it.
fn sealed(bytes: usize) -> serde_json::Value {
    json!({ "sealed": { "key": "tenant-1/2026-11", "ciphertext": "x".repeat(bytes.saturating_sub(50)) } })
}

/// An inbound message's event with the fields the read models take.
fn message_received(conversation: Uuid, wamid: &str) -> NewEvent {
    let mut e = event("MessageReceived", 0);
    e.data = json!({
        "conversation_id": conversation, "number_id": "106540352242922", "wa_id": "4917600000001",
        "kind": "text", "wamid": wamid, "sent_at": Utc::now().to_rfc3339(), "content": { "text": sealed(MESSAGE_RECEIVED - 250) },
    });
    e
}

/// The conversation's record of an inbound message.
fn inbound_recorded(name: bool) -> NewEvent {
    let mut e = event("InboundMessageRecorded", 0);
    e.data = json!({
        "preview": { "at": Utc::now().to_rfc3339(), "direction": "inbound", "text": sealed(120) },
        "window_closes_at": (Utc::now() + chrono::Duration::hours(24)).to_rfc3339(),
        "contact_name": if name { sealed(60) } else { serde_json::Value::Null },
    });
    e
}

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

/// The units of one inbound message: in the event store, and in the read
/// models when its events are projected.
struct Inbound {
    store: CapacityUnits,
    projector: CapacityUnits,
}

/// One inbound message: load message, contact and conversation, append, project.
async fn inbound(
    store: &DynamoEventStore,
    models: &DynamoReadModels,
    n: usize,
    new_contact: bool,
) -> Result<Inbound, StoreError> {
    let message = format!("tenant-1/message/{}", Uuid::now_v7());
    let contact = if new_contact { format!("tenant-1/contact/{}", Uuid::now_v7()) } else { REGULAR_CONTACT.into() };
    let conversation_id = if new_contact { Uuid::now_v7() } else { busy_conversation() };
    let conversation = format!("tenant-1/conversation/{conversation_id}");
    let meter = Meter::start(store);
    let message_version = store.read_stream(&message, 0).await?.len() as u64;
    let contact_version = store.read_stream(&contact, 0).await?.len() as u64;
    let conversation_version = store.read_stream(&conversation, 0).await?.len() as u64;
    let received = vec![message_received(conversation_id, &format!("wamid.{n}"))];
    store.append("tenant-1", &message, ExpectedVersion::Exact(message_version), received).await?;
    if new_contact {
        let created = vec![event("ContactCreated", CONTACT_CREATED)];
        store.append("tenant-1", &contact, ExpectedVersion::Exact(contact_version), created).await?;
    }
    let mut conversation_events = vec![inbound_recorded(new_contact)];
    if conversation_version == 0 {
        let mut opened = event("ConversationOpened", 0);
        opened.data = json!({ "number_id": "106540352242922", "wa_id": "4917600000001", "at": Utc::now().to_rfc3339() });
        conversation_events.insert(0, opened);
    }
    store.append("tenant-1", &conversation, ExpectedVersion::Exact(conversation_version), conversation_events).await?;
    let store_units = meter.stop();

    // What the stream projector receives: the events just appended.
    let mut appended: Vec<RecordedEvent> = store.read_stream(&message, message_version).await?;
    appended.extend(store.read_stream(&conversation, conversation_version).await?);
    let before = models.consumed_capacity();
    models.apply(&appended).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let after = models.consumed_capacity();
    Ok(Inbound {
        store: store_units,
        projector: CapacityUnits { read: after.read - before.read, write: after.write - before.write },
    })
}

const REGULAR_CONTACT: &str = "tenant-1/contact/4917600000001";

/// The conversation every "known contact" message goes to.
fn busy_conversation() -> Uuid {
    static BUSY: std::sync::OnceLock<Uuid> = std::sync::OnceLock::new();
    *BUSY.get_or_init(Uuid::now_v7)
}

/// One outbound send: queue, dispatch, sent, then delivered and read statuses.
async fn outbound(store: &DynamoEventStore) -> Result<Vec<(&'static str, CapacityUnits)>, StoreError> {
    let message = format!("message-out-{}", Uuid::now_v7());
    let mut steps = Vec::new();
    let meter = Meter::start(store);
    store.read_stream(&message, 0).await?;
    store.append("tenant-1", &message, ExpectedVersion::NoStream, vec![event("MessageQueued", MESSAGE_QUEUED)]).await?;
    let conversation = format!("tenant-1/conversation/{}", busy_conversation());
    append(store, &conversation, vec![event("OutboundMessageRecorded", CONVERSATION_RECORD)]).await?;
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
    let models_table = format!("read-models-capacity-{}", Uuid::now_v7().simple());
    DynamoReadModels::create_table(&client, &models_table).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let models = DynamoReadModels::new(client.clone(), &models_table);
    println!("\n## tip bound {max_tip_bytes} bytes");

    let first = inbound(&store, &models, 0, true).await?;
    print("inbound, first message of a new contact (3 loads, 3 appends)", first.store);
    print("  projected: message row created, conversation row created", first.projector);
    // Fill the busy conversation so its tip sits at various sizes.
    append(&store, REGULAR_CONTACT, vec![event("ContactCreated", CONTACT_CREATED)]).await?;
    let mut samples = Vec::new();
    let mut projected = Vec::new();
    for n in 1..=120 {
        let units = inbound(&store, &models, n, false).await?;
        samples.push(units.store);
        projected.push(units.projector);
    }
    let mean_of = |samples: &[CapacityUnits], range: std::ops::Range<usize>| {
        let slice = &samples[range];
        let count = slice.len() as f64;
        CapacityUnits {
            read: slice.iter().map(|u| u.read).sum::<f64>() / count,
            write: slice.iter().map(|u| u.write).sum::<f64>() / count,
        }
    };
    print("inbound, known contact: message 2 of the conversation", samples[0]);
    print("inbound, known contact: mean over messages 2..=121", mean_of(&samples, 0..samples.len()));
    print("inbound, known contact: mean over messages 100..=121", mean_of(&samples, 99..samples.len()));
    print("  projected: message row created, conversation row updated (mean)", mean_of(&projected, 0..projected.len()));
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
    for name in [&table, &models_table] {
        client.delete_table().table_name(name).send().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for bound in [32 * 1024, 8 * 1024, 4 * 1024] {
        run(bound).await?;
    }
    Ok(())
}
