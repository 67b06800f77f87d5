//! Copies a WAL back into its database file from a thread of its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the writer (and every append waiting on it) stalls while
//! megabytes are copied and synced. A PASSIVE checkpoint from another
//! connection does the same copying without blocking the writer or readers,
//! which keeps the tail latency of appends flat.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back.
const INTERVAL: Duration = Duration::from_millis(500);

/// A running background checkpointer; stops when dropped.
#[derive(Debug)]
pub struct WalCheckpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WalCheckpointer {
    /// Starts checkpointing the WAL database at `path`. Its writers should set
    /// `PRAGMA wal_autocheckpoint = 0` so that only this thread copies.
    pub fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let name = format!("wal-checkpoint {}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(%error, "WAL checkpoint failed; will retry");
                    }
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(WalCheckpointer { stop, thread: Some(thread) })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
