//! Parley's encryption port for personal data.
//!
//! Message text and contact names are sealed through a [`Vault`] before they are stored in
//! events. Each value is encrypted with a data key that belongs to one [`KeyScope`] (a tenant
//! and a subject such as `contact:<wa_id>`); data keys are themselves wrapped by a master key.
//! Destroying a scope's data key ([`Vault::shred`]) makes every value sealed under it unreadable
//! for good (crypto-shredding), which is how a GDPR erasure works on an immutable event log:
//! the events stay, their personal fields can no longer be opened.
//!
//! Adapters:
//! - [`LocalVault`]: embedded mode; master key in a local file, wrapped data keys in SQLite.
//!
//! Every adapter must pass the suite in `conformance` (enabled in tests and by the
//! `conformance` feature).

mod cipher;
mod error;
mod local;
mod port;
mod scope;
mod sealed;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use cipher::{DataKey, KEY_LEN};
pub use error::VaultError;
pub use local::{LocalVault, DEFAULT_CACHE_CAPACITY};
pub use port::Vault;
pub use scope::KeyScope;
pub use sealed::Sealed;
