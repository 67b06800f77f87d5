//! SQLite table of wrapped data keys (`<data_dir>/keys.db`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{KeyScope, VaultError};

/// File name of the key database inside the data directory.
pub(crate) const KEY_DB_FILE: &str = "keys.db";

/// One row per data key ever created. A destroyed key keeps its row (so its key id is known
/// to have existed and reads answer `Shredded`), but loses its wrapped bytes.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS data_keys (
    key_id       TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    generation   INTEGER NOT NULL CHECK (generation > 0),
    wrapped_key  BLOB,
    created_at   INTEGER NOT NULL,
    destroyed_at INTEGER,
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL)),
    UNIQUE (tenant_id, subject, generation)
);
-- At most one live key per scope, even if two processes race to create it.
CREATE UNIQUE INDEX IF NOT EXISTS data_keys_one_live_per_scope
    ON data_keys (tenant_id, subject) WHERE destroyed_at IS NULL;
";

/// What the store knows about a key id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoredKey {
    /// The key exists; here are its wrapped bytes.
    Live(Vec<u8>),
    /// The key existed and was destroyed.
    Destroyed,
    /// No such key was ever created here.
    Missing,
}

/// Access to the key table. Not shared between threads: the caller serialises use.
pub(crate) struct KeyStore {
    conn: Connection,
}

fn db_error(e: rusqlite::Error) -> VaultError {
    VaultError::Unavailable(format!("key store: {e}"))
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

impl KeyStore {
    /// Opens (creating if needed) the key database in `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, VaultError> {
        let conn = Connection::open(data_dir.join(KEY_DB_FILE)).map_err(db_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_error)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)).map_err(db_error)?;
        // A key must be on disk before any value sealed with it leaves the vault, or a crash
        // could leave stored ciphertext that nothing can open.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_error)?;
        // Freed space is zeroed, so destroyed key bytes do not linger in the file.
        conn.pragma_update(None, "secure_delete", "ON").map_err(db_error)?;
        conn.execute_batch(SCHEMA).map_err(db_error)?;
        Ok(Self { conn })
    }

    /// Returns each scope's live key `(key_id, wrapped)`, in the order of `scopes`, inserting
    /// a new key of the next generation (wrapped bytes from `wrap(key_id)`) for a scope that
    /// has none. All scopes are handled in one write transaction: concurrent callers agree on
    /// a single key per scope, and a batch of new keys costs one sync to disk.
    pub(crate) fn live_or_insert_all(
        &mut self,
        scopes: &[KeyScope],
        mut wrap: impl FnMut(&str) -> Result<Vec<u8>, VaultError>,
    ) -> Result<Vec<(String, Vec<u8>)>, VaultError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
        let mut keys = Vec::with_capacity(scopes.len());
        {
            let mut find_live = tx
                .prepare_cached(
                    "SELECT key_id, wrapped_key FROM data_keys
                     WHERE tenant_id = ?1 AND subject = ?2 AND destroyed_at IS NULL",
                )
                .map_err(db_error)?;
            let mut next_generation = tx
                .prepare_cached(
                    "SELECT COALESCE(MAX(generation), 0) + 1 FROM data_keys
                     WHERE tenant_id = ?1 AND subject = ?2",
                )
                .map_err(db_error)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO data_keys
                         (key_id, tenant_id, subject, generation, wrapped_key, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db_error)?;
            for scope in scopes {
                let live = find_live
                    .query_row(params![scope.tenant_id, scope.subject], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
                    })
                    .optional()
                    .map_err(db_error)?;
                if let Some(found) = live {
                    keys.push(found);
                    continue;
                }
                let generation: i64 = next_generation
                    .query_row(params![scope.tenant_id, scope.subject], |row| row.get(0))
                    .map_err(db_error)?;
                let generation_u64 = u64::try_from(generation)
                    .map_err(|_| VaultError::Unavailable("key store: invalid key generation".into()))?;
                let key_id = scope.key_id(generation_u64);
                let wrapped = wrap(&key_id)?;
                insert
                    .execute(params![key_id, scope.tenant_id, scope.subject, generation, wrapped, now_millis()])
                    .map_err(db_error)?;
                keys.push((key_id, wrapped));
            }
        }
        tx.commit().map_err(db_error)?;
        Ok(keys)
    }

    /// Looks a key up by id.
    pub(crate) fn get(&self, key_id: &str) -> Result<StoredKey, VaultError> {
        let row = self
            .conn
            .query_row("SELECT wrapped_key FROM data_keys WHERE key_id = ?1", params![key_id], |row| {
                row.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()
            .map_err(db_error)?;
        Ok(match row {
            None => StoredKey::Missing,
            Some(None) => StoredKey::Destroyed,
            Some(Some(wrapped)) => StoredKey::Live(wrapped),
        })
    }

    /// Destroys every live key of the scope (its wrapped bytes are erased) and returns their
    /// key ids.
    pub(crate) fn destroy(&mut self, scope: &KeyScope) -> Result<Vec<String>, VaultError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
        let destroyed = {
            let mut statement = tx
                .prepare(
                    "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = ?3
                     WHERE tenant_id = ?1 AND subject = ?2 AND destroyed_at IS NULL
                     RETURNING key_id",
                )
                .map_err(db_error)?;
            let ids = statement
                .query_map(params![scope.tenant_id, scope.subject, now_millis()], |row| row.get::<_, String>(0))
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            ids
        };
        tx.commit().map_err(db_error)?;
        if !destroyed.is_empty() {
            // The write-ahead log still holds the page images with the old key bytes; copying
            // them into the (zero-filling) database and truncating the log removes them.
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(db_error)?;
        }
        Ok(destroyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap_fixed(bytes: &'static [u8]) -> impl FnMut(&str) -> Result<Vec<u8>, VaultError> {
        move |_| Ok(bytes.to_vec())
    }

    fn live_or_insert(
        store: &mut KeyStore,
        scope: &KeyScope,
        wrap: impl FnMut(&str) -> Result<Vec<u8>, VaultError>,
    ) -> Result<(String, Vec<u8>), VaultError> {
        let mut keys = store.live_or_insert_all(std::slice::from_ref(scope), wrap)?;
        assert_eq!(keys.len(), 1);
        Ok(keys.remove(0))
    }

    #[test]
    fn one_live_key_per_scope_and_generations_increase() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = KeyStore::open(dir.path()).expect("opens");
        let scope = KeyScope::new("t1", "contact:1");

        let (id1, wrapped1) = live_or_insert(&mut store, &scope, wrap_fixed(b"one")).expect("inserts");
        assert_eq!(id1, "t1/contact:1/1");
        assert_eq!(wrapped1, b"one");
        let again = live_or_insert(&mut store, &scope, |_| panic!("must not create a second live key")).expect("finds");
        assert_eq!(again, (id1.clone(), b"one".to_vec()));

        assert_eq!(store.destroy(&scope).expect("destroys"), vec![id1.clone()]);
        assert_eq!(store.get(&id1).expect("gets"), StoredKey::Destroyed);
        assert_eq!(store.destroy(&scope).expect("idempotent"), Vec::<String>::new());

        let (id2, _) = live_or_insert(&mut store, &scope, wrap_fixed(b"two")).expect("inserts");
        assert_eq!(id2, "t1/contact:1/2");
        assert_eq!(store.get(&id2).expect("gets"), StoredKey::Live(b"two".to_vec()));
        assert_eq!(store.get("t1/contact:1/9").expect("gets"), StoredKey::Missing);
    }

    #[test]
    fn a_batch_creates_each_scope_once_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = KeyStore::open(dir.path()).expect("opens");
        let a = KeyScope::new("t1", "a");
        let b = KeyScope::new("t1", "b");
        let (existing, _) = live_or_insert(&mut store, &b, wrap_fixed(b"b1")).expect("inserts");
        let mut wrapped = 0;
        let keys = store
            .live_or_insert_all(&[a.clone(), b.clone(), a], |key_id| {
                wrapped += 1;
                Ok(key_id.as_bytes().to_vec())
            })
            .expect("inserts");
        assert_eq!(wrapped, 1, "only the missing scope gets a new key");
        let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["t1/a/1", existing.as_str(), "t1/a/1"]);
    }

    #[test]
    fn destroyed_key_bytes_leave_the_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = KeyStore::open(dir.path()).expect("opens");
        let scope = KeyScope::new("t1", "contact:1");
        let marker: &'static [u8] = b"WRAPPED-KEY-MARKER-0123456789abcdef";
        live_or_insert(&mut store, &scope, wrap_fixed(marker)).expect("inserts");
        // Other keys share the page, so it is updated in place rather than rewritten whole.
        let others: Vec<_> = (0..20).map(|i| KeyScope::new("t1", format!("contact:other{i}"))).collect();
        store.live_or_insert_all(&others, wrap_fixed(b"other-key-bytes")).expect("inserts");
        store.destroy(&scope).expect("destroys");
        // Checked while the store is still open, as in a running server: closing the last
        // connection would checkpoint and remove the write-ahead log anyway.
        for entry in std::fs::read_dir(dir.path()).expect("lists") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("reads");
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{} still holds the destroyed key bytes",
                path.display()
            );
        }
        drop(store);
    }
}
