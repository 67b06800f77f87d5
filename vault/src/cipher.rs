//! AES-256-GCM primitives shared by the adapters: data keys that seal values, and wrapping of
//! data keys under a master key.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;

use crate::{Sealed, VaultError};

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes (96 bits).
pub(crate) const NONCE_LEN: usize = 12;

/// A fresh random key from the operating system's CSPRNG.
pub(crate) fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    OsRng.fill_bytes(&mut key);
    key
}

/// A fresh random nonce. The thread-local generator is a CSPRNG seeded (and periodically
/// reseeded) from the operating system, and avoids a system call per seal on the hot path.
fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

/// An unwrapped data key, ready to use: its key schedule is computed once, so sealing a value
/// is a single AES-GCM operation. Adapters that keep their data keys elsewhere (a KMS) seal
/// with it, so every adapter writes the same [`Sealed`] form.
pub struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

impl DataKey {
    pub fn new(id: String, key: &[u8; KEY_LEN]) -> Self {
        Self { id, cipher: Aes256Gcm::new(key.into()) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plaintext`, binding the ciphertext to this key's id as associated data so a
    /// ciphertext moved under another key id fails to open.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        let nonce = random_nonce();
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: self.id.as_bytes() })
            .map_err(|_| VaultError::Unavailable("AES-GCM encryption failed".into()))?;
        Ok(Sealed::encode(&self.id, &nonce, &ciphertext))
    }

    /// Decrypts a value sealed under this key.
    pub fn open(&self, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let (nonce, ciphertext) = sealed.decode()?;
        self.cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: sealed.k.as_bytes() })
            .map_err(|_| VaultError::Tampered)
    }
}

/// The key-encryption key that wraps data keys at rest.
pub(crate) struct MasterKey {
    cipher: Aes256Gcm,
}

impl MasterKey {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// Wraps a data key as `nonce || ciphertext+tag`, bound to its key id so a wrapped key
    /// cannot be moved to another row.
    pub(crate) fn wrap(&self, key_id: &str, data_key: &[u8; KEY_LEN]) -> Result<Vec<u8>, VaultError> {
        let nonce = random_nonce();
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: data_key, aad: key_id.as_bytes() })
            .map_err(|_| VaultError::Unavailable("AES-GCM key wrapping failed".into()))?;
        let mut wrapped = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&ciphertext);
        Ok(wrapped)
    }

    /// Unwraps a data key made by [`MasterKey::wrap`]. Failure means the key store does not
    /// belong to this master key (or was altered), which makes the vault unusable rather than
    /// one value suspect.
    pub(crate) fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> Result<[u8; KEY_LEN], VaultError> {
        let unusable =
            || VaultError::Unavailable(format!("data key `{key_id}` cannot be unwrapped with this master key"));
        if wrapped.len() <= NONCE_LEN {
            return Err(unusable());
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let key = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: key_id.as_bytes() })
            .map_err(|_| unusable())?;
        key.try_into().map_err(|_| unusable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_fresh_nonces() {
        let key = DataKey::new("t/s/1".into(), &random_key());
        let a = key.seal(b"hello").expect("seals");
        let b = key.seal(b"hello").expect("seals");
        assert_ne!(a.n, b.n, "each seal draws a new nonce");
        assert_ne!(a.c, b.c);
        assert_eq!(key.open(&a).expect("opens"), b"hello");
    }

    #[test]
    fn ciphertext_is_bound_to_key_id() {
        let material = random_key();
        let key = DataKey::new("t/s/1".into(), &material);
        let mut sealed = key.seal(b"hello").expect("seals");
        sealed.k = "t/s/2".into();
        // Same key material, different key id: associated data no longer matches.
        assert_eq!(key.open(&sealed), Err(VaultError::Tampered));
    }

    #[test]
    fn wrap_unwrap_round_trip_bound_to_key_id() {
        let master = MasterKey::new(&random_key());
        let data = random_key();
        let wrapped = master.wrap("t/s/1", &data).expect("wraps");
        assert_eq!(master.unwrap("t/s/1", &wrapped).expect("unwraps"), data);
        assert!(matches!(master.unwrap("t/s/2", &wrapped), Err(VaultError::Unavailable(_))));
        let other = MasterKey::new(&random_key());
        assert!(matches!(other.unwrap("t/s/1", &wrapped), Err(VaultError::Unavailable(_))));
        assert!(matches!(master.unwrap("t/s/1", &wrapped[..5]), Err(VaultError::Unavailable(_))));
    }
}
