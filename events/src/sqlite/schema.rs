//! The SQLite file layout of the event store and the connection settings
//! every connection to it uses.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// The layout version this code writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock held by another connection
/// (a checkpoint, or a second process) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `AUTOINCREMENT` keeps positions from ever being reused, even after the
/// newest events were archived away: projections checkpoint on them.
/// `streams` keeps each stream's version for the same reason, and turns the
/// version check into one primary-key lookup.
const DDL: &str = "
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    tenant_id       TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    actor           TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Opens the read-write connection: WAL so readers never block the writer,
/// `synchronous=FULL` so a commit is on disk when it returns.
pub(crate) fn open_durable(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with the mode now in force; anything but WAL
    // (an in-memory path, say) would break the read pool, so refuse it.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!("{} cannot use WAL (journal mode {mode})", path.display())));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Appends touch index pages all over the file (stream ids are random), so
    // a larger page cache saves re-reading them. The WAL is copied back by a
    // background checkpointer, never inside a commit.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Page cache of the writer connection, in KiB (SQLite takes negative sizes as KiB).
const WRITER_CACHE_KIB: i64 = -65_536;

/// Creates the event tables if they are missing and checks that the file is
/// not from a newer layout.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "event store layout {found} is newer than this code's {SCHEMA_VERSION}"
        )));
    }
    let tx = conn.transaction()?;
    tx.execute_batch(DDL)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Opens a connection that only reads (the WAL files already exist because
/// the writer opened the database first).
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The highest position ever committed. Read from the AUTOINCREMENT counter
/// rather than `MAX(global_position)` so archiving the newest rows cannot
/// move the head backwards.
const HEAD_SQL: &str = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)";

pub(super) fn head(conn: &Connection) -> Result<u64, StoreError> {
    let head: i64 = conn.prepare_cached(HEAD_SQL)?.query_row([], |row| row.get(0))?;
    Ok(u64::try_from(head).unwrap_or(0))
}
