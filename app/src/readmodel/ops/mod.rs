//! The job, analytics and billing read models in an embedded SQLite
//! database, with the projections that build them. As with the message
//! read models, each projection applies a batch and moves its checkpoint in
//! one transaction, so every event is applied exactly once.

mod analytics;
mod billing;
mod jobs;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use parley_events::{Projection, ProjectionError, RecordedEvent};
use rusqlite::Connection;
use serde_json::Value;
use uuid::Uuid;

use super::db::{clear_checkpoint, set_checkpoint, ReadModelDb};
use crate::error::AppError;
use crate::sealing::EventSealer;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
    artifact TEXT, error TEXT, requested_by TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs(tenant_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS analytics_messages (
    tenant_id TEXT NOT NULL, message_id TEXT NOT NULL, number_id TEXT NOT NULL, day TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, read INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, message_id));
CREATE TABLE IF NOT EXISTS analytics_daily (
    tenant_id TEXT NOT NULL, day TEXT NOT NULL, number_id TEXT NOT NULL,
    inbound INTEGER NOT NULL DEFAULT 0, outbound INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, number_id));
CREATE TABLE IF NOT EXISTS analytics_counters (
    tenant_id TEXT NOT NULL, day TEXT NOT NULL, number_id TEXT NOT NULL, dimension TEXT NOT NULL, name TEXT NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (tenant_id, day, number_id, dimension, name));
CREATE TABLE IF NOT EXISTS analytics_awaiting (
    tenant_id TEXT NOT NULL, conversation_id TEXT NOT NULL, since INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id));
CREATE TABLE IF NOT EXISTS analytics_responses (
    tenant_id TEXT NOT NULL, day TEXT NOT NULL, number_id TEXT NOT NULL, message_id TEXT NOT NULL,
    seconds INTEGER NOT NULL, PRIMARY KEY (tenant_id, message_id));
CREATE INDEX IF NOT EXISTS analytics_responses_by_day ON analytics_responses(tenant_id, day);
CREATE TABLE IF NOT EXISTS billing_metered (tenant_id TEXT NOT NULL, message_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id));
CREATE TABLE IF NOT EXISTS billing_usage (
    tenant_id TEXT NOT NULL, month TEXT NOT NULL, category TEXT NOT NULL,
    billable INTEGER NOT NULL DEFAULT 0, free INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month, category));
CREATE TABLE IF NOT EXISTS billing_tenants (tenant_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS invoices (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, month TEXT NOT NULL, number TEXT NOT NULL, plan TEXT NOT NULL,
    status TEXT NOT NULL, currency TEXT NOT NULL, lines TEXT NOT NULL, subtotal INTEGER NOT NULL,
    vat_rate_bp INTEGER NOT NULL, vat INTEGER NOT NULL, total INTEGER NOT NULL, tax_id TEXT, pdf TEXT,
    external_id TEXT, issued_at INTEGER NOT NULL, due_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX IF NOT EXISTS invoices_by_month ON invoices(tenant_id, month);
CREATE INDEX IF NOT EXISTS invoices_by_external_id ON invoices(external_id);
";

/// The database behind the job, analytics and billing read models.
pub struct SqliteOpsReadModels {
    db: ReadModelDb,
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(m: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(m).single().unwrap_or_default()
}

pub(crate) fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

fn stream_entity_id(stream_id: &str) -> Option<Uuid> {
    stream_id.rsplit('/').next().and_then(|s| s.parse().ok())
}

impl SqliteOpsReadModels {
    pub fn open(path: &Path) -> Result<Arc<Self>, AppError> {
        let db = ReadModelDb::open(path, 1, "", |writer| Ok(writer.execute_batch(SCHEMA)?))?;
        Ok(Arc::new(SqliteOpsReadModels { db }))
    }

    /// The projections that build these read models. The analytics one
    /// opens sealed template sends with `sealer` to count them by name.
    pub fn projections(self: &Arc<Self>, sealer: Arc<EventSealer>) -> Vec<Arc<dyn Projection>> {
        [Kind::Jobs, Kind::Analytics, Kind::Usage, Kind::Invoices]
            .into_iter()
            .map(|kind| {
                Arc::new(OpsProjection { db: self.clone(), kind, sealer: sealer.clone() }) as Arc<dyn Projection>
            })
            .collect()
    }

    pub(crate) async fn read<T: Send + 'static>(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jobs,
    Analytics,
    Usage,
    Invoices,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Jobs => "jobs",
            Kind::Analytics => "analytics",
            Kind::Usage => "billing-usage",
            Kind::Invoices => "invoices",
        }
    }

    fn tables(self) -> &'static [&'static str] {
        match self {
            Kind::Jobs => &["jobs"],
            Kind::Analytics => &[
                "analytics_messages",
                "analytics_daily",
                "analytics_counters",
                "analytics_awaiting",
                "analytics_responses",
            ],
            Kind::Usage => &["billing_metered", "billing_usage", "billing_tenants"],
            Kind::Invoices => &["invoices"],
        }
    }

    fn concerns(self, e: &RecordedEvent) -> bool {
        match self {
            Kind::Jobs => e.stream_id.contains("/job/"),
            Kind::Analytics => e.stream_id.contains("/message/"),
            Kind::Usage => {
                e.stream_id.ends_with("/billing")
                    || (matches!(e.event_type.as_str(), "MessageSent" | "MessageDelivered")
                        && !e.data["pricing"].is_null())
            }
            Kind::Invoices => e.stream_id.contains("/invoice/"),
        }
    }
}

struct OpsProjection {
    db: Arc<SqliteOpsReadModels>,
    kind: Kind,
    sealer: Arc<EventSealer>,
}

#[async_trait]
impl Projection for OpsProjection {
    fn name(&self) -> &str {
        self.kind.name()
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.db.db.checkpoint(self.kind.name()).await.map_err(ProjectionError::read_model)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else { return Ok(()) };
        let kind = self.kind;
        let events: Vec<RecordedEvent> = events.iter().filter(|e| kind.concerns(e)).cloned().collect();
        let templates = if kind == Kind::Analytics {
            crate::readmodel::analytics::template_names(&self.sealer, &events)
                .await
                .map_err(ProjectionError::read_model)?
        } else {
            HashMap::new()
        };
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                for e in &events {
                    match kind {
                        Kind::Jobs => jobs::project(&tx, e)?,
                        Kind::Analytics => analytics::project(&tx, e, &templates)?,
                        Kind::Usage => billing::project_usage(&tx, e)?,
                        Kind::Invoices => billing::project_invoice(&tx, e)?,
                    }
                }
                set_checkpoint(&tx, kind.name(), last)?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(ProjectionError::read_model)
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        let kind = self.kind;
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                for table in kind.tables() {
                    tx.execute(&format!("DELETE FROM {table}"), [])?;
                }
                clear_checkpoint(&tx, kind.name())?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(ProjectionError::read_model)
    }
}

impl SqliteOpsReadModels {
    /// Every row of every table, in a stable order: what rebuild checks compare.
    pub async fn dump(&self) -> Result<Vec<String>, AppError> {
        self.read(|c| {
            let mut out = Vec::new();
            for kind in [Kind::Jobs, Kind::Analytics, Kind::Usage, Kind::Invoices] {
                for table in kind.tables() {
                    let columns = c.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?.column_count();
                    let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
                    let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY {}", order.join(", ")))?;
                    let rows = stmt.query_map([], |r| {
                        let mut cells = Vec::with_capacity(columns);
                        for i in 0..columns {
                            let v: rusqlite::types::Value = r.get(i)?;
                            cells.push(format!("{v:?}"));
                        }
                        Ok(format!("{table}: {}", cells.join(" | ")))
                    })?;
                    for row in rows {
                        out.push(row?);
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
