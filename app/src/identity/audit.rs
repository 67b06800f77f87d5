//! The audit log: a read model of the account and membership events
//! (sign-ups, verifications, password changes, revoked sessions, invitations,
//! role changes, removals), per tenant, newest first. Owners and admins read
//! it at `GET /v1/audit`.
//!
//! It is a projection like any other: rebuildable from the event log, and
//! its rows and checkpoint move in one transaction.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_events::{Projection, ProjectionError, RecordedEvent};
use rusqlite::{params, Connection};

use crate::blocking::BlockingConnection;
use crate::error::AppError;

/// The event types the audit log keeps.
pub const AUDITED: &[&str] = &[
    "TenantCreated",
    "MemberInvited",
    "InvitationRevoked",
    "MemberJoined",
    "RoleChanged",
    "MemberRemoved",
    "RetentionChanged",
    "UserSignedUp",
    "EmailVerified",
    "PasswordChanged",
    "SessionRevoked",
    "ContactErased",
];

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the event log; pass it as `before` for the next page.
    pub id: u64,
    pub at: DateTime<Utc>,
    /// The event type, e.g. `RoleChanged`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who caused it, e.g. `user:<id>` or `system:identity`.
    pub actor: String,
    /// The stream it concerns: `tenant-<id>` or `user-<id>`.
    pub subject: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Reads the audit log.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Up to `limit` entries of `tenant_id` older than `before` (all when `None`), newest first.
    async fn list(&self, tenant_id: &str, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, AppError>;
}

/// The audit log in SQLite, fed as a projection.
pub struct SqliteAuditLog {
    db: BlockingConnection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    position INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant_id, position);
CREATE TABLE IF NOT EXISTS audit_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 0), position INTEGER NOT NULL);
";

impl SqliteAuditLog {
    pub fn open(path: &Path) -> Result<Self, AppError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        Self::with(conn)
    }

    pub fn in_memory() -> Result<Self, AppError> {
        Self::with(Connection::open_in_memory()?)
    }

    fn with(conn: Connection) -> Result<Self, AppError> {
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteAuditLog { db: BlockingConnection::new(conn) })
    }
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    async fn list(&self, tenant_id: &str, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, AppError> {
        let tenant = tenant_id.to_owned();
        let before = i64::try_from(before.unwrap_or(i64::MAX as u64)).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .run(move |c| {
                let mut stmt = c.prepare(
                    "SELECT position, at, type, actor, subject, data FROM audit
                     WHERE tenant_id = ?1 AND position < ?2 ORDER BY position DESC LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![tenant, before, limit], |r| {
                    let at: String = r.get(1)?;
                    let data: String = r.get(5)?;
                    Ok((r.get::<_, i64>(0)?, at, r.get(2)?, r.get(3)?, r.get(4)?, data))
                })?;
                rows.collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(AppError::internal)?
            .into_iter()
            .map(|(position, at, event_type, actor, subject, data)| {
                Ok(AuditEntry {
                    id: u64::try_from(position).map_err(AppError::internal)?,
                    at: DateTime::parse_from_rfc3339(&at).map_err(AppError::internal)?.with_timezone(&Utc),
                    event_type,
                    actor,
                    subject,
                    data: serde_json::from_str(&data)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Projection for SqliteAuditLog {
    fn name(&self) -> &str {
        "audit"
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let position = self
            .db
            .run(|c| c.query_row("SELECT COALESCE(MAX(position), 0) FROM audit_checkpoint", [], |r| r.get::<_, i64>(0)))
            .await
            .map_err(ProjectionError::read_model)?;
        u64::try_from(position).map_err(ProjectionError::read_model)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else { return Ok(()) };
        let rows: Vec<(i64, String, String, String, String, String, String)> = events
            .iter()
            .filter(|e| AUDITED.contains(&e.event_type.as_str()))
            .map(|e| {
                Ok((
                    i64::try_from(e.global_position).map_err(ProjectionError::read_model)?,
                    e.tenant_id.clone(),
                    e.occurred_at.to_rfc3339(),
                    e.event_type.clone(),
                    e.actor.clone(),
                    e.stream_id.clone(),
                    e.data.to_string(),
                ))
            })
            .collect::<Result<_, ProjectionError>>()?;
        let last = i64::try_from(last).map_err(ProjectionError::read_model)?;
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                for r in rows {
                    tx.execute(
                        "INSERT OR IGNORE INTO audit (position, tenant_id, at, type, actor, subject, data)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![r.0, r.1, r.2, r.3, r.4, r.5, r.6],
                    )?;
                }
                tx.execute(
                    "INSERT INTO audit_checkpoint (id, position) VALUES (0, ?1)
                     ON CONFLICT (id) DO UPDATE SET position = MAX(position, ?1)",
                    [last],
                )?;
                tx.commit()
            })
            .await
            .map_err(ProjectionError::read_model)
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        self.db
            .run(|c| c.execute_batch("DELETE FROM audit; DELETE FROM audit_checkpoint;"))
            .await
            .map_err(ProjectionError::read_model)
    }
}

/// The conformance suite of the [`AuditLog`] port, for every adapter that is
/// fed as a projection.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use std::future::Future;
    use std::sync::Arc;

    use chrono::Utc;
    use parley_events::{Projection, RecordedEvent};

    use super::AuditLog;

    fn event(position: u64, tenant: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream_id: format!("tenant-{tenant}"),
            version: position,
            tenant_id: tenant.into(),
            event_type: event_type.into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: None,
            actor: "user:u1".into(),
            data: serde_json::json!({"n": position}),
            global_position: position,
        }
    }

    /// `make` returns a fresh, empty audit log as both the port and the projection that feeds it.
    pub async fn run_audit_suite<T, F, Fut>(make: F)
    where
        T: AuditLog + Projection,
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<T>>,
    {
        let log = make().await;
        assert_eq!(log.checkpoint().await.unwrap(), 0);
        let batch = vec![
            event(1, "a", "TenantCreated"),
            event(2, "a", "MessageQueued"),
            event(3, "b", "RoleChanged"),
            event(4, "a", "SessionRevoked"),
        ];
        log.apply(&batch).await.unwrap();
        log.apply(&batch[3..]).await.unwrap(); // redelivery changes nothing
        assert_eq!(log.checkpoint().await.unwrap(), 4);
        let a = log.list("a", None, 10).await.unwrap();
        assert_eq!(a.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 1], "account events only, newest first");
        assert_eq!((a[0].event_type.as_str(), a[0].subject.as_str()), ("SessionRevoked", "tenant-a"));
        assert_eq!(a[0].data, serde_json::json!({"n": 4}));
        assert_eq!(log.list("a", Some(4), 10).await.unwrap().len(), 1, "pages continue below `before`");
        assert_eq!(log.list("a", None, 1).await.unwrap().len(), 1, "pages are bounded");
        assert_eq!(log.list("b", None, 10).await.unwrap().len(), 1, "tenants see only their own");
        assert!(log.list("c", None, 10).await.unwrap().is_empty());
        log.reset().await.unwrap();
        assert_eq!(log.checkpoint().await.unwrap(), 0);
        assert!(log.list("a", None, 10).await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_audit_suite() {
        conformance::run_audit_suite(|| async { Arc::new(SqliteAuditLog::in_memory().unwrap()) }).await;
    }
}
