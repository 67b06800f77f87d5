//! A small pool of read-only connections. WAL lets them read while the
//! writer commits. Queries that may return many rows run on tokio's blocking
//! pool so the async workers never spend long on them; short ones run on the
//! calling task, where they take a few microseconds, less than handing them
//! to another thread and back would.
//!
//! Running on the calling task is safe on either kind of runtime: a WAL
//! reader does not wait for the writer, for checkpoints or for other
//! readers (only for recovery of a crashed file or a connection in exclusive
//! locking mode, neither of which happens while the store is open), and the
//! pages of a point query are almost always in memory already.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::schema::open_reader;
use crate::store::StoreError;

/// How many reads may run at once (and how many connections are kept).
pub(super) const READERS: usize = 4;

#[derive(Debug)]
pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn open(path: PathBuf) -> Result<Self, StoreError> {
        let idle = (0..READERS).map(|_| open_reader(&path)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { path, idle: Mutex::new(idle), permits: Arc::new(Semaphore::new(READERS)) })
    }

    /// Runs `query` on an idle connection on the blocking pool.
    pub async fn read<T, F>(self: &Arc<Self>, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("read pool closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // The permit moves in here so that a caller who stops waiting
            // does not free a slot whose connection is still in use.
            let _permit = permit;
            let conn = pool.take()?;
            let result = query(&conn);
            pool.put_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Runs a short `query` (a few rows at most) on the calling task.
    pub async fn read_inline<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Only waits while every connection is in use.
        let _permit = self.permits.acquire().await.map_err(|_| StoreError::Unavailable("read pool closed".into()))?;
        let conn = self.take()?;
        let result = query(&conn);
        self.put_back(conn);
        result
    }

    /// An idle connection, or a fresh one if a panicking query took one with it.
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}
