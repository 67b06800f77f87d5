//! In-memory cache of unwrapped data keys, so sealing and opening with a known key never
//! touches the key store.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use crate::cipher::DataKey;
use crate::KeyScope;

/// What the cache knows about a key id.
#[derive(Clone)]
pub(crate) enum CachedKey {
    Live(Arc<DataKey>),
    /// Known to be destroyed; remembered so redacted reads do not query the store each time.
    Destroyed,
}

/// Bounded maps from scope to current key and from key id to key.
///
/// When full, an arbitrary entry makes room: a miss only costs one store lookup, and the bound
/// keeps memory flat with millions of contacts.
pub(crate) struct KeyCache {
    capacity: usize,
    current: HashMap<KeyScope, Arc<DataKey>>,
    by_id: HashMap<String, CachedKey>,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), current: HashMap::new(), by_id: HashMap::new() }
    }

    /// The scope's current (live) key, if cached.
    pub(crate) fn current(&self, scope: &KeyScope) -> Option<Arc<DataKey>> {
        self.current.get(scope).cloned()
    }

    pub(crate) fn by_id(&self, key_id: &str) -> Option<CachedKey> {
        self.by_id.get(key_id).cloned()
    }

    /// Records `key` as the scope's current key.
    pub(crate) fn insert_current(&mut self, scope: &KeyScope, key: Arc<DataKey>) {
        if !self.current.contains_key(scope) {
            make_room(&mut self.current, self.capacity);
        }
        self.current.insert(scope.clone(), Arc::clone(&key));
        self.insert_live(key);
    }

    /// Records a live key by id only (a value was opened with it).
    pub(crate) fn insert_live(&mut self, key: Arc<DataKey>) {
        self.insert_by_id(key.id().to_owned(), CachedKey::Live(key));
    }

    /// Forgets the scope's current key and remembers the given key ids as destroyed.
    pub(crate) fn mark_destroyed(&mut self, scope: &KeyScope, key_ids: Vec<String>) {
        self.current.remove(scope);
        for key_id in key_ids {
            self.insert_destroyed(key_id);
        }
    }

    /// Remembers a key id as destroyed.
    pub(crate) fn insert_destroyed(&mut self, key_id: String) {
        self.insert_by_id(key_id, CachedKey::Destroyed);
    }

    fn insert_by_id(&mut self, key_id: String, entry: CachedKey) {
        if !self.by_id.contains_key(&key_id) {
            make_room(&mut self.by_id, self.capacity);
        }
        self.by_id.insert(key_id, entry);
    }
}

fn make_room<K: Eq + Hash + Clone, V>(map: &mut HashMap<K, V>, capacity: usize) {
    while map.len() >= capacity {
        let Some(victim) = map.keys().next().cloned() else {
            return;
        };
        map.remove(&victim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::random_key;

    fn key(id: &str) -> Arc<DataKey> {
        Arc::new(DataKey::new(id.into(), &random_key()))
    }

    #[test]
    fn stays_within_capacity() {
        let mut cache = KeyCache::new(3);
        for i in 0..10 {
            let scope = KeyScope::new("t", format!("s{i}"));
            cache.insert_current(&scope, key(&scope.key_id(1)));
        }
        assert_eq!(cache.current.len(), 3);
        assert_eq!(cache.by_id.len(), 3);
        let last = KeyScope::new("t", "s9");
        assert!(cache.current(&last).is_some(), "the newest entry is kept");
    }

    #[test]
    fn destroyed_keys_are_no_longer_current() {
        let mut cache = KeyCache::new(10);
        let scope = KeyScope::new("t", "s");
        cache.insert_current(&scope, key("t/s/1"));
        cache.mark_destroyed(&scope, vec!["t/s/1".into()]);
        assert!(cache.current(&scope).is_none());
        assert!(matches!(cache.by_id("t/s/1"), Some(CachedKey::Destroyed)));
    }
}
