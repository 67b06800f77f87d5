//! The embedded-mode vault: a master key file and a SQLite table of wrapped data keys under one
//! data directory.
//!
//! One process owns a data directory at a time: the key cache is per process, so a shred made
//! by another process would not evict this one's cached key.

mod cache;
mod master_key;
mod store;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::cipher::{random_key, DataKey, MasterKey};
use crate::{KeyScope, Sealed, Vault, VaultError};
use cache::{CachedKey, KeyCache};
use store::{KeyStore, StoredKey};

/// How many unwrapped keys [`LocalVault::open`] keeps in memory (per map: current keys by
/// scope, and keys by id).
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// [`Vault`] adapter for embedded mode: master key in `<data_dir>/master.key`, wrapped data
/// keys in `<data_dir>/keys.db`, unwrapped keys cached in memory.
#[derive(Clone)]
pub struct LocalVault {
    inner: Arc<Inner>,
}

struct Inner {
    master: MasterKey,
    /// Every store access holds this lock, and cache changes that follow from the store are
    /// made while still holding it, so cache and store never disagree about a shredded key.
    store: Mutex<KeyStore>,
    /// Read-mostly: the hot path takes only a read lock.
    cache: RwLock<KeyCache>,
    /// Seals waiting for their scope's key to be loaded or created.
    key_requests: Mutex<Vec<KeyRequest>>,
}

/// A seal's request for its scope's current key.
struct KeyRequest {
    scope: KeyScope,
    reply: oneshot::Sender<Result<Arc<DataKey>, VaultError>>,
}

impl LocalVault {
    /// Opens the vault in `data_dir`, creating the directory, the master key and the key
    /// database if they do not exist yet. Blocking: call it at start-up.
    pub fn open(data_dir: &Path) -> Result<Self, VaultError> {
        Self::open_with_cache_capacity(data_dir, DEFAULT_CACHE_CAPACITY)
    }

    /// Like [`LocalVault::open`], keeping at most `capacity` unwrapped keys in memory.
    pub fn open_with_cache_capacity(data_dir: &Path, capacity: usize) -> Result<Self, VaultError> {
        let master = MasterKey::new(&master_key::load_or_create(data_dir)?);
        let store = KeyStore::open(data_dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                master,
                store: Mutex::new(store),
                cache: RwLock::new(KeyCache::new(capacity)),
                key_requests: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The scope's current key, loaded from the store or created there.
    async fn current_key_from_store(&self, scope: &KeyScope) -> Result<Arc<DataKey>, VaultError> {
        let (reply, answer) = oneshot::channel();
        self.inner.key_requests().push(KeyRequest { scope: scope.clone(), reply });
        self.blocking(|inner| {
            inner.serve_key_requests();
            Ok(())
        })
        .await?;
        // Served by this call's run above or by an earlier one that took the request along.
        answer.await.map_err(|_| VaultError::Unavailable("key request was dropped".into()))?
    }

    /// Runs key-store work off the async threads.
    async fn blocking<T, F>(&self, work: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, VaultError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| VaultError::Unavailable(format!("key store task failed: {e}")))?
    }
}

impl Inner {
    // A panic while a lock was held cannot leave the cache or the store half-changed in a way
    // that matters (store changes are transactional), so a poisoned lock is used as is.
    fn cache_read(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_write(&self) -> std::sync::RwLockWriteGuard<'_, KeyCache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, KeyStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key_requests(&self) -> std::sync::MutexGuard<'_, Vec<KeyRequest>> {
        self.key_requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves every queued request for a scope's current key: keys that are missing are
    /// created together in one store transaction (group commit), so a burst of new contacts
    /// costs one sync to disk rather than one each.
    fn serve_key_requests(&self) {
        let mut store = self.store();
        let batch = std::mem::take(&mut *self.key_requests());
        if batch.is_empty() {
            // An earlier run took this caller's request along with its own.
            return;
        }
        let mut ready: HashMap<KeyScope, Result<Arc<DataKey>, VaultError>> = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache_read();
            let mut seen = HashSet::new();
            for request in &batch {
                if !seen.insert(&request.scope) {
                    continue;
                }
                match cache.current(&request.scope) {
                    Some(key) => {
                        ready.insert(request.scope.clone(), Ok(key));
                    }
                    None => missing.push(request.scope.clone()),
                }
            }
        }
        match store.live_or_insert_all(&missing, |key_id| self.master.wrap(key_id, &random_key())) {
            Ok(keys) => {
                let mut cache = self.cache_write();
                for (scope, (key_id, wrapped)) in missing.iter().zip(keys) {
                    let key =
                        self.master.unwrap(&key_id, &wrapped).map(|material| Arc::new(DataKey::new(key_id, &material)));
                    if let Ok(key) = &key {
                        cache.insert_current(scope, Arc::clone(key));
                    }
                    ready.insert(scope.clone(), key);
                }
            }
            Err(error) => {
                for scope in &missing {
                    ready.insert(scope.clone(), Err(error.clone()));
                }
            }
        }
        for request in batch {
            let answer = ready
                .get(&request.scope)
                .cloned()
                .unwrap_or_else(|| Err(VaultError::Unavailable("key request was lost".into())));
            // The requester may have gone away (its future was dropped); nothing to tell then.
            let _ = request.reply.send(answer);
        }
    }

    /// The key with this id, from the store.
    fn load_by_id(&self, key_id: &str) -> Result<Arc<DataKey>, VaultError> {
        let store = self.store();
        match self.cache_read().by_id(key_id) {
            Some(CachedKey::Live(key)) => return Ok(key),
            Some(CachedKey::Destroyed) => return Err(VaultError::Shredded),
            None => {}
        }
        match store.get(key_id)? {
            StoredKey::Missing => Err(VaultError::UnknownKey(key_id.to_owned())),
            StoredKey::Destroyed => {
                self.cache_write().insert_destroyed(key_id.to_owned());
                Err(VaultError::Shredded)
            }
            StoredKey::Live(wrapped) => {
                let key = Arc::new(DataKey::new(key_id.to_owned(), &self.master.unwrap(key_id, &wrapped)?));
                self.cache_write().insert_live(Arc::clone(&key));
                Ok(key)
            }
        }
    }

    fn shred(&self, scope: &KeyScope) -> Result<usize, VaultError> {
        let mut store = self.store();
        let destroyed = store.destroy(scope)?;
        let count = destroyed.len();
        self.cache_write().mark_destroyed(scope, destroyed);
        Ok(count)
    }
}

#[async_trait]
impl Vault for LocalVault {
    async fn seal(&self, scope: &KeyScope, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        // The read guard is dropped at the end of this statement, before any await.
        let cached = self.inner.cache_read().current(scope);
        let key = match cached {
            Some(key) => key,
            None => self.current_key_from_store(scope).await?,
        };
        key.seal(plaintext)
    }

    async fn open(&self, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let cached = self.inner.cache_read().by_id(&sealed.k);
        let key = match cached {
            Some(CachedKey::Live(key)) => key,
            Some(CachedKey::Destroyed) => return Err(VaultError::Shredded),
            None => {
                let key_id = sealed.k.clone();
                self.blocking(move |inner| inner.load_by_id(&key_id)).await?
            }
        };
        key.open(sealed)
    }

    async fn shred(&self, scope: &KeyScope) -> Result<(), VaultError> {
        let scope_for_log = scope.tenant_id.clone();
        let scope = scope.clone();
        let destroyed = self.blocking(move |inner| inner.shred(&scope)).await?;
        // The subject is personal data (it names the contact): log the tenant only.
        tracing::info!(tenant_id = %scope_for_log, destroyed, "shredded data keys");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
