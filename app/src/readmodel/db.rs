//! The SQLite database behind a set of read models: one writer connection
//! (projections) and a few reader connections (queries), each used on the
//! blocking thread pool so a slow statement never stalls the runtime.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::AppError;

/// Read models are rebuildable from the log and their checkpoints commit
/// with them, so NORMAL (no fsync per commit) loses at most the last few
/// batches on power loss, never their consistency.
const PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;";

/// Each projection's checkpoint: the log position of the last event it
/// applied, moved in the same transaction as its rows.
const CHECKPOINTS: &str = "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL);";

pub struct ReadModelDb {
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

impl ReadModelDb {
    /// Opens the database at `path` with `readers` reader connections;
    /// `extra_pragmas` go to every connection, `init` (the schema) runs on
    /// the writer once.
    pub fn open(
        path: &Path,
        readers: usize,
        extra_pragmas: &str,
        init: impl FnOnce(&Connection) -> Result<(), AppError>,
    ) -> Result<Self, AppError> {
        let open = || -> Result<Connection, AppError> {
            let c = Connection::open(path)?;
            c.execute_batch(PRAGMAS)?;
            c.execute_batch(extra_pragmas)?;
            Ok(c)
        };
        let writer = open()?;
        writer.execute_batch(CHECKPOINTS)?;
        init(&writer)?;
        let readers = (0..readers.max(1)).map(|_| open().map(|c| Arc::new(Mutex::new(c)))).collect::<Result<_, _>>()?;
        Ok(ReadModelDb { writer: Arc::new(Mutex::new(writer)), readers, next_reader: AtomicUsize::new(0) })
    }

    /// Runs `f` on a reader connection (round robin).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i].clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(AppError::internal)?
    }

    /// Runs `f` on the writer connection.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(AppError::internal)?
    }
}

impl ReadModelDb {
    /// The checkpoint of the projection `name` (0: nothing applied).
    pub async fn checkpoint(&self, name: &str) -> Result<u64, AppError> {
        let name = name.to_owned();
        self.read(move |c| {
            let p: Option<i64> = c
                .query_row("SELECT position FROM checkpoints WHERE name = ?1", params![name], |r| r.get(0))
                .optional()?;
            Ok(p.unwrap_or(0) as u64)
        })
        .await
    }
}

/// Moves the checkpoint of the projection `name`, inside its batch's transaction.
pub fn set_checkpoint(tx: &Transaction<'_>, name: &str, position: u64) -> Result<(), AppError> {
    tx.execute(
        "INSERT INTO checkpoints(name, position) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET position = excluded.position",
        params![name, position as i64],
    )?;
    Ok(())
}

/// Forgets the checkpoint of the projection `name` (a rebuild from zero).
pub fn clear_checkpoint(tx: &Transaction<'_>, name: &str) -> Result<(), AppError> {
    tx.execute("DELETE FROM checkpoints WHERE name = ?1", params![name])?;
    Ok(())
}
