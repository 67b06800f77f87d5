//! Errors of the encryption port.

use thiserror::Error;

/// Why a vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VaultError {
    /// The data key that sealed this value was destroyed (crypto-shredded): the value is gone
    /// for good and callers show it redacted.
    #[error("the data key of this value was destroyed; the value is unreadable")]
    Shredded,
    /// The sealed value names a key id this vault has never held.
    #[error("unknown data key `{0}`")]
    UnknownKey(String),
    /// The sealed value failed authentication: it was altered, is malformed, or was moved under
    /// another key id.
    #[error("sealed value failed authentication (altered, malformed or under the wrong key id)")]
    Tampered,
    /// The vault's backing store or key material could not be used.
    #[error("vault unavailable: {0}")]
    Unavailable(String),
}
