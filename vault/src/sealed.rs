//! The stored form of an encrypted value.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::cipher::NONCE_LEN;
use crate::VaultError;

/// A sealed value as stored inside event data. The field names are one letter on purpose:
/// they are repeated in every stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Key id of the data key that sealed the value (see [`crate::KeyScope::key_id`]).
    pub k: String,
    /// The 96-bit AES-GCM nonce, base64.
    pub n: String,
    /// Ciphertext followed by the 128-bit authentication tag, base64.
    pub c: String,
}

impl Sealed {
    /// Encodes raw nonce and ciphertext bytes.
    pub(crate) fn encode(key_id: &str, nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> Self {
        Self { k: key_id.to_owned(), n: STANDARD.encode(nonce), c: STANDARD.encode(ciphertext) }
    }

    /// Decodes the nonce and ciphertext; anything malformed counts as tampering.
    pub(crate) fn decode(&self) -> Result<([u8; NONCE_LEN], Vec<u8>), VaultError> {
        let nonce_bytes = STANDARD.decode(&self.n).map_err(|_| VaultError::Tampered)?;
        let nonce: [u8; NONCE_LEN] = nonce_bytes.try_into().map_err(|_| VaultError::Tampered)?;
        let ciphertext = STANDARD.decode(&self.c).map_err(|_| VaultError::Tampered)?;
        Ok((nonce, ciphertext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_short_field_names() {
        let sealed = Sealed::encode("t1/numbers/1", &[7; NONCE_LEN], b"ct");
        let json = serde_json::to_string(&sealed).expect("serializes");
        assert_eq!(json, r#"{"k":"t1/numbers/1","n":"BwcHBwcHBwcHBwcH","c":"Y3Q="}"#);
        let back: Sealed = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.decode(), Ok(([7; NONCE_LEN], b"ct".to_vec())));
    }

    #[test]
    fn malformed_encodings_are_tampering() {
        let good = Sealed::encode("k", &[1; NONCE_LEN], b"x");
        let bad_base64 = Sealed { c: "***".into(), ..good.clone() };
        let short_nonce = Sealed { n: STANDARD.encode([1; 8]), ..good };
        assert_eq!(bad_base64.decode(), Err(VaultError::Tampered));
        assert_eq!(short_nonce.decode(), Err(VaultError::Tampered));
    }
}
