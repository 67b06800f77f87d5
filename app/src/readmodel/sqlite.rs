//! The read models in an embedded SQLite database, with the two projections
//! that build them (messages, conversations). Each projection applies a batch
//! of events and moves its checkpoint in one transaction, so every event is
//! applied exactly once, even across a crash mid-batch.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use parley_domain::status::{DeliveryStatus, ReportedStatuses};
use parley_events::sqlite::WalCheckpointer;
use parley_events::{Projection, ProjectionError, RecordedEvent};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::Value;
use uuid::Uuid;

use super::db::{clear_checkpoint, set_checkpoint, ReadModelDb};
use super::{
    cursor, AssigneeFilter, ClosedWindow, ContactFilter, ContactView, ConversationFilter, ConversationView,
    MessageView, NumberActivity, NumberView, Page, QueuedMessage, ReadModels, TemplateView, WindowFilter,
};
use crate::error::AppError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    number_id TEXT NOT NULL, wa_id TEXT NOT NULL, direction TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, wamid TEXT, created_at INTEGER NOT NULL, content TEXT NOT NULL,
    error TEXT, tags TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER, delivered_at INTEGER, read_at INTEGER, played_at INTEGER, failed_at INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0, rendered TEXT, version INTEGER NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE IF NOT EXISTS message_media (
    tenant_id TEXT NOT NULL, message_id TEXT NOT NULL, media TEXT NOT NULL, PRIMARY KEY (tenant_id, message_id));
CREATE TABLE IF NOT EXISTS templates (
    tenant_id TEXT NOT NULL, name TEXT NOT NULL, language TEXT NOT NULL, category TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, components TEXT NOT NULL, whatsapp_id TEXT, waba_id TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name, language));
CREATE TABLE IF NOT EXISTS message_tags (
    tenant_id TEXT NOT NULL, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL, tag TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id, tag));
CREATE INDEX IF NOT EXISTS message_tags_by_tag ON message_tags(tenant_id, tag, conversation_id);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(tenant_id, conversation_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages(tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages(status, created_at, tenant_id, id);
CREATE TABLE IF NOT EXISTS conversations (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, number_id TEXT NOT NULL, wa_id TEXT NOT NULL,
    contact_name TEXT NOT NULL DEFAULT 'null', state TEXT NOT NULL, window_closes_at INTEGER,
    window_expired INTEGER NOT NULL DEFAULT 0, unread_count INTEGER NOT NULL DEFAULT 0,
    last_message TEXT, created_at INTEGER NOT NULL, activity_at INTEGER NOT NULL, assignee TEXT,
    version INTEGER NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX IF NOT EXISTS conversations_by_activity ON conversations(tenant_id, activity_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS numbers (
    phone_number_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, display_phone_number TEXT NOT NULL,
    waba_id TEXT NOT NULL, verify_token_sha256 TEXT NOT NULL, throughput_per_second INTEGER NOT NULL,
    registered_at INTEGER NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS numbers_by_tenant ON numbers(tenant_id, phone_number_id);
CREATE INDEX IF NOT EXISTS numbers_by_verify_token ON numbers(verify_token_sha256);
CREATE TABLE IF NOT EXISTS contacts (
    tenant_id TEXT NOT NULL, wa_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT 'null',
    opted_out INTEGER NOT NULL DEFAULT 0, opt_changed_at INTEGER, opt_source TEXT,
    tags TEXT NOT NULL DEFAULT '[]', attributes TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL,
    version INTEGER NOT NULL, PRIMARY KEY (tenant_id, wa_id));
CREATE INDEX IF NOT EXISTS conversations_closing ON conversations(window_expired, window_closes_at);
CREATE INDEX IF NOT EXISTS numbers_by_waba ON numbers(waba_id);
";

/// Columns added after the tables were first created: a database made by an
/// earlier version gains them on open (a rebuild fills them from the log).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("messages", "reactions", "TEXT"),
    ("messages", "accepted_at", "INTEGER"),
    ("messages", "sent_from", "TEXT"),
    ("conversations", "entry_point_closes_at", "INTEGER"),
    ("conversations", "referral", "TEXT"),
    ("numbers", "quality_rating", "TEXT NOT NULL DEFAULT 'UNKNOWN'"),
    ("numbers", "messaging_limit", "TEXT"),
    ("numbers", "account_status", "TEXT NOT NULL DEFAULT 'CONNECTED'"),
    ("numbers", "alternate_number_id", "TEXT"),
];

fn add_missing_columns(c: &Connection) -> Result<(), AppError> {
    for (table, column, declaration) in ADDED_COLUMNS {
        let present: bool = c.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            params![column],
            |r| r.get(0),
        )?;
        if !present {
            c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {declaration}"))?;
        }
    }
    Ok(())
}

/// The read-model database: one writer connection for the projections, a few
/// reader connections for queries (WAL lets them run side by side).
pub struct SqliteReadModels {
    db: ReadModelDb,
    /// Copies the WAL back outside the projections' commits.
    _checkpointer: WalCheckpointer,
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn from_micros(m: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(m).single().unwrap_or_default()
}

pub(super) fn parse_time(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| micros(t.with_timezone(&Utc)))
}

impl SqliteReadModels {
    pub fn open(path: &Path) -> Result<Arc<Self>, AppError> {
        let db = ReadModelDb::open(path, 4, "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=0;", |writer| {
            writer.execute_batch(SCHEMA)?;
            add_missing_columns(writer)
        })?;
        Ok(Arc::new(SqliteReadModels { _checkpointer: WalCheckpointer::start(path)?, db }))
    }

    /// The projections that build these read models.
    pub fn projections(self: &Arc<Self>) -> Vec<Arc<dyn Projection>> {
        vec![
            SqliteProjection::shared(self.clone(), Kind::Messages),
            SqliteProjection::shared(self.clone(), Kind::Conversations),
            SqliteProjection::shared(self.clone(), Kind::Numbers),
            SqliteProjection::shared(self.clone(), Kind::Contacts),
            SqliteProjection::shared(self.clone(), Kind::Templates),
        ]
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        self.db.read(f).await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        self.db.write(f).await
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Messages,
    Conversations,
    Numbers,
    Contacts,
    Templates,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Messages => "messages",
            Kind::Conversations => "conversations",
            Kind::Numbers => "numbers",
            Kind::Contacts => "contacts",
            Kind::Templates => "templates",
        }
    }

    fn table(self) -> &'static str {
        self.name()
    }

    /// Whether the event can change this read model. `apply` hands each
    /// `project_*` function only the events its kind is concerned with.
    fn concerns(self, e: &RecordedEvent) -> bool {
        match self {
            Kind::Messages => e.stream_id.contains("/message/"),
            Kind::Conversations => e.stream_id.contains("/conversation/"),
            Kind::Numbers => e.stream_id.starts_with("number/"),
            Kind::Contacts => e.stream_id.contains("/contact/"),
            Kind::Templates => e.stream_id.contains("/template/"),
        }
    }
}

/// How far a projection may run past its stored checkpoint through events
/// that do not concern it before it stores the position anyway. Such events
/// change nothing, so reading them again after a restart is harmless; not
/// writing a checkpoint for each batch of them saves a transaction.
const IDLE_CHECKPOINT_EVERY: u64 = 10_000;

struct SqliteProjection {
    db: Arc<SqliteReadModels>,
    kind: Kind,
    /// The last position applied, stored or not.
    applied: AtomicU64,
    /// The last position known to be stored.
    stored: AtomicU64,
}

impl SqliteProjection {
    fn shared(db: Arc<SqliteReadModels>, kind: Kind) -> Arc<dyn Projection> {
        Arc::new(SqliteProjection { db, kind, applied: AtomicU64::new(0), stored: AtomicU64::new(0) })
    }
}

fn projection_error(e: AppError) -> ProjectionError {
    ProjectionError::read_model(e)
}

#[async_trait]
impl Projection for SqliteProjection {
    fn name(&self) -> &str {
        self.kind.name()
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let stored = self.db.db.checkpoint(self.kind.name()).await.map_err(projection_error)?;
        self.stored.store(stored, Ordering::SeqCst);
        Ok(self.applied.load(Ordering::SeqCst).max(stored))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else {
            return Ok(());
        };
        let kind = self.kind;
        let idle = !events.iter().any(|e| kind.concerns(e));
        if idle && last.saturating_sub(self.stored.load(Ordering::SeqCst)) < IDLE_CHECKPOINT_EVERY {
            self.applied.fetch_max(last, Ordering::SeqCst);
            return Ok(());
        }
        let events: Vec<RecordedEvent> = events.iter().filter(|e| kind.concerns(e)).cloned().collect();
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                for e in &events {
                    match kind {
                        Kind::Messages => project_message(&tx, e)?,
                        Kind::Conversations => project_conversation(&tx, e)?,
                        Kind::Numbers => project_number(&tx, e)?,
                        Kind::Contacts => super::contacts::project_contact(&tx, e)?,
                        Kind::Templates => super::templates::project_template(&tx, e)?,
                    }
                }
                set_checkpoint(&tx, kind.name(), last)?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(projection_error)?;
        self.stored.store(last, Ordering::SeqCst);
        self.applied.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        self.applied.store(0, Ordering::SeqCst);
        self.stored.store(0, Ordering::SeqCst);
        let kind = self.kind;
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                tx.execute(&format!("DELETE FROM {}", kind.table()), [])?;
                if kind == Kind::Messages {
                    tx.execute("DELETE FROM message_tags", [])?;
                    tx.execute("DELETE FROM message_media", [])?;
                }
                clear_checkpoint(&tx, kind.name())?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(projection_error)
    }
}

fn stream_entity_id(stream_id: &str) -> Option<Uuid> {
    stream_id.rsplit('/').next().and_then(|s| s.parse().ok())
}

fn project_message(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let Some(id) = stream_entity_id(&e.stream_id) else { return Ok(()) };
    let (tenant, id, d, v) = (e.tenant_id.as_str(), id.to_string(), &e.data, e.version as i64);
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let json = |k: &str| d.get(k).cloned().unwrap_or(Value::Null).to_string();
    if let Some(media) = super::MediaView::after(&e.event_type, d) {
        // A file's first state never replaces a later one on redelivery.
        let verb = if media.state == "pending" { "INSERT OR IGNORE" } else { "INSERT OR REPLACE" };
        tx.prepare_cached(&format!("{verb} INTO message_media(tenant_id, message_id, media) VALUES (?1, ?2, ?3)"))?
            .execute(params![tenant, id, serde_json::to_string(&media)?])?;
    }
    match e.event_type.as_str() {
        "MessageReceived" | "MessageQueued" => {
            let (direction, status, at) = if e.event_type == "MessageReceived" {
                ("inbound", "delivered", parse_time(&d["sent_at"]))
            } else {
                ("outbound", "queued", parse_time(&d["queued_at"]))
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO messages(tenant_id, id, conversation_id, number_id, wa_id, direction, kind, status,
                 wamid, created_at, content, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                tenant,
                id,
                s("conversation_id"),
                s("number_id"),
                s("wa_id"),
                direction,
                s("kind"),
                status,
                d.get("wamid").and_then(Value::as_str),
                at.unwrap_or_else(|| micros(e.recorded_at)),
                json("content"),
                v
            ])?;
        }
        "MessageAccepted" => {
            let at = parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at));
            tx.prepare_cached(
                "UPDATE messages SET wamid = ?3, accepted_at = COALESCE(accepted_at, ?4),
                 sent_from = COALESCE(?5, sent_from), version = ?6 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![
                tenant,
                id,
                s("wamid"),
                at,
                d.get("from_number_id").and_then(Value::as_str),
                v
            ])?;
        }
        "MessageReactionSet" => {
            let reaction = serde_json::json!({
                "emoji": d.get("emoji").cloned().unwrap_or(Value::Null),
                "at": d.get("at").cloned().unwrap_or(Value::Null),
                "message_id": d.get("reaction_message_id").cloned().unwrap_or(Value::Null),
            });
            let side = if s("direction") == "outbound" { "$.outbound" } else { "$.inbound" };
            tx.prepare_cached(
                "UPDATE messages SET reactions = json_set(COALESCE(reactions, '{}'), ?3, json(?4)), version = ?5
                 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id, side, reaction.to_string(), v])?;
        }
        "MessageDispatchStarted" => {
            tx.prepare_cached("UPDATE messages SET attempts = ?3, version = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, d["attempt"].as_i64().unwrap_or(0), v])?;
        }
        t @ ("MessageSent" | "MessageDelivered" | "MessageRead" | "MessagePlayed" | "MessageFailed") => {
            let column = match t {
                "MessageSent" => "sent_at",
                "MessageDelivered" => "delivered_at",
                "MessageRead" => "read_at",
                "MessagePlayed" => "played_at",
                _ => "failed_at",
            };
            let at = parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at));
            tx.prepare_cached(&format!(
                "UPDATE messages SET {column} = COALESCE({column}, ?3), version = ?4 WHERE tenant_id = ?1 AND id = ?2"
            ))?
            .execute(params![tenant, id, at, v])?;
            if t == "MessageFailed" {
                tx.prepare_cached("UPDATE messages SET error = ?3 WHERE tenant_id = ?1 AND id = ?2")?
                    .execute(params![tenant, id, json("failure")])?;
            }
            refresh_status(tx, tenant, &id)?;
        }
        "MessageRendered" => {
            tx.prepare_cached("UPDATE messages SET rendered = ?3, version = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, json("text"), v])?;
        }
        "MessageDeleted" => {
            tx.prepare_cached(
                "UPDATE messages SET content = 'null', rendered = NULL, deleted = 1, version = ?3
                 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id, v])?;
        }
        "MessageTagged" => {
            let tags = d.get("tags").cloned().unwrap_or(Value::Array(Vec::new()));
            tx.prepare_cached("UPDATE messages SET tags = ?3, version = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, tags.to_string(), v])?;
            tx.prepare_cached("DELETE FROM message_tags WHERE tenant_id = ?1 AND message_id = ?2")?
                .execute(params![tenant, id])?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO message_tags(tenant_id, conversation_id, message_id, tag)
                 SELECT m.tenant_id, m.conversation_id, m.id, t.value FROM messages m, json_each(?3) t
                 WHERE m.tenant_id = ?1 AND m.id = ?2",
            )?
            .execute(params![tenant, id, tags.to_string()])?;
        }
        _ => {}
    }
    Ok(())
}

/// Recomputes a message's status from the statuses recorded, with the
/// domain's rule, so the read model can never disagree with the aggregate.
fn refresh_status(tx: &Transaction<'_>, tenant: &str, id: &str) -> Result<(), AppError> {
    let row = tx
        .prepare_cached(
            "SELECT direction, sent_at IS NOT NULL, delivered_at IS NOT NULL, read_at IS NOT NULL,
             played_at IS NOT NULL, failed_at IS NOT NULL FROM messages WHERE tenant_id = ?1 AND id = ?2",
        )?
        .query_row(params![tenant, id], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    let Some((direction, sent, delivered, read, played, failed)) = row else { return Ok(()) };
    let reported = ReportedStatuses { sent, delivered, read, played, failed };
    let status = match direction.as_str() {
        "inbound" if read => DeliveryStatus::Read,
        "inbound" => DeliveryStatus::Delivered,
        _ => reported.current(),
    };
    tx.prepare_cached("UPDATE messages SET status = ?3 WHERE tenant_id = ?1 AND id = ?2")?.execute(params![
        tenant,
        id,
        status.as_str()
    ])?;
    Ok(())
}

fn project_conversation(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let Some(id) = stream_entity_id(&e.stream_id) else { return Ok(()) };
    let (tenant, id, d, v) = (e.tenant_id.as_str(), id.to_string(), &e.data, e.version as i64);
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match e.event_type.as_str() {
        "ConversationOpened" => {
            let at = parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at));
            tx.prepare_cached(
                "INSERT OR IGNORE INTO conversations(tenant_id, id, number_id, wa_id, state, created_at, activity_at, version)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?5, ?6)",
            )?
            .execute(params![tenant, id, s("number_id"), s("wa_id"), at, v])?;
        }
        "InboundMessageRecorded" | "OutboundMessageRecorded" => {
            let preview = d.get("preview").cloned().unwrap_or(Value::Null);
            let at =
                parse_time(&preview["at"]).or_else(|| parse_time(&d["at"])).unwrap_or_else(|| micros(e.recorded_at));
            let inbound = e.event_type == "InboundMessageRecorded";
            // One statement per event: the newest message becomes the preview;
            // an inbound one also counts as unread, moves the window (never
            // back) and refreshes the contact's name when it carries one.
            let closes = if inbound { parse_time(&d["window_closes_at"]) } else { None };
            let name = d.get("contact_name").filter(|n| inbound && !n.is_null()).map(Value::to_string);
            tx.prepare_cached(
                "UPDATE conversations SET
                   last_message = CASE WHEN ?3 >= activity_at OR last_message IS NULL THEN ?4 ELSE last_message END,
                   activity_at = MAX(activity_at, ?3),
                   unread_count = unread_count + ?5,
                   window_expired = CASE WHEN ?6 IS NOT NULL AND ?6 > COALESCE(window_closes_at, 0) THEN 0
                                         ELSE window_expired END,
                   window_closes_at = CASE WHEN ?6 IS NULL THEN window_closes_at
                                           ELSE MAX(COALESCE(window_closes_at, 0), ?6) END,
                   contact_name = COALESCE(?7, contact_name),
                   version = ?8
                 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id, at, preview.to_string(), i64::from(inbound), closes, name, v])?;
        }
        "EntryPointWindowOpened" => {
            tx.prepare_cached(
                "UPDATE conversations SET
                   referral = CASE WHEN ?3 >= COALESCE(entry_point_closes_at, 0) THEN ?4 ELSE referral END,
                   entry_point_closes_at = MAX(COALESCE(entry_point_closes_at, 0), ?3), version = ?5
                 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![
                tenant,
                id,
                parse_time(&d["closes_at"]),
                d.get("referral").cloned().unwrap_or(Value::Null).to_string(),
                v
            ])?;
        }
        "ConversationWindowExpired" => {
            let closed = parse_time(&d["closed_at"]);
            tx.prepare_cached(
                "UPDATE conversations SET window_expired = 1, version = ?4
                 WHERE tenant_id = ?1 AND id = ?2 AND window_closes_at = ?3",
            )?
            .execute(params![tenant, id, closed, v])?;
        }
        "ConversationResolved" | "ConversationReopened" => {
            let state = if e.event_type == "ConversationResolved" { "resolved" } else { "open" };
            tx.prepare_cached("UPDATE conversations SET state = ?3, version = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, state, v])?;
        }
        "ConversationAssigned" => {
            tx.prepare_cached("UPDATE conversations SET assignee = ?3, version = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, id, d.get("assignee").and_then(Value::as_str), v])?;
        }
        "ConversationMarkedRead" => {
            tx.prepare_cached(
                "UPDATE conversations SET unread_count = 0, version = ?3 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id, v])?;
        }
        "ConversationMessageDeleted" => {
            tx.prepare_cached(
                "UPDATE conversations SET last_message = json_set(last_message, '$.text', json('null')), version = ?4
                 WHERE tenant_id = ?1 AND id = ?2 AND json_extract(last_message, '$.message_id') = ?3",
            )?
            .execute(params![tenant, id, s("message_id"), v])?;
        }
        _ => {}
    }
    Ok(())
}

fn project_number(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let d = &e.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(number) = e.stream_id.strip_prefix("number/") else { return Ok(()) };
    let v = e.version as i64;
    match e.event_type.as_str() {
        "NumberRegistered" => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO numbers(phone_number_id, tenant_id, display_phone_number, waba_id,
                 verify_token_sha256, throughput_per_second, registered_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                s("phone_number_id"),
                e.tenant_id,
                s("display_phone_number"),
                s("waba_id"),
                s("verify_token_sha256"),
                d["throughput_per_second"].as_i64().unwrap_or(80),
                parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at)),
                v
            ])?;
        }
        "NumberQualityUpdated" => {
            tx.prepare_cached(
                "UPDATE numbers SET quality_rating = ?2, messaging_limit = COALESCE(?3, messaging_limit), version = ?4
                 WHERE phone_number_id = ?1",
            )?
            .execute(params![
                number,
                s("quality_rating"),
                d.get("messaging_limit").and_then(Value::as_str),
                v
            ])?;
        }
        "NumberAccountStatusChanged" => {
            tx.prepare_cached("UPDATE numbers SET account_status = ?2, version = ?3 WHERE phone_number_id = ?1")?
                .execute(params![number, s("status"), v])?;
        }
        "NumberSettingsChanged" => {
            tx.prepare_cached(
                "UPDATE numbers SET throughput_per_second = ?2, alternate_number_id = ?3, version = ?4
                 WHERE phone_number_id = ?1",
            )?
            .execute(params![
                number,
                d["throughput_per_second"].as_i64().unwrap_or(80),
                d.get("alternate_number_id").and_then(Value::as_str),
                v
            ])?;
        }
        _ => {}
    }
    Ok(())
}

const NUMBER_COLUMNS: &str = "tenant_id, phone_number_id, display_phone_number, waba_id, throughput_per_second,
    registered_at, quality_rating, messaging_limit, account_status, alternate_number_id";

fn number_row(r: &Row<'_>) -> rusqlite::Result<NumberView> {
    Ok(NumberView {
        tenant_id: r.get(0)?,
        phone_number_id: r.get(1)?,
        display_phone_number: r.get(2)?,
        waba_id: r.get(3)?,
        throughput_per_second: r.get(4)?,
        registered_at: from_micros(r.get(5)?),
        quality_rating: r.get(6)?,
        messaging_limit: r.get(7)?,
        account_status: r.get(8)?,
        alternate_number_id: r.get(9)?,
    })
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, number_id, wa_id, direction, kind, status, wamid, created_at, content,
    error, tags, sent_at, delivered_at, read_at, failed_at, attempts, deleted, rendered, reactions, accepted_at,
    sent_from,
    (SELECT media FROM message_media mm WHERE mm.tenant_id = messages.tenant_id AND mm.message_id = messages.id)";

fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageView> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> {
        let s: String = r.get(i)?;
        s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
    };
    let json = |i: usize| -> rusqlite::Result<Value> {
        let s: Option<String> = r.get(i)?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null))
    };
    let time =
        |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(r.get::<_, Option<i64>>(i)?.map(from_micros)) };
    Ok(MessageView {
        id: uuid(0)?,
        conversation_id: uuid(1)?,
        number_id: r.get(2)?,
        wa_id: r.get(3)?,
        direction: r.get(4)?,
        kind: r.get(5)?,
        status: r.get(6)?,
        wamid: r.get(7)?,
        created_at: from_micros(r.get(8)?),
        content: json(9)?,
        error: Some(json(10)?).filter(|v| !v.is_null()),
        tags: serde_json::from_value(json(11)?).unwrap_or_default(),
        sent_at: time(12)?,
        delivered_at: time(13)?,
        read_at: time(14)?,
        failed_at: time(15)?,
        attempts: r.get(16)?,
        deleted: r.get::<_, i64>(17)? != 0,
        rendered: json(18)?,
        reactions: json(19)?,
        accepted_at: time(20)?,
        sent_from: r.get(21)?,
        media: serde_json::from_value(json(22)?).ok(),
    })
}

const CONVERSATION_COLUMNS: &str =
    "id, number_id, wa_id, contact_name, state, window_closes_at, unread_count, last_message, created_at, activity_at,
    assignee, entry_point_closes_at, referral";

fn conversation_row(r: &Row<'_>) -> rusqlite::Result<ConversationView> {
    let id: String = r.get(0)?;
    let json = |i: usize| -> rusqlite::Result<Value> {
        let s: Option<String> = r.get(i)?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null))
    };
    Ok(ConversationView {
        id: id
            .parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?,
        number_id: r.get(1)?,
        wa_id: r.get(2)?,
        contact_name: json(3)?,
        state: r.get(4)?,
        window_closes_at: r.get::<_, Option<i64>>(5)?.map(from_micros),
        unread_count: r.get(6)?,
        last_message: Some(json(7)?).filter(|v| !v.is_null()),
        created_at: from_micros(r.get(8)?),
        activity_at: from_micros(r.get(9)?),
        assignee: r.get(10)?,
        entry_point_window_closes_at: r.get::<_, Option<i64>>(11)?.map(from_micros),
        referral: Some(json(12)?).filter(|v| !v.is_null()),
    })
}

#[async_trait]
impl ReadModels for SqliteReadModels {
    async fn message(&self, tenant_id: &str, id: Uuid) -> Result<Option<MessageView>, AppError> {
        let tenant = tenant_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = ?1 AND id = ?2");
            Ok(c.prepare_cached(&sql)?.query_row(params![tenant, id.to_string()], message_row).optional()?)
        })
        .await
    }

    async fn messages(
        &self,
        tenant_id: &str,
        conversation_id: Option<Uuid>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<MessageView>, AppError> {
        let tenant = tenant_id.to_owned();
        let after = cursor.map(cursor::decode).transpose()?;
        let limit = limit.clamp(1, 200);
        self.read(move |c| {
            let (at, id) = after.map(|(m, id)| (m, id.to_string())).unwrap_or((i64::MAX, String::new()));
            let conv = conversation_id.map(|c| c.to_string());
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = ?1
                 AND (?2 IS NULL OR conversation_id = ?2)
                 AND (created_at < ?3 OR (created_at = ?3 AND (?4 = '' OR id < ?4)))
                 ORDER BY created_at DESC, id DESC LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![tenant, conv, at, id, limit as i64 + 1], message_row)?;
            let mut items = rows.collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|m| cursor::encode(micros(m.created_at), m.id))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn conversation(&self, tenant_id: &str, id: Uuid) -> Result<Option<ConversationView>, AppError> {
        let tenant = tenant_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = ?1 AND id = ?2");
            Ok(c.prepare_cached(&sql)?.query_row(params![tenant, id.to_string()], conversation_row).optional()?)
        })
        .await
    }

    async fn conversations(
        &self,
        tenant_id: &str,
        filter: &ConversationFilter,
        now: DateTime<Utc>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ConversationView>, AppError> {
        let tenant = tenant_id.to_owned();
        let after = cursor.map(cursor::decode).transpose()?;
        let limit = limit.clamp(1, 200);
        let filter = filter.clone();
        self.read(move |c| {
            let (at, id) = after.map(|(m, id)| (m, id.to_string())).unwrap_or((i64::MAX, String::new()));
            let window = match filter.window {
                None => 0,
                Some(WindowFilter::Open) => 1,
                Some(WindowFilter::Closed) => 2,
            };
            let (assignee_mode, assignee) = match &filter.assignee {
                None => (0, None),
                Some(AssigneeFilter::Unassigned) => (1, None),
                Some(AssigneeFilter::User(u)) => (2, Some(u.clone())),
            };
            let sql = format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = ?1
                 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR number_id = ?3)
                 AND (?4 = 0 OR (?4 = 1 AND COALESCE(window_closes_at, 0) > ?5)
                             OR (?4 = 2 AND COALESCE(window_closes_at, 0) <= ?5))
                 AND (activity_at < ?6 OR (activity_at = ?6 AND (?7 = '' OR id < ?7)))
                 AND (?9 IS NULL OR EXISTS (SELECT 1 FROM message_tags t WHERE t.tenant_id = conversations.tenant_id
                      AND t.tag = ?9 AND t.conversation_id = conversations.id))
                 AND (?10 = 0 OR (?10 = 1 AND assignee IS NULL) OR (?10 = 2 AND assignee = ?11))
                 ORDER BY activity_at DESC, id DESC LIMIT ?8"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    tenant,
                    filter.state,
                    filter.number_id,
                    window,
                    micros(now),
                    at,
                    id,
                    limit as i64 + 1,
                    filter.tag,
                    assignee_mode,
                    assignee
                ],
                conversation_row,
            )?;
            let mut items = rows.collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|c| cursor::encode(micros(c.activity_at), c.id))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn numbers(&self, tenant_id: &str) -> Result<Vec<NumberView>, AppError> {
        let tenant = tenant_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {NUMBER_COLUMNS} FROM numbers WHERE tenant_id = ?1 ORDER BY phone_number_id");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![tenant], number_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn templates(&self, tenant_id: &str, name: Option<&str>) -> Result<Vec<TemplateView>, AppError> {
        let (tenant, name) = (tenant_id.to_owned(), name.map(str::to_owned));
        self.read(move |c| super::templates::query_templates(c, &tenant, name.as_deref())).await
    }

    async fn numbers_in_waba(&self, waba_id: &str) -> Result<Vec<NumberView>, AppError> {
        let waba = waba_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {NUMBER_COLUMNS} FROM numbers WHERE waba_id = ?1 ORDER BY phone_number_id");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![waba], number_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn contacts(
        &self,
        tenant_id: &str,
        filter: &ContactFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ContactView>, AppError> {
        let (tenant, filter, cursor) = (tenant_id.to_owned(), filter.clone(), cursor.map(str::to_owned));
        self.read(move |c| super::contacts::query_contacts(c, &tenant, &filter, cursor.as_deref(), limit)).await
    }

    async fn numbers_with_verify_token(&self, verify_token_sha256: &str) -> Result<Vec<NumberView>, AppError> {
        let hash = verify_token_sha256.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {NUMBER_COLUMNS} FROM numbers WHERE verify_token_sha256 = ?1");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![hash], number_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn closed_windows(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ClosedWindow>, AppError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant_id, id, wa_id FROM conversations
                 WHERE window_expired = 0 AND window_closes_at IS NOT NULL AND window_closes_at <= ?1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![micros(now), limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (tenant_id, id, wa_id) = row?;
                if let Ok(conversation_id) = id.parse() {
                    out.push(ClosedWindow { tenant_id, conversation_id, wa_id });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn queued_messages(&self, limit: usize) -> Result<Vec<QueuedMessage>, AppError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT tenant_id, id FROM messages WHERE status = 'queued' AND direction = 'outbound'
                 ORDER BY created_at, tenant_id, id LIMIT ?1",
            )?;
            let rows = statement.query_map(params![limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut queued = Vec::new();
            for row in rows {
                let (tenant_id, id) = row?;
                let message_id = id.parse().map_err(|_| AppError::internal(format!("message id {id:?} is no uuid")))?;
                queued.push(QueuedMessage { tenant_id, message_id });
            }
            Ok(queued)
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<String>, AppError> {
        self.read(|c| {
            let mut statement = c.prepare_cached("SELECT DISTINCT tenant_id FROM numbers ORDER BY tenant_id")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn remove_messages(&self, tenant_id: &str, ids: &[Uuid]) -> Result<(), AppError> {
        let (tenant, ids) = (tenant_id.to_owned(), ids.to_vec());
        self.write(move |c| {
            let tx = c.transaction()?;
            for id in &ids {
                let id = id.to_string();
                tx.prepare_cached("DELETE FROM message_tags WHERE tenant_id = ?1 AND message_id = ?2")?
                    .execute(params![tenant, id])?;
                tx.prepare_cached("DELETE FROM messages WHERE tenant_id = ?1 AND id = ?2")?
                    .execute(params![tenant, id])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn restore_messages(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        let mut events: Vec<RecordedEvent> = events.iter().filter(|e| Kind::Messages.concerns(e)).cloned().collect();
        events.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
        self.write(move |c| {
            let tx = c.transaction()?;
            let mut present: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
            for e in &events {
                let Some(id) = stream_entity_id(&e.stream_id) else { continue };
                let exists = match present.get(&e.stream_id) {
                    Some(&exists) => exists,
                    None => {
                        let exists = tx
                            .prepare_cached("SELECT 1 FROM messages WHERE tenant_id = ?1 AND id = ?2")?
                            .exists(params![e.tenant_id, id.to_string()])?;
                        present.insert(e.stream_id.clone(), exists);
                        exists
                    }
                };
                if !exists {
                    project_message(&tx, e)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn number_activity(
        &self,
        tenant_id: &str,
        phone_number_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<NumberActivity, AppError> {
        let (tenant, number) = (tenant_id.to_owned(), phone_number_id.to_owned());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT accepted_at, COALESCE(delivered_at, read_at), failed_at, json_extract(error, '$.kind')
                 FROM messages WHERE tenant_id = ?1 AND direction = 'outbound'
                 AND COALESCE(sent_from, number_id) = ?2 AND created_at >= ?3 AND created_at < ?4",
            )?;
            let rows = stmt.query_map(params![tenant, number, micros(from), micros(to)], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            let mut activity = NumberActivity::default();
            for row in rows {
                let (accepted, delivered, failed, kind) = row?;
                activity.messages += 1;
                activity.sent += u64::from(accepted.is_some());
                activity.delivered += u64::from(delivered.is_some());
                if failed.is_some() {
                    *activity.failures.entry(kind.unwrap_or_else(|| "unknown".into())).or_default() += 1;
                }
                if let (Some(accepted), Some(delivered)) = (accepted, delivered) {
                    // Microseconds to milliseconds; a delivery stamped before
                    // the acceptance (clock skew) counts as instant.
                    activity.delivery_latencies_ms.push((delivered - accepted).max(0) / 1000);
                }
            }
            activity.delivery_latencies_ms.sort_unstable();
            Ok(activity)
        })
        .await
    }

    async fn count_messages(&self, tenant_id: &str) -> Result<u64, AppError> {
        let tenant = tenant_id.to_owned();
        self.read(move |c| {
            let n: i64 =
                c.query_row("SELECT COUNT(*) FROM messages WHERE tenant_id = ?1", params![tenant], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use parley_events::{Projection, RecordedEvent};

    use super::SqliteReadModels;
    use crate::error::AppError;
    use crate::readmodel::conformance::{run_read_models_suite, Projector};
    use crate::readmodel::ReadModels;

    /// Applies events as the projection runner does: each projection takes
    /// what lies past its checkpoint.
    struct Runner(Vec<Arc<dyn Projection>>);

    #[async_trait]
    impl Projector for Runner {
        async fn project(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
            for projection in &self.0 {
                let checkpoint = projection.checkpoint().await.map_err(AppError::internal)?;
                let fresh: Vec<RecordedEvent> =
                    events.iter().filter(|e| e.global_position > checkpoint).cloned().collect();
                projection.apply(&fresh).await.map_err(AppError::internal)?;
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_read_models_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = std::sync::atomic::AtomicU32::new(0);
        run_read_models_suite(|| {
            let path = dir.path().join(format!("rm-{}.db", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
            async move {
                let db = SqliteReadModels::open(&path).expect("open read models");
                let runner = Arc::new(Runner(db.projections()));
                (db as Arc<dyn ReadModels>, runner as Arc<dyn Projector>)
            }
        })
        .await;
    }
}
