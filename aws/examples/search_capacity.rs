//! Measures the DynamoDB capacity units of the message search index.
//!
//! Run it against DynamoDB Local (which reports real consumed capacity;
//! moto's numbers are constants):
//!
//! ```text
//! PARLEY_AWS_ENDPOINT=http://127.0.0.1:8000 cargo run -p parley-aws --example search_capacity
//! ```
//!
//! Messages are sealed as the application seals them (local vault), turned
//! into index changes by the application's indexer and applied to the
//! DynamoDB index; each line prints the read and write units of one step.
//! `events/docs/dynamodb.md` quotes its output.

use std::sync::Arc;

use chrono::Utc;
use parley_app::sealing::{EventSealer, Meta};
use parley_app::search::{Blinder, SearchIndex, SearchIndexer};
use parley_aws::config::AwsTarget;
use parley_aws::dynamodb::{CapacityUnits, DynamoReadModels, DynamoSearchIndex};
use parley_domain::event::MessageReceived;
use parley_domain::Event;
use parley_events::RecordedEvent;
use uuid::Uuid;

const TENANT: &str = "tenant-1";
const FOURTEEN_WORDS: &str = "Hi, my order 4711 has not arrived yet. Could you check the delivery please?";

fn received(text: &str) -> (Uuid, Event) {
    let id = Uuid::now_v7();
    let event = Event::MessageReceived(MessageReceived {
        message_id: id,
        conversation_id: Uuid::now_v7(),
        number_id: "106540352242922".into(),
        wa_id: "4917600000001".into(),
        wamid: format!("wamid.{id}"),
        kind: "text".into(),
        content: serde_json::json!({ "body": text }),
        context: None,
        referral: None,
        sent_at: Utc::now(),
        received_at: Utc::now(),
    });
    (id, event)
}

async fn recorded(sealer: &EventSealer, id: Uuid, event: &Event, position: u64) -> RecordedEvent {
    let new = sealer.encode(TENANT, Some("4917600000001"), event, &Meta::new("webhook"), Utc::now()).await.unwrap();
    RecordedEvent {
        event_id: new.event_id,
        stream_id: format!("{TENANT}/message/{id}"),
        version: 1,
        tenant_id: TENANT.into(),
        event_type: new.event_type,
        schema_version: new.schema_version,
        occurred_at: new.occurred_at,
        recorded_at: new.occurred_at,
        correlation_id: new.correlation_id,
        causation_id: None,
        actor: new.actor,
        data: new.data,
        global_position: position,
    }
}

struct Bench {
    index: Arc<DynamoSearchIndex>,
    indexer: SearchIndexer,
    blinder: Arc<Blinder>,
    sealer: Arc<EventSealer>,
    position: u64,
}

impl Bench {
    /// Indexes one message with `text`, printing the units under `label`.
    async fn index(&mut self, label: &str, text: &str) -> (Uuid, RecordedEvent) {
        let (id, event) = received(text);
        self.position += 1;
        let recorded = recorded(&self.sealer, id, &event, self.position).await;
        self.apply(label, std::slice::from_ref(&recorded)).await;
        (id, recorded)
    }

    async fn apply(&self, label: &str, events: &[RecordedEvent]) {
        let before = self.index.consumed_capacity();
        let changes = self.indexer.changes(events).await.unwrap();
        self.index.apply(&changes).await.unwrap();
        print(label, before, self.index.consumed_capacity());
    }

    async fn search(&self, label: &str, words: &[&str]) -> usize {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let terms = self.blinder.terms(TENANT, &words, false).await.unwrap().unwrap();
        let before = self.index.consumed_capacity();
        let found = self.index.search(TENANT, &terms, None, 50).await.unwrap().items.len();
        print(&format!("{label} ({found} found)"), before, self.index.consumed_capacity());
        found
    }
}

fn print(label: &str, before: CapacityUnits, after: CapacityUnits) {
    println!("{label:<64} {:>6.1} RCU {:>6.1} WCU", after.read - before.read, after.write - before.write);
}

#[tokio::main]
async fn main() {
    let config = AwsTarget::from_env().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("search-capacity-{}", Uuid::now_v7());
    DynamoReadModels::create_table(&client, &table).await.unwrap();
    let index = Arc::new(DynamoSearchIndex::new(client, &table));
    let dir = tempfile::tempdir().unwrap();
    let vault: Arc<dyn parley_vault::Vault> = Arc::new(parley_vault::LocalVault::open(dir.path()).unwrap());
    let sealer = Arc::new(EventSealer::new(vault.clone()));
    let blinder = Arc::new(Blinder::new(index.clone(), vault));
    let indexer = SearchIndexer::new(sealer.clone(), blinder.clone());
    let mut bench = Bench { index, indexer, blinder, sealer, position: 0 };

    bench.index("first message of a tenant (14 words, creates the search key)", FOURTEEN_WORDS).await;
    let (_, twelve) = bench.index("a 14-word message", FOURTEEN_WORDS).await;
    bench.apply("the same event delivered again", std::slice::from_ref(&twelve)).await;
    bench.index("a 3-word message", "Thanks a lot").await;
    let long: String = (0..300).map(|i| format!("word{i} ")).collect();
    bench.index("a 300-word message (the cap)", &long).await;
    for n in 0..200 {
        let text = format!("Order {n} shipped: the delivery arrives tomorrow");
        let (_, event) = received(&text);
        bench.position += 1;
        let recorded = recorded(&bench.sealer, Uuid::now_v7(), &event, bench.position).await;
        let changes = bench.indexer.changes(&[recorded]).await.unwrap();
        bench.index.apply(&changes).await.unwrap();
    }
    println!("(200 more messages say \"delivery\")");
    bench.search("search: one rare word (\"4711\")", &["4711"]).await;
    bench.search("search: one common word, first page of 50 (\"delivery\")", &["delivery"]).await;
    // The application puts words with digits first; the other order shows
    // what driving a query with its common word costs.
    bench.search("search: \"delivery 4711\" as the application orders it", &["4711", "delivery"]).await;
    bench.search("search: \"delivery\" driving, \"4711\" checked by key", &["delivery", "4711"]).await;

    let mut deleted = twelve.clone();
    deleted.event_type = "MessageDeleted".into();
    deleted.data = serde_json::json!({ "at": Utc::now(), "by": "agent" });
    deleted.version = 2;
    bench.apply("deleting the 14-word message", &[deleted]).await;
}
