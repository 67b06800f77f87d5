//! The conformance suite of the read-model port: every adapter must pass it.
//!
//! The suite feeds events through the adapter's projector and checks what
//! the queries answer. A projector is what runs the projections in
//! production (the SQLite one behind its checkpoints, the DynamoDB one
//! behind its per-row versions), so redelivered events must change nothing.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use parley_events::RecordedEvent;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ConversationFilter, ReadModels, WindowFilter};
use crate::error::AppError;

/// Applies events to read models the way the adapter's runtime does.
#[async_trait]
pub trait Projector: Send + Sync {
    async fn project(&self, events: &[RecordedEvent]) -> Result<(), AppError>;
}

/// Runs every case, each against fresh, empty read models from `make`.
pub async fn run_read_models_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn ReadModels>, Arc<dyn Projector>)>,
{
    let (models, projector) = make().await;
    messages_are_listed_newest_first_per_conversation_and_tenant(models, projector).await;
    let (models, projector) = make().await;
    statuses_follow_the_domain_rule_in_any_order(models, projector).await;
    let (models, projector) = make().await;
    conversations_track_previews_windows_and_state(models, projector).await;
    let (models, projector) = make().await;
    closed_windows_are_listed_until_expired(models, projector).await;
    let (models, projector) = make().await;
    numbers_are_found_by_tenant_and_verify_token(models, projector).await;
    let (models, projector) = make().await;
    redelivered_events_change_nothing(models, projector).await;
    let (models, projector) = make().await;
    archived_messages_are_removed_and_restored_as_they_were(models, projector).await;
    let (models, projector) = make().await;
    queued_messages_are_listed_oldest_first(models, projector).await;
    let (models, projector) = make().await;
    tenants_are_those_with_numbers(models, projector).await;
    let (models, projector) = make().await;
    reactions_are_kept_per_side(models, projector).await;
    let (models, projector) = make().await;
    referrals_open_the_entry_point_window(models, projector).await;
    let (models, projector) = make().await;
    numbers_show_their_health_and_settings(models, projector).await;
    let (models, projector) = make().await;
    number_activity_counts_what_each_number_sent(models, projector).await;
    let (models, projector) = make().await;
    inbound_media_goes_from_pending_to_stored_or_failed(models, projector).await;
    let (models, projector) = make().await;
    erased_contacts_leave_the_directory_until_they_come_back(models, projector).await;
}

const TENANT: &str = "tenant-rm";

/// Builds events the way the store records them: per-stream versions and
/// log positions counting up.
struct Log {
    position: u64,
    versions: std::collections::HashMap<String, u64>,
}

impl Log {
    fn new() -> Self {
        Log { position: 0, versions: Default::default() }
    }

    fn event(&mut self, tenant: &str, stream: &str, event_type: &str, data: Value) -> RecordedEvent {
        self.position += 1;
        let version = self.versions.entry(stream.to_owned()).or_default();
        *version += 1;
        RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: stream.to_owned(),
            version: *version,
            tenant_id: tenant.to_owned(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "conformance".into(),
            data,
            global_position: self.position,
        }
    }
}

fn message_stream(tenant: &str, id: Uuid) -> String {
    format!("{tenant}/message/{id}")
}

fn conversation_stream(tenant: &str, id: Uuid) -> String {
    format!("{tenant}/conversation/{id}")
}

/// A fixed instant `minutes` after a base time, at microsecond precision.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 123_456_000).single().unwrap_or_default() + Duration::minutes(minutes)
}

fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339()
}

/// A sealed value as the vault leaves it: opaque to the read models.
fn sealed(label: &str) -> Value {
    json!({ "sealed": { "key": "k1", "ciphertext": format!("c2VhbGVk-{label}") } })
}

fn received(conversation: Uuid, wamid: &str, minutes: i64) -> Value {
    json!({
        "conversation_id": conversation, "number_id": "pn-1", "wa_id": "491700000001", "kind": "text",
        "wamid": wamid, "sent_at": text(at(minutes)), "content": { "text": sealed(wamid) },
    })
}

fn queued(conversation: Uuid, minutes: i64) -> Value {
    json!({
        "conversation_id": conversation, "number_id": "pn-1", "wa_id": "491700000001", "kind": "text",
        "queued_at": text(at(minutes)), "content": { "text": sealed("out") },
    })
}

async fn project(projector: &Arc<dyn Projector>, events: &[RecordedEvent]) {
    projector.project(events).await.unwrap_or_else(|e| panic!("projecting {} events failed: {e}", events.len()));
}

async fn messages_are_listed_newest_first_per_conversation_and_tenant(
    models: Arc<dyn ReadModels>,
    projector: Arc<dyn Projector>,
) {
    let mut log = Log::new();
    let (conv_a, conv_b) = (Uuid::now_v7(), Uuid::now_v7());
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let events = vec![
        log.event(TENANT, &message_stream(TENANT, ids[0]), "MessageReceived", received(conv_a, "wamid.0", 1)),
        log.event(TENANT, &message_stream(TENANT, ids[1]), "MessageQueued", queued(conv_a, 3)),
        log.event(TENANT, &message_stream(TENANT, ids[2]), "MessageReceived", received(conv_a, "wamid.2", 2)),
        log.event(TENANT, &message_stream(TENANT, ids[3]), "MessageReceived", received(conv_b, "wamid.3", 4)),
        log.event(
            "other-tenant",
            &message_stream("other-tenant", Uuid::now_v7()),
            "MessageReceived",
            received(conv_a, "x", 9),
        ),
    ];
    project(&projector, &events).await;

    let first = models.message(TENANT, ids[0]).await.expect("message").expect("message 0 exists");
    assert_eq!((first.id, first.conversation_id), (ids[0], conv_a));
    assert_eq!((first.direction.as_str(), first.status.as_str()), ("inbound", "delivered"));
    assert_eq!((first.number_id.as_str(), first.wa_id.as_str(), first.kind.as_str()), ("pn-1", "491700000001", "text"));
    assert_eq!(first.wamid.as_deref(), Some("wamid.0"));
    assert_eq!(first.created_at, at(1));
    assert_eq!(first.content, json!({ "text": sealed("wamid.0") }), "content stays sealed");
    assert_eq!((first.error.as_ref(), first.tags.len(), first.attempts), (None, 0, 0));
    let outbound = models.message(TENANT, ids[1]).await.expect("message").expect("message 1 exists");
    assert_eq!((outbound.direction.as_str(), outbound.status.as_str()), ("outbound", "queued"));
    assert_eq!((outbound.wamid.as_deref(), outbound.created_at), (None, at(3)));
    assert!(models.message("other-tenant", ids[0]).await.expect("message").is_none(), "tenants are apart");

    let page = models.messages(TENANT, Some(conv_a), None, 2).await.expect("messages");
    assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[1], ids[2]], "newest first");
    let cursor = page.next_cursor.expect("a second page");
    let rest = models.messages(TENANT, Some(conv_a), Some(&cursor), 2).await.expect("messages");
    assert_eq!(rest.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(rest.next_cursor, None, "the last page has no cursor");
    let all = models.messages(TENANT, None, None, 10).await.expect("messages");
    assert_eq!(all.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[3], ids[1], ids[2], ids[0]]);
    assert_eq!(models.count_messages(TENANT).await.expect("count"), 4);
    assert_eq!(models.count_messages("nobody").await.expect("count"), 0);
    assert!(models.messages(TENANT, None, Some("garbage"), 10).await.is_err(), "a foreign cursor is refused");
}

async fn statuses_follow_the_domain_rule_in_any_order(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let conversation = Uuid::now_v7();
    let (read_one, failed_one) = (Uuid::now_v7(), Uuid::now_v7());
    let stream = message_stream(TENANT, read_one);
    let events = [
        log.event(TENANT, &stream, "MessageQueued", queued(conversation, 1)),
        log.event(TENANT, &stream, "MessageDispatchStarted", json!({ "attempt": 2 })),
        log.event(TENANT, &stream, "MessageAccepted", json!({ "wamid": "wamid.out" })),
        // Statuses arrive out of order: read before delivered before sent.
        log.event(TENANT, &stream, "MessageRead", json!({ "at": text(at(4)) })),
        log.event(TENANT, &stream, "MessageDelivered", json!({ "at": text(at(3)) })),
        log.event(TENANT, &stream, "MessageSent", json!({ "at": text(at(2)) })),
        log.event(TENANT, &stream, "MessageDelivered", json!({ "at": text(at(9)) })),
    ];
    project(&projector, &events[..3]).await;
    let dispatched = models.message(TENANT, read_one).await.expect("message").expect("exists");
    assert_eq!((dispatched.attempts, dispatched.wamid.as_deref()), (2, Some("wamid.out")));
    assert_eq!(dispatched.status, "queued");
    project(&projector, &events[3..]).await;
    let read = models.message(TENANT, read_one).await.expect("message").expect("exists");
    assert_eq!(read.status, "read");
    assert_eq!((read.sent_at, read.delivered_at, read.read_at), (Some(at(2)), Some(at(3)), Some(at(4))));
    assert_eq!(read.failed_at, None);

    let stream = message_stream(TENANT, failed_one);
    let failure = json!({ "code": 131026, "title": "Message undeliverable" });
    project(
        &projector,
        &[
            log.event(TENANT, &stream, "MessageQueued", queued(conversation, 5)),
            log.event(TENANT, &stream, "MessageFailed", json!({ "at": text(at(6)), "failure": failure })),
        ],
    )
    .await;
    let failed = models.message(TENANT, failed_one).await.expect("message").expect("exists");
    assert_eq!((failed.status.as_str(), failed.failed_at), ("failed", Some(at(6))));
    assert_eq!(failed.error, Some(failure));
    // A later delivery report outranks the failure.
    project(&projector, &[log.event(TENANT, &stream, "MessageDelivered", json!({ "at": text(at(7)) }))]).await;
    let delivered = models.message(TENANT, failed_one).await.expect("message").expect("exists");
    assert_eq!(delivered.status, "delivered");

    // Statuses of a message the read model has never seen create nothing.
    let unknown = Uuid::now_v7();
    project(
        &projector,
        &[log.event(TENANT, &message_stream(TENANT, unknown), "MessageSent", json!({ "at": text(at(1)) }))],
    )
    .await;
    assert!(models.message(TENANT, unknown).await.expect("message").is_none());
}

fn opened(number: &str, minutes: i64) -> Value {
    json!({ "number_id": number, "wa_id": "491700000001", "at": text(at(minutes)) })
}

fn inbound_recorded(minutes: i64, window_closes_in_minutes: i64, name: Option<Value>) -> Value {
    json!({
        "preview": { "at": text(at(minutes)), "direction": "inbound", "text": sealed("preview") },
        "window_closes_at": text(at(minutes + window_closes_in_minutes)),
        "contact_name": name,
    })
}

fn outbound_recorded(minutes: i64) -> Value {
    json!({ "preview": { "at": text(at(minutes)), "direction": "outbound", "text": sealed("reply") } })
}

async fn conversations_track_previews_windows_and_state(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (s1, s2, s3) =
        (conversation_stream(TENANT, first), conversation_stream(TENANT, second), conversation_stream(TENANT, third));
    let day = 24 * 60;
    project(
        &projector,
        &[
            log.event(TENANT, &s1, "ConversationOpened", opened("pn-1", 0)),
            log.event(TENANT, &s1, "InboundMessageRecorded", inbound_recorded(1, day, Some(sealed("name")))),
            log.event(TENANT, &s2, "ConversationOpened", opened("pn-2", 2)),
            log.event(TENANT, &s2, "InboundMessageRecorded", inbound_recorded(3, 10, None)),
            log.event(TENANT, &s3, "ConversationOpened", opened("pn-1", 4)),
            log.event(TENANT, &s1, "OutboundMessageRecorded", outbound_recorded(5)),
            // An older preview arriving late does not replace a newer one.
            log.event(TENANT, &s1, "InboundMessageRecorded", inbound_recorded(-5, day, None)),
        ],
    )
    .await;

    let view = models.conversation(TENANT, first).await.expect("conversation").expect("exists");
    assert_eq!((view.number_id.as_str(), view.wa_id.as_str(), view.state.as_str()), ("pn-1", "491700000001", "open"));
    assert_eq!(view.contact_name, sealed("name"), "the contact's name stays sealed");
    assert_eq!(view.unread_count, 2, "two inbound messages");
    assert_eq!(view.created_at, at(0));
    assert_eq!(view.activity_at, at(5));
    assert_eq!(view.window_closes_at, Some(at(1 + day)), "the window never moves back");
    assert_eq!(view.last_message, Some(outbound_recorded(5)["preview"].clone()));
    let untouched = models.conversation(TENANT, third).await.expect("conversation").expect("exists");
    assert_eq!((untouched.contact_name.clone(), untouched.unread_count), (Value::Null, 0));
    assert_eq!((untouched.last_message.clone(), untouched.window_closes_at), (None, None));
    assert!(models.conversation("other-tenant", first).await.expect("conversation").is_none());

    let now = at(60);
    let list = |filter: ConversationFilter, cursor: Option<String>, limit: usize| {
        let models = Arc::clone(&models);
        async move {
            let page =
                models.conversations(TENANT, &filter, now, cursor.as_deref(), limit).await.expect("conversations");
            (page.items.iter().map(|c| c.id).collect::<Vec<_>>(), page.next_cursor)
        }
    };
    let (ids, cursor) = list(ConversationFilter::default(), None, 2).await;
    assert_eq!(ids, vec![first, third], "most recently active first");
    let (ids, cursor) = list(ConversationFilter::default(), cursor, 2).await;
    assert_eq!((ids, cursor), (vec![second], None));
    let open = ConversationFilter { window: Some(WindowFilter::Open), ..Default::default() };
    assert_eq!(list(open, None, 10).await.0, vec![first]);
    let closed = ConversationFilter { window: Some(WindowFilter::Closed), ..Default::default() };
    assert_eq!(list(closed, None, 10).await.0, vec![third, second], "no window or a past one is closed");
    let by_number = ConversationFilter { number_id: Some("pn-1".into()), ..Default::default() };
    assert_eq!(list(by_number, None, 10).await.0, vec![first, third]);

    project(&projector, &[log.event(TENANT, &s2, "ConversationResolved", json!({ "at": text(at(7)) }))]).await;
    let resolved = ConversationFilter { state: Some("resolved".into()), ..Default::default() };
    assert_eq!(list(resolved.clone(), None, 10).await.0, vec![second]);
    project(&projector, &[log.event(TENANT, &s2, "ConversationReopened", json!({ "at": text(at(8)) }))]).await;
    assert!(list(resolved, None, 10).await.0.is_empty());
    // Paging with a filter still returns full pages.
    let pn1 = ConversationFilter { number_id: Some("pn-1".into()), ..Default::default() };
    let (ids, cursor) = list(pn1.clone(), None, 1).await;
    assert_eq!(ids, vec![first]);
    assert_eq!(list(pn1, cursor, 1).await.0, vec![third]);
}

async fn closed_windows_are_listed_until_expired(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let (closing, open, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (s1, s2, s3) =
        (conversation_stream(TENANT, closing), conversation_stream(TENANT, open), conversation_stream("t-2", other));
    project(
        &projector,
        &[
            log.event(TENANT, &s1, "ConversationOpened", opened("pn-1", 0)),
            log.event(TENANT, &s1, "InboundMessageRecorded", inbound_recorded(1, 10, None)),
            log.event(TENANT, &s2, "ConversationOpened", opened("pn-1", 0)),
            log.event(TENANT, &s2, "InboundMessageRecorded", inbound_recorded(1, 100, None)),
            log.event("t-2", &s3, "ConversationOpened", opened("pn-9", 0)),
            log.event("t-2", &s3, "InboundMessageRecorded", inbound_recorded(2, 10, None)),
        ],
    )
    .await;
    let mut closed = models.closed_windows(at(30), 10).await.expect("closed windows");
    closed.sort_by_key(|w| w.conversation_id);
    let mut expected = vec![(TENANT.to_owned(), closing), ("t-2".to_owned(), other)];
    expected.sort_by_key(|(_, id)| *id);
    assert_eq!(closed.iter().map(|w| (w.tenant_id.clone(), w.conversation_id)).collect::<Vec<_>>(), expected);
    assert!(closed.iter().all(|w| w.wa_id == "491700000001"));
    assert_eq!(models.closed_windows(at(30), 1).await.expect("closed windows").len(), 1, "at most limit");
    assert!(models.closed_windows(at(5), 10).await.expect("closed windows").is_empty(), "none closed yet");

    // Expiring names the window it closed; a stale expiry changes nothing.
    project(
        &projector,
        &[
            log.event(TENANT, &s1, "ConversationWindowExpired", json!({ "closed_at": text(at(11)) })),
            log.event("t-2", &s3, "ConversationWindowExpired", json!({ "closed_at": text(at(5)) })),
        ],
    )
    .await;
    let closed = models.closed_windows(at(30), 10).await.expect("closed windows");
    assert_eq!(closed.iter().map(|w| w.conversation_id).collect::<Vec<_>>(), vec![other]);
    let filter = ConversationFilter { window: Some(WindowFilter::Closed), ..Default::default() };
    let listed = models.conversations(TENANT, &filter, at(30), None, 10).await.expect("conversations");
    assert_eq!(listed.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![closing]);

    // A new inbound message reopens the window, and its close is listed again later.
    project(&projector, &[log.event(TENANT, &s1, "InboundMessageRecorded", inbound_recorded(40, 10, None))]).await;
    assert!(models.closed_windows(at(45), 10).await.expect("closed").iter().all(|w| w.conversation_id != closing));
    let later = models.closed_windows(at(60), 10).await.expect("closed windows");
    assert!(later.iter().any(|w| w.conversation_id == closing), "{later:?}");
}

fn number(phone: &str, tenant_hash: &str, display: &str) -> Value {
    json!({
        "phone_number_id": phone, "display_phone_number": display, "waba_id": "waba-1",
        "verify_token_sha256": tenant_hash, "throughput_per_second": 250, "at": text(at(0)),
    })
}

async fn numbers_are_found_by_tenant_and_verify_token(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    project(
        &projector,
        &[
            log.event(TENANT, "number/pn-2", "NumberRegistered", number("pn-2", "hash-a", "+49 2")),
            log.event(TENANT, "number/pn-1", "NumberRegistered", number("pn-1", "hash-a", "+49 1")),
            log.event("t-2", "number/pn-3", "NumberRegistered", number("pn-3", "hash-b", "+49 3")),
        ],
    )
    .await;
    let numbers = models.numbers(TENANT).await.expect("numbers");
    assert_eq!(numbers.iter().map(|n| n.phone_number_id.as_str()).collect::<Vec<_>>(), vec!["pn-1", "pn-2"]);
    let first = &numbers[0];
    assert_eq!((first.tenant_id.as_str(), first.display_phone_number.as_str()), (TENANT, "+49 1"));
    assert_eq!((first.waba_id.as_str(), first.throughput_per_second, first.registered_at), ("waba-1", 250, at(0)));
    let mut by_token = models.numbers_with_verify_token("hash-a").await.expect("numbers");
    by_token.sort_by(|a, b| a.phone_number_id.cmp(&b.phone_number_id));
    assert_eq!(by_token, numbers);
    assert_eq!(models.numbers_with_verify_token("hash-b").await.expect("numbers")[0].tenant_id, "t-2");
    assert!(models.numbers_with_verify_token("nope").await.expect("numbers").is_empty());
    assert!(models.numbers("nobody").await.expect("numbers").is_empty());
}

async fn redelivered_events_change_nothing(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let (conversation, message) = (Uuid::now_v7(), Uuid::now_v7());
    let (cs, ms) = (conversation_stream(TENANT, conversation), message_stream(TENANT, message));
    let batch = vec![
        log.event(TENANT, &cs, "ConversationOpened", opened("pn-1", 0)),
        log.event(TENANT, &ms, "MessageReceived", received(conversation, "wamid.r", 1)),
        log.event(TENANT, &cs, "InboundMessageRecorded", inbound_recorded(1, 60, None)),
    ];
    project(&projector, &batch).await;
    let next = vec![log.event(TENANT, &cs, "InboundMessageRecorded", inbound_recorded(2, 60, None))];
    project(&projector, &next).await;
    let before = models.conversation(TENANT, conversation).await.expect("conversation");
    assert_eq!(before.as_ref().map(|c| c.unread_count), Some(2));
    // The whole first batch again, then the last event again.
    project(&projector, &batch).await;
    project(&projector, &next).await;
    assert_eq!(models.conversation(TENANT, conversation).await.expect("conversation"), before);
    assert_eq!(models.count_messages(TENANT).await.expect("count"), 1);
}

async fn archived_messages_are_removed_and_restored_as_they_were(
    models: Arc<dyn ReadModels>,
    projector: Arc<dyn Projector>,
) {
    let mut log = Log::new();
    let conversation = Uuid::now_v7();
    let (archived, kept) = (Uuid::now_v7(), Uuid::now_v7());
    let opened = log.event(
        TENANT,
        &conversation_stream(TENANT, conversation),
        "ConversationOpened",
        json!({ "number_id": "pn-1", "wa_id": "491700000001", "at": text(at(0)) }),
    );
    let stream = message_stream(TENANT, archived);
    let events = vec![
        log.event(TENANT, &stream, "MessageQueued", queued(conversation, 1)),
        log.event(TENANT, &stream, "MessageAccepted", json!({ "wamid": "wamid.old" })),
        log.event(TENANT, &stream, "MessageSent", json!({ "at": text(at(2)) })),
        log.event(TENANT, &stream, "MessageRead", json!({ "at": text(at(3)) })),
        log.event(TENANT, &stream, "MessageTagged", json!({ "tags": ["vip"] })),
    ];
    let other = log.event(TENANT, &message_stream(TENANT, kept), "MessageReceived", received(conversation, "w.k", 4));
    project(&projector, &[opened]).await;
    project(&projector, &events).await;
    project(&projector, std::slice::from_ref(&other)).await;
    let before = models.message(TENANT, archived).await.expect("message").expect("exists");
    let tagged = ConversationFilter { tag: Some("vip".into()), ..Default::default() };
    let by_tag = |models: Arc<dyn ReadModels>| {
        let tagged = tagged.clone();
        async move { models.conversations(TENANT, &tagged, at(0), None, 10).await.expect("conversations").items.len() }
    };
    assert_eq!(by_tag(models.clone()).await, 1);

    models.remove_messages(TENANT, &[archived, Uuid::now_v7()]).await.expect("remove");
    assert_eq!(models.message(TENANT, archived).await.expect("message"), None, "the row is gone");
    assert!(models.message(TENANT, kept).await.expect("message").is_some(), "other rows stay");
    assert_eq!(models.count_messages(TENANT).await.expect("count"), 1);
    assert_eq!(by_tag(models.clone()).await, 0, "its tag goes with it");
    let page = models.messages(TENANT, Some(conversation), None, 10).await.expect("messages");
    assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), [kept]);
    models.remove_messages("other-tenant", &[kept]).await.expect("remove");
    assert!(models.message(TENANT, kept).await.expect("message").is_some(), "removal is per tenant");

    let mut with_others = events.clone();
    with_others.push(log.event(TENANT, &conversation_stream(TENANT, conversation), "ConversationResolved", json!({})));
    models.restore_messages(&with_others).await.expect("restore");
    assert_eq!(models.message(TENANT, archived).await.expect("message"), Some(before.clone()), "as it was");
    models.restore_messages(&events[..2]).await.expect("restore again");
    assert_eq!(models.message(TENANT, archived).await.expect("message"), Some(before), "an existing row stays");
    assert_eq!(models.count_messages(TENANT).await.expect("count"), 2);
    assert_eq!(by_tag(models.clone()).await, 1, "the tag is found again");
}

async fn queued_messages_are_listed_oldest_first(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let conversation = Uuid::now_v7();
    let (young, old, sent, inbound, other) =
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let events = [
        log.event(TENANT, &message_stream(TENANT, young), "MessageQueued", queued(conversation, 9)),
        log.event(TENANT, &message_stream(TENANT, old), "MessageQueued", queued(conversation, 1)),
        log.event(TENANT, &message_stream(TENANT, sent), "MessageQueued", queued(conversation, 2)),
        log.event(TENANT, &message_stream(TENANT, inbound), "MessageReceived", received(conversation, "w.q", 4)),
        log.event("tenant-rm-2", &message_stream("tenant-rm-2", other), "MessageQueued", queued(conversation, 5)),
    ];
    project(&projector, &events).await;
    let listed =
        |queued: Vec<super::QueuedMessage>| queued.into_iter().map(|q| (q.tenant_id, q.message_id)).collect::<Vec<_>>();
    let all = vec![
        (TENANT.to_owned(), old),
        (TENANT.to_owned(), sent),
        ("tenant-rm-2".to_owned(), other),
        (TENANT.to_owned(), young),
    ];
    assert_eq!(listed(models.queued_messages(10).await.expect("queued")), all, "every tenant's, oldest first");
    assert_eq!(listed(models.queued_messages(1).await.expect("queued")), all[..1], "limited");
    project(
        &projector,
        &[log.event(TENANT, &message_stream(TENANT, sent), "MessageSent", json!({ "at": text(at(3)) }))],
    )
    .await;
    let failure = json!({ "kind": "expired" });
    project(
        &projector,
        &[log.event(
            TENANT,
            &message_stream(TENANT, old),
            "MessageFailed",
            json!({ "at": text(at(3)), "failure": failure }),
        )],
    )
    .await;
    let left = vec![("tenant-rm-2".to_owned(), other), (TENANT.to_owned(), young)];
    assert_eq!(listed(models.queued_messages(10).await.expect("queued")), left, "sent and failed ones leave the list");
}

async fn tenants_are_those_with_numbers(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    assert!(models.tenants().await.expect("tenants").is_empty());
    let registered = |tenant: &str, number: &str| {
        json!({
            "tenant_id": tenant, "phone_number_id": number, "display_phone_number": "+1 555", "waba_id": "waba-1",
            "access_token": "sealed", "app_secret": "sealed", "verify_token_sha256": "00", "throughput_per_second": 80,
            "at": text(at(0)),
        })
    };
    let events = [
        log.event("tenant-b", "number/pn-b1", "NumberRegistered", registered("tenant-b", "pn-b1")),
        log.event("tenant-a", "number/pn-a1", "NumberRegistered", registered("tenant-a", "pn-a1")),
        log.event("tenant-b", "number/pn-b2", "NumberRegistered", registered("tenant-b", "pn-b2")),
    ];
    project(&projector, &events).await;
    assert_eq!(models.tenants().await.expect("tenants"), ["tenant-a", "tenant-b"]);
}

fn reaction(direction: &str, emoji: &str, minutes: i64) -> Value {
    json!({
        "direction": direction, "emoji": sealed(emoji), "reaction_message_id": Uuid::now_v7(),
        "at": text(at(minutes)),
    })
}

async fn reactions_are_kept_per_side(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let (conversation, target) = (Uuid::now_v7(), Uuid::now_v7());
    let stream = message_stream(TENANT, target);
    project(
        &projector,
        &[
            log.event(TENANT, &stream, "MessageQueued", queued(conversation, 1)),
            log.event(TENANT, &stream, "MessageReactionSet", reaction("inbound", "thumbs", 2)),
            log.event(TENANT, &stream, "MessageReactionSet", reaction("outbound", "heart", 3)),
        ],
    )
    .await;
    let view = models.message(TENANT, target).await.expect("message").expect("exists");
    assert_eq!(view.reactions["inbound"]["emoji"], sealed("thumbs"), "the emoji stays sealed");
    assert_eq!(view.reactions["inbound"]["at"], text(at(2)));
    assert_eq!(view.reactions["outbound"]["emoji"], sealed("heart"));
    // The customer changes, then removes, their reaction; the business's stays.
    let changed = reaction("inbound", "wow", 4);
    project(&projector, &[log.event(TENANT, &stream, "MessageReactionSet", changed.clone())]).await;
    let view = models.message(TENANT, target).await.expect("message").expect("exists");
    assert_eq!(view.reactions["inbound"]["emoji"], sealed("wow"));
    assert_eq!(view.reactions["inbound"]["message_id"], changed["reaction_message_id"]);
    project(&projector, &[log.event(TENANT, &stream, "MessageReactionSet", reaction("inbound", "", 5))]).await;
    let view = models.message(TENANT, target).await.expect("message").expect("exists");
    assert_eq!(view.reactions["inbound"]["emoji"], sealed(""));
    assert_eq!(view.reactions["outbound"]["emoji"], sealed("heart"));
    let untouched = Uuid::now_v7();
    project(
        &projector,
        &[log.event(TENANT, &message_stream(TENANT, untouched), "MessageQueued", queued(conversation, 6))],
    )
    .await;
    let view = models.message(TENANT, untouched).await.expect("message").expect("exists");
    assert_eq!(view.reactions, Value::Null, "no reactions");
}

fn entry_point(minutes: i64, source_id: &str) -> Value {
    json!({
        "message_id": Uuid::now_v7(), "at": text(at(minutes)), "closes_at": text(at(minutes + 72 * 60)),
        "referral": {
            "source_url": "https://fb.me/ad", "source_id": source_id, "source_type": "ad",
            "headline": sealed("headline"), "body": sealed("body"), "media_type": "image",
            "ctwa_clid": sealed("click"),
        },
    })
}

async fn referrals_open_the_entry_point_window(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let (from_ad, plain) = (Uuid::now_v7(), Uuid::now_v7());
    let (s1, s2) = (conversation_stream(TENANT, from_ad), conversation_stream(TENANT, plain));
    project(
        &projector,
        &[
            log.event(TENANT, &s1, "ConversationOpened", opened("pn-1", 0)),
            log.event(TENANT, &s1, "InboundMessageRecorded", inbound_recorded(1, 24 * 60, None)),
            log.event(TENANT, &s1, "EntryPointWindowOpened", entry_point(1, "AD-1")),
            log.event(TENANT, &s2, "ConversationOpened", opened("pn-1", 0)),
            log.event(TENANT, &s2, "InboundMessageRecorded", inbound_recorded(1, 24 * 60, None)),
        ],
    )
    .await;
    let view = models.conversation(TENANT, from_ad).await.expect("conversation").expect("exists");
    assert_eq!(view.entry_point_window_closes_at, Some(at(1 + 72 * 60)));
    assert_eq!(view.window_closes_at, Some(at(1 + 24 * 60)), "the service window is its own");
    let referral = view.referral.expect("referral");
    assert_eq!((referral["source_id"].as_str(), referral["source_type"].as_str()), (Some("AD-1"), Some("ad")));
    assert_eq!(referral["headline"], sealed("headline"), "the ad's text stays sealed");
    // An older ad arriving late neither shortens the window nor replaces the newer ad.
    project(
        &projector,
        &[
            log.event(TENANT, &s1, "EntryPointWindowOpened", entry_point(30, "AD-2")),
            log.event(TENANT, &s1, "EntryPointWindowOpened", entry_point(10, "AD-OLD")),
        ],
    )
    .await;
    let view = models.conversation(TENANT, from_ad).await.expect("conversation").expect("exists");
    assert_eq!(view.entry_point_window_closes_at, Some(at(30 + 72 * 60)));
    assert_eq!(view.referral.expect("referral")["source_id"], "AD-2");
    let plain = models.conversation(TENANT, plain).await.expect("conversation").expect("exists");
    assert_eq!((plain.entry_point_window_closes_at, plain.referral), (None, None));
}

async fn numbers_show_their_health_and_settings(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    project(
        &projector,
        &[
            log.event(TENANT, "number/pn-1", "NumberRegistered", number("pn-1", "hash-a", "+49 1")),
            log.event(TENANT, "number/pn-2", "NumberRegistered", number("pn-2", "hash-a", "+49 2")),
        ],
    )
    .await;
    let fresh = models.numbers(TENANT).await.expect("numbers");
    assert_eq!((fresh[0].quality_rating.as_str(), fresh[0].account_status.as_str()), ("UNKNOWN", "CONNECTED"));
    assert_eq!((fresh[0].messaging_limit.clone(), fresh[0].alternate_number_id.clone()), (None, None));
    project(
        &projector,
        &[
            log.event(
                TENANT,
                "number/pn-1",
                "NumberQualityUpdated",
                json!({"event": "FLAGGED", "quality_rating": "RED", "messaging_limit": "TIER_1K", "at": text(at(1))}),
            ),
            log.event(
                TENANT,
                "number/pn-1",
                "NumberAccountStatusChanged",
                json!({"status": "RESTRICTED", "reason": "account_update:ACCOUNT_RESTRICTION", "detail": null,
                       "at": text(at(2))}),
            ),
            log.event(
                TENANT,
                "number/pn-1",
                "NumberSettingsChanged",
                json!({"throughput_per_second": 500, "alternate_number_id": "pn-2", "at": text(at(3)), "by": "u"}),
            ),
            // A tier change without a limit keeps the limit.
            log.event(
                TENANT,
                "number/pn-1",
                "NumberQualityUpdated",
                json!({"event": "UPGRADE", "quality_rating": "YELLOW", "messaging_limit": null, "at": text(at(4))}),
            ),
        ],
    )
    .await;
    let numbers = models.numbers(TENANT).await.expect("numbers");
    let pn1 = &numbers[0];
    assert_eq!((pn1.quality_rating.as_str(), pn1.messaging_limit.as_deref()), ("YELLOW", Some("TIER_1K")));
    assert_eq!(pn1.account_status, "RESTRICTED");
    assert_eq!((pn1.throughput_per_second, pn1.alternate_number_id.as_deref()), (500, Some("pn-2")));
    assert_eq!(numbers[1].account_status, "CONNECTED", "the other number is untouched");
    let in_waba = models.numbers_in_waba("waba-1").await.expect("numbers");
    assert_eq!(in_waba.iter().find(|n| n.phone_number_id == "pn-1"), Some(pn1));
}

fn outbound_on(number: &str, minutes: i64) -> Value {
    let mut q = queued(Uuid::now_v7(), minutes);
    q["number_id"] = json!(number);
    q
}

/// WhatsApp accepted the send from number `from`, `minutes` in.
fn accepted(from: &str, minutes: i64) -> Value {
    json!({ "wamid": format!("wamid.{}", Uuid::now_v7()), "at": text(at(minutes)), "from_number_id": from })
}

async fn number_activity_counts_what_each_number_sent(models: Arc<dyn ReadModels>, projector: Arc<dyn Projector>) {
    let mut log = Log::new();
    let mut events = Vec::new();
    let ms = |t: DateTime<Utc>| text(t);
    // Five messages on pn-1 inside [at(0), at(60)): delivered after 1s, 2s, 3s (one by `read` only),
    // one failed, one still queued.
    for (i, latency) in [1_000i64, 2_000, 3_000].into_iter().enumerate() {
        let s = message_stream(TENANT, Uuid::now_v7());
        let minute = i as i64 + 1;
        events.push(log.event(TENANT, &s, "MessageQueued", outbound_on("pn-1", minute)));
        events.push(log.event(TENANT, &s, "MessageAccepted", accepted("pn-1", minute)));
        let done = at(minute) + Duration::milliseconds(latency);
        let status = if i == 2 { "MessageRead" } else { "MessageDelivered" };
        events.push(log.event(TENANT, &s, status, json!({ "at": ms(done) })));
    }
    let failed = message_stream(TENANT, Uuid::now_v7());
    events.push(log.event(TENANT, &failed, "MessageQueued", outbound_on("pn-1", 10)));
    events.push(log.event(
        TENANT,
        &failed,
        "MessageFailed",
        json!({ "at": ms(at(11)), "failure": { "code": 131026, "kind": "undeliverable" } }),
    ));
    let waiting = message_stream(TENANT, Uuid::now_v7());
    events.push(log.event(TENANT, &waiting, "MessageQueued", outbound_on("pn-1", 12)));
    // Queued on pn-1 but sent from its alternate pn-2: it counts for pn-2.
    let rerouted = message_stream(TENANT, Uuid::now_v7());
    events.push(log.event(TENANT, &rerouted, "MessageQueued", outbound_on("pn-1", 13)));
    events.push(log.event(TENANT, &rerouted, "MessageAccepted", accepted("pn-2", 14)));
    events.push(log.event(TENANT, &rerouted, "MessageDelivered", json!({ "at": ms(at(14) + Duration::seconds(9)) })));
    // Outside the range, inbound, or another tenant's: not counted.
    let late = message_stream(TENANT, Uuid::now_v7());
    events.push(log.event(TENANT, &late, "MessageQueued", outbound_on("pn-1", 60)));
    let inbound = message_stream(TENANT, Uuid::now_v7());
    let mut received = received(Uuid::now_v7(), "wamid.in", 5);
    received["number_id"] = json!("pn-1");
    events.push(log.event(TENANT, &inbound, "MessageReceived", received));
    let other = message_stream("t-2", Uuid::now_v7());
    events.push(log.event("t-2", &other, "MessageQueued", outbound_on("pn-1", 5)));
    project(&projector, &events).await;

    let activity = models.number_activity(TENANT, "pn-1", at(0), at(60)).await.expect("activity");
    assert_eq!((activity.messages, activity.sent, activity.delivered), (5, 3, 3));
    assert_eq!(activity.failures.into_iter().collect::<Vec<_>>(), vec![("undeliverable".to_owned(), 1)]);
    assert_eq!(activity.delivery_latencies_ms, vec![1_000, 2_000, 3_000]);
    let alternate = models.number_activity(TENANT, "pn-2", at(0), at(60)).await.expect("activity");
    assert_eq!((alternate.messages, alternate.sent, alternate.delivery_latencies_ms), (1, 1, vec![9_000]));
    let wider = models.number_activity(TENANT, "pn-1", at(0), at(61)).await.expect("activity");
    assert_eq!(wider.messages, 6, "the range's end is excluded, then included");
    let narrow = models.number_activity(TENANT, "pn-1", at(2), at(3)).await.expect("activity");
    assert_eq!((narrow.messages, narrow.delivery_latencies_ms), (1, vec![2_000]));
    let elsewhere = models.number_activity("t-2", "pn-1", at(0), at(60)).await.expect("activity");
    assert_eq!((elsewhere.messages, elsewhere.sent), (1, 0));
}

fn received_media(conversation: Uuid, wamid: &str, kind: &str, minutes: i64) -> Value {
    let mut data = received(conversation, wamid, minutes);
    data["kind"] = json!(kind);
    data
}

async fn inbound_media_goes_from_pending_to_stored_or_failed(
    models: Arc<dyn ReadModels>,
    projector: Arc<dyn Projector>,
) {
    let mut log = Log::new();
    let conversation = Uuid::now_v7();
    let (image, audio, text_message) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (is, aus, ts) =
        (message_stream(TENANT, image), message_stream(TENANT, audio), message_stream(TENANT, text_message));
    let received_batch = vec![
        log.event(TENANT, &is, "MessageReceived", received_media(conversation, "wamid.img", "image", 1)),
        log.event(TENANT, &aus, "MessageReceived", received_media(conversation, "wamid.aud", "audio", 2)),
        log.event(TENANT, &ts, "MessageReceived", received(conversation, "wamid.txt", 3)),
    ];
    project(&projector, &received_batch).await;
    let media_of = |id: Uuid| {
        let models = models.clone();
        async move { models.message(TENANT, id).await.expect("message").expect("a row").media }
    };
    let pending = media_of(image).await.expect("an inbound image has a media state");
    assert_eq!(pending.state, "pending");
    assert_eq!(pending.blob_key, None);
    assert_eq!(media_of(text_message).await, None, "a text message has no file");

    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let outcomes = vec![
        log.event(
            TENANT,
            &is,
            "MessageMediaStored",
            json!({"blob_key": format!("{TENANT}/media/inbound/{image}"), "mime_type": "image/jpeg",
                   "sha256": sha, "size": 4, "at": text(at(4))}),
        ),
        log.event(TENANT, &aus, "MessageMediaFetchFailed", json!({"reason": "media id expired", "at": text(at(5))})),
    ];
    project(&projector, &outcomes).await;
    let stored = media_of(image).await.expect("stored");
    assert_eq!(stored.state, "stored");
    assert_eq!(stored.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(stored.sha256.as_deref(), Some(sha));
    assert_eq!(stored.size, Some(4));
    assert_eq!(stored.blob_key, Some(format!("{TENANT}/media/inbound/{image}")));
    let failed = media_of(audio).await.expect("failed");
    assert_eq!((failed.state.as_str(), failed.error.as_deref()), ("failed", Some("media id expired")));

    // Redelivering the receipt does not take a stored file back to pending,
    // and the listing shows the same state as the single read.
    project(&projector, &received_batch).await;
    assert_eq!(media_of(image).await, Some(stored.clone()));
    let page = models.messages(TENANT, Some(conversation), None, 10).await.expect("page");
    let listed = page.items.iter().find(|m| m.id == image).expect("listed");
    assert_eq!(listed.media, Some(stored));
    // Another tenant sees none of it.
    assert!(models.message("tenant-other", image).await.expect("query").is_none());
}

pub async fn erased_contacts_leave_the_directory_until_they_come_back(
    models: Arc<dyn ReadModels>,
    projector: Arc<dyn Projector>,
) {
    let mut log = Log::new();
    let at = "2026-11-02T09:00:00Z";
    let stream = |wa_id: &str| parley_domain::ids::contact_stream(TENANT, wa_id);
    let created = |name: &str| json!({"wa_id": "ignored", "name": name, "at": at});
    let events = vec![
        log.event(TENANT, &stream("351910000001"), "ContactCreated", created("Ana")),
        log.event(TENANT, &stream("351910000002"), "ContactCreated", created("Rui")),
        log.event(TENANT, &stream("351910000001"), "ContactOptedOut", json!({"at": at, "source": "api"})),
        log.event(TENANT, &stream("351910000001"), "ContactErased", json!({"at": at, "by": "admin"})),
    ];
    projector.project(&events).await.expect("project");
    projector.project(&events).await.expect("a redelivery changes nothing");
    let listed = |models: Arc<dyn ReadModels>| async move {
        let page = models.contacts(TENANT, &Default::default(), None, 50).await.expect("contacts");
        page.items.into_iter().map(|c| (c.wa_id, c.name, c.opted_out)).collect::<Vec<_>>()
    };
    assert_eq!(listed(models.clone()).await, [("351910000002".to_string(), json!("Rui"), false)]);
    let filter = super::ContactFilter { opted_out: Some(true), tag: None };
    assert!(models.contacts(TENANT, &filter, None, 50).await.expect("contacts").items.is_empty());

    // The same number writes again: a new contact, with nothing of the old one.
    let again = vec![log.event(TENANT, &stream("351910000001"), "ContactCreated", created("Ana B."))];
    projector.project(&again).await.expect("project");
    assert_eq!(
        listed(models).await,
        [("351910000001".to_string(), json!("Ana B."), false), ("351910000002".to_string(), json!("Rui"), false)]
    );
}
