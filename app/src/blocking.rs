//! One SQLite connection shared by async code: every use runs on the blocking
//! thread pool, one at a time, so a slow statement never stalls the runtime.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;

#[derive(Clone)]
pub struct BlockingConnection(Arc<Mutex<Connection>>);

#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("blocking task failed: {0}")]
    Task(String),
}

impl BlockingConnection {
    pub fn new(conn: Connection) -> Self {
        BlockingConnection(Arc::new(Mutex::new(conn)))
    }

    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, BlockingError> {
        let conn = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(|e| BlockingError::Task(e.to_string()))?
            .map_err(BlockingError::from)
    }
}
