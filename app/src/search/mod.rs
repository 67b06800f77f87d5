//! Message search within a tenant (SPEC 5.2, 6.2): a blind index built by a
//! projection over the decrypted text of messages.
//!
//! Message content is sealed at rest, so the index cannot hold it in the
//! clear. It holds *terms* instead: each folded word
//! ([`parley_domain::search::words`]) keyed with the tenant's own search key
//! (HMAC-SHA256, cut to 128 bits). A query is folded and keyed the same way
//! and the index matches terms, never text. A tenant's terms mean nothing
//! under another tenant's key, and every adapter keys its rows by tenant too,
//! so no search can cross tenants. The search key itself is sealed by the
//! vault and kept beside the index.
//!
//! - [`SearchIndex`] is the port: terms per message, queries over terms.
//! - [`Blinder`] turns words into a tenant's terms (and creates its key).
//! - [`SearchIndexer`] turns recorded message events into index changes:
//!   the projection of every adapter goes through it.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod indexer;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use parley_vault::{KeyScope, Sealed, Vault};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::AppError;
use crate::readmodel::Page;

pub use indexer::SearchIndexer;

/// One change to the index, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchChange {
    /// Adds terms to a message's entry, creating it at `created_at` (an
    /// existing entry keeps its time). Adding terms already there changes
    /// nothing, so a change applied twice is applied once.
    Add { tenant_id: String, message_id: Uuid, created_at: DateTime<Utc>, terms: Vec<String> },
    /// Drops a message's entry and every term of it (the message was
    /// deleted, or archived out of the hot store).
    Forget { tenant_id: String, message_id: Uuid },
}

/// A message a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub message_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The blind index of message text, per tenant.
#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// The tenant's sealed search key, if it has one.
    async fn key(&self, tenant_id: &str) -> Result<Option<Sealed>, AppError>;
    /// Stores `key` as the tenant's search key unless it has one already,
    /// and answers the one it has: of two racing writers, both end up with
    /// the first.
    async fn put_key(&self, tenant_id: &str, key: &Sealed) -> Result<Sealed, AppError>;
    /// Applies changes in order.
    async fn apply(&self, changes: &[SearchChange]) -> Result<(), AppError>;
    /// Messages of the tenant holding every one of `terms`, newest first
    /// (by `created_at`, then id), after `cursor` (one this method returned).
    async fn search(
        &self,
        tenant_id: &str,
        terms: &[String],
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<SearchHit>, AppError>;
}

/// Bytes of a tenant's search key.
const KEY_LEN: usize = 32;
/// Bytes of a term: 128 bits keep collisions out of reach for any index size.
const TERM_LEN: usize = 16;

/// Turns words into a tenant's terms. Plain keys are kept in memory once
/// opened: a key never changes once stored.
pub struct Blinder {
    index: Arc<dyn SearchIndex>,
    vault: Arc<dyn Vault>,
    keys: Mutex<HashMap<String, Arc<[u8; KEY_LEN]>>>,
}

impl Blinder {
    pub fn new(index: Arc<dyn SearchIndex>, vault: Arc<dyn Vault>) -> Self {
        Blinder { index, vault, keys: Mutex::new(HashMap::new()) }
    }

    pub fn index(&self) -> &Arc<dyn SearchIndex> {
        &self.index
    }

    /// The tenant's terms for `words`; `None` when the tenant has no key yet
    /// (nothing of it was indexed), unless `create` asks for one.
    pub async fn terms(
        &self,
        tenant_id: &str,
        words: &[String],
        create: bool,
    ) -> Result<Option<Vec<String>>, AppError> {
        let Some(key) = self.key(tenant_id, create).await? else { return Ok(None) };
        Ok(Some(words.iter().map(|w| term(&key, w)).collect()))
    }

    async fn key(&self, tenant_id: &str, create: bool) -> Result<Option<Arc<[u8; KEY_LEN]>>, AppError> {
        if let Some(key) = self.keys.lock().unwrap_or_else(|e| e.into_inner()).get(tenant_id) {
            return Ok(Some(key.clone()));
        }
        let sealed = match self.index.key(tenant_id).await? {
            Some(sealed) => sealed,
            None if create => {
                let fresh: [u8; KEY_LEN] = rand::random();
                let sealed = self.vault.seal(&KeyScope::new(tenant_id, "search"), &fresh).await?;
                self.index.put_key(tenant_id, &sealed).await?
            }
            None => return Ok(None),
        };
        let plain = self.vault.open(&sealed).await?;
        let key: [u8; KEY_LEN] = plain
            .try_into()
            .map_err(|_| AppError::internal(format!("search key of {tenant_id} has a wrong length")))?;
        let key = Arc::new(key);
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(tenant_id.to_owned(), key.clone());
        Ok(Some(key))
    }
}

fn term(key: &[u8; KEY_LEN], word: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(word.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..TERM_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_depend_on_the_key_and_the_word_only() {
        let (a, b) = ([1u8; KEY_LEN], [2u8; KEY_LEN]);
        assert_eq!(term(&a, "refund"), term(&a, "refund"));
        assert_ne!(term(&a, "refund"), term(&b, "refund"));
        assert_ne!(term(&a, "refund"), term(&a, "refunds"));
        assert_eq!(term(&a, "refund").len(), 2 * TERM_LEN);
        assert!(!term(&a, "refund").contains("refund"));
    }
}
