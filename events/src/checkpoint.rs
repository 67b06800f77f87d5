//! Durable checkpoints for consumers whose side effects cannot share a
//! transaction with their checkpoint (sending to WhatsApp, mailing,
//! publishing). Such a consumer records its position after the effect, so it
//! sees every event at least once and must make its effects idempotent.
//!
//! Projections whose read model is in a database keep their checkpoint next
//! to it instead, in the same transaction, and get exactly-once for free.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use crate::projection::ProjectionError;
use crate::sqlite::open_durable;

const DDL: &str = "CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID";
const SELECT: &str = "SELECT position FROM checkpoints WHERE name = ?1";
const UPSERT: &str = "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) \
     ON CONFLICT (name) DO UPDATE SET position = excluded.position";

/// Named positions in the global log, kept in an SQLite file (which may be
/// the event store's own file: the table name does not clash).
/// A `set` is on disk when it returns.
#[derive(Debug, Clone)]
pub struct SqliteCheckpoints {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteCheckpoints {
    /// Opens (creating if needed) the checkpoint table in the file at `path`.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let conn = open_durable(path).map_err(ProjectionError::read_model)?;
        conn.execute_batch(DDL)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// The position recorded under `name`, 0 if none was.
    pub async fn get(&self, name: &str) -> Result<u64, ProjectionError> {
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let position: Option<i64> = conn.prepare_cached(SELECT)?.query_row([name], |row| row.get(0)).optional()?;
            Ok(position.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
        })
        .await
    }

    /// Records `position` under `name`, durably.
    pub async fn set(&self, name: &str, position: u64) -> Result<(), ProjectionError> {
        let name = name.to_owned();
        let position = i64::try_from(position)
            .map_err(|_| ProjectionError::read_model(format!("checkpoint {position} is out of range")))?;
        self.with_conn(move |conn| {
            conn.prepare_cached(UPSERT)?.execute(params![name, position])?;
            Ok(())
        })
        .await
    }

    /// Runs `work` on the connection on the blocking pool: a `set` waits for the disk.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, ProjectionError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ProjectionError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| ProjectionError::read_model("checkpoint connection poisoned"))?;
            work(&conn)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_are_per_name_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("checkpoints.db");
        {
            let checkpoints = SqliteCheckpoints::open(&path).expect("open");
            assert_eq!(checkpoints.get("dispatcher").await.expect("get"), 0, "unknown names are at 0");
            checkpoints.set("dispatcher", 41).await.expect("set");
            checkpoints.set("dispatcher", 42).await.expect("set");
            checkpoints.set("notifier", 7).await.expect("set");
            assert_eq!(checkpoints.get("dispatcher").await.expect("get"), 42);
        }
        let checkpoints = SqliteCheckpoints::open(&path).expect("reopen");
        assert_eq!(checkpoints.get("dispatcher").await.expect("get"), 42);
        assert_eq!(checkpoints.get("notifier").await.expect("get"), 7);
        checkpoints.set("notifier", 0).await.expect("set back to zero for a replay");
        assert_eq!(checkpoints.get("notifier").await.expect("get"), 0);
    }

    #[tokio::test]
    async fn shares_a_file_with_the_event_store() {
        use crate::{EventStore, SqliteEventStore};

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("parley.db");
        let store = SqliteEventStore::open(&path).expect("open store");
        let checkpoints = SqliteCheckpoints::open(&path).expect("open checkpoints");
        checkpoints.set("publisher", 3).await.expect("set");
        assert_eq!(store.head_position().await.expect("head"), 0);
        assert_eq!(checkpoints.get("publisher").await.expect("get"), 3);
    }

    #[tokio::test]
    async fn refuses_positions_beyond_sqlite_integers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let checkpoints = SqliteCheckpoints::open(&dir.path().join("c.db")).expect("open");
        let result = checkpoints.set("x", u64::MAX).await;
        assert!(matches!(result, Err(ProjectionError::ReadModel(_))), "{result:?}");
        assert_eq!(checkpoints.get("x").await.expect("get"), 0);
    }
}
