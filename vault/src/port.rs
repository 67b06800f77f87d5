//! The [`Vault`] port: what the rest of Parley calls to protect personal data.

use async_trait::async_trait;

use crate::{KeyScope, Sealed, VaultError};

/// Envelope encryption of personal data with one data key per [`KeyScope`].
///
/// Implementations hold at most one live data key per scope at a time; every value sealed for a
/// scope until the next [`Vault::shred`] uses that key.
#[async_trait]
pub trait Vault: Send + Sync + 'static {
    /// Encrypts `plaintext` with the scope's current data key, creating the key on first use.
    async fn seal(&self, scope: &KeyScope, plaintext: &[u8]) -> Result<Sealed, VaultError>;

    /// Decrypts a value sealed by this vault.
    ///
    /// Returns `Err(VaultError::Shredded)` once the key was destroyed: callers redact.
    async fn open(&self, sealed: &Sealed) -> Result<Vec<u8>, VaultError>;

    /// Destroys the scope's current data key for good. Later seals for the same scope use a new
    /// key (new key id). Shredding a scope without a live key is not an error.
    async fn shred(&self, scope: &KeyScope) -> Result<(), VaultError>;
}
