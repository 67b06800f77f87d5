//! Idempotency records for commands (SPEC 4.3): the same `Idempotency-Key`
//! with the same request returns the first response and does nothing new; the
//! same key with another request is refused.
//!
//! A record is claimed `in_progress` before the command runs and `completed`
//! with the response after. An in-progress claim expires, so a crash while
//! the command ran does not block the key for good; completed records expire
//! after a day.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::blocking::BlockingConnection;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: run the command, then `complete` (or `release`).
    New,
    /// Already done: answer with this.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    async fn claim(&self, tenant_id: &str, key: &str, fingerprint: &str, now_ms: i64) -> Result<Claim, AppError>;
    async fn complete(
        &self,
        tenant_id: &str,
        key: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<(), AppError>;
    /// Forgets a claim whose command failed in a way worth retrying.
    async fn release(&self, tenant_id: &str, key: &str) -> Result<(), AppError>;
}

/// How long a running command holds its key.
pub const IN_PROGRESS_EXPIRY: Duration = Duration::from_secs(60);
/// How long a completed response is replayed.
pub const COMPLETED_EXPIRY: Duration = Duration::from_secs(24 * 3600);

pub struct SqliteIdempotency {
    conn: BlockingConnection,
}

impl SqliteIdempotency {
    pub fn open(path: &Path) -> Result<Self, AppError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS idempotency (
                 tenant_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                 state TEXT NOT NULL, response_status INTEGER, response_body TEXT,
                 expires_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, key));",
        )?;
        Ok(SqliteIdempotency { conn: BlockingConnection::new(conn) })
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        self.conn.run(f).await.map_err(AppError::internal)
    }
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn claim(&self, tenant_id: &str, key: &str, fingerprint: &str, now_ms: i64) -> Result<Claim, AppError> {
        let (tenant_id, key, fingerprint) = (tenant_id.to_owned(), key.to_owned(), fingerprint.to_owned());
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<(String, String, Option<u16>, Option<String>, i64)> = tx
                .query_row(
                    "SELECT fingerprint, state, response_status, response_body, expires_at FROM idempotency
                     WHERE tenant_id = ?1 AND key = ?2",
                    params![tenant_id, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let claim = match existing {
                Some((_, _, _, _, expires)) if expires <= now_ms => None,
                Some((fp, _, _, _, _)) if fp != fingerprint => Some(Claim::Mismatch),
                Some((_, state, Some(status), Some(body), _)) if state == "completed" => {
                    Some(Claim::Replay(StoredResponse { status, body }))
                }
                Some(_) => Some(Claim::InProgress),
                None => None,
            };
            let claim = match claim {
                Some(c) => c,
                None => {
                    tx.execute(
                        "INSERT OR REPLACE INTO idempotency(tenant_id, key, fingerprint, state, expires_at)
                         VALUES (?1, ?2, ?3, 'in_progress', ?4)",
                        params![tenant_id, key, fingerprint, now_ms + IN_PROGRESS_EXPIRY.as_millis() as i64],
                    )?;
                    Claim::New
                }
            };
            tx.commit()?;
            Ok(claim)
        })
        .await
    }

    async fn complete(
        &self,
        tenant_id: &str,
        key: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let (tenant_id, key, response) = (tenant_id.to_owned(), key.to_owned(), response.clone());
        self.with_conn(move |c| {
            c.execute(
                "UPDATE idempotency SET state = 'completed', response_status = ?3, response_body = ?4, expires_at = ?5
                 WHERE tenant_id = ?1 AND key = ?2",
                params![tenant_id, key, response.status, response.body, now_ms + COMPLETED_EXPIRY.as_millis() as i64],
            )
        })
        .await?;
        Ok(())
    }

    async fn release(&self, tenant_id: &str, key: &str) -> Result<(), AppError> {
        let (tenant_id, key) = (tenant_id.to_owned(), key.to_owned());
        self.with_conn(move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE tenant_id = ?1 AND key = ?2 AND state = 'in_progress'",
                params![tenant_id, key],
            )
        })
        .await?;
        Ok(())
    }
}

/// The one conformance suite every `IdempotencyStore` adapter passes; `make`
/// gives an empty store.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use std::future::Future;
    use std::sync::Arc;

    pub async fn run_idempotency_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn IdempotencyStore>>,
    {
        claim_replay_mismatch_and_expiry(make().await).await;
        stale_claims_can_be_taken_over_and_released(make().await).await;
        concurrent_claims_admit_exactly_one(make().await).await;
    }

    async fn claim_replay_mismatch_and_expiry(store: Arc<dyn IdempotencyStore>) {
        assert_eq!(store.claim("t1", "k", "fp", 0).await.unwrap(), Claim::New);
        assert_eq!(store.claim("t1", "k", "fp", 1).await.unwrap(), Claim::InProgress);
        assert_eq!(store.claim("t2", "k", "fp", 1).await.unwrap(), Claim::New, "keys are per tenant");
        let resp = StoredResponse { status: 202, body: "{}".into() };
        store.complete("t1", "k", &resp, 2).await.unwrap();
        assert_eq!(store.claim("t1", "k", "fp", 3).await.unwrap(), Claim::Replay(resp));
        assert_eq!(store.claim("t1", "k", "other", 3).await.unwrap(), Claim::Mismatch);
        let after_a_day = 3 + COMPLETED_EXPIRY.as_millis() as i64;
        assert_eq!(store.claim("t1", "k", "other", after_a_day).await.unwrap(), Claim::New);
    }

    async fn stale_claims_can_be_taken_over_and_released(store: Arc<dyn IdempotencyStore>) {
        assert_eq!(store.claim("t1", "k", "fp", 0).await.unwrap(), Claim::New);
        let later = IN_PROGRESS_EXPIRY.as_millis() as i64 + 1;
        assert_eq!(store.claim("t1", "k", "fp", later).await.unwrap(), Claim::New);
        store.release("t1", "k").await.unwrap();
        assert_eq!(store.claim("t1", "k", "fp", later).await.unwrap(), Claim::New);
    }

    async fn concurrent_claims_admit_exactly_one(store: Arc<dyn IdempotencyStore>) {
        let claims = (0..16).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim("t1", "race", "fp", 0).await.unwrap() })
        });
        let mut new = 0;
        for c in claims {
            if c.await.unwrap() == Claim::New {
                new += 1;
            }
        }
        assert_eq!(new, 1, "exactly one concurrent claim runs the command");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_idempotency_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        conformance::run_idempotency_suite(|| {
            let path = dir.path().join(format!("i{}.db", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            async move { Arc::new(SqliteIdempotency::open(&path).unwrap()) as Arc<dyn IdempotencyStore> }
        })
        .await;
    }
}
