//! Media on the Graph API: uploads (`POST /{version}/{phone_number_id}/media`,
//! multipart), look-ups (`GET /{version}/{media_id}`) and the download of the
//! short-lived URL a look-up answers, which needs the same bearer token.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// A file to upload to WhatsApp's media store.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaUpload {
    /// The file's MIME type, sent as the multipart `type` field and as the
    /// `file` part's content type.
    pub mime_type: String,
    /// The file name shown to the customer for documents.
    pub filename: String,
    pub bytes: Bytes,
}

impl std::fmt::Debug for MediaUpload {
    // The bytes are customer data and may be large: show their size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaUpload")
            .field("mime_type", &self.mime_type)
            .field("filename", &self.filename)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// What `GET /{version}/{media_id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// The short-lived download URL (minutes): download it at once.
    pub url: String,
    pub mime_type: String,
    /// SHA-256 of the file: hex on look-ups, base64 in webhooks
    /// (see [`sha256_matches`]).
    pub sha256: String,
    /// Bytes; the Graph API has sent it both as a number and as a string.
    #[serde(deserialize_with = "number_or_string")]
    pub file_size: u64,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
}

fn number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Number(n) => Ok(n),
        Size::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// The success answer of an upload: `{"id": "<media id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedMedia {
    pub id: String,
}

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads a SHA-256 as WhatsApp writes it: 64 hex digits (media look-ups) or
/// base64 of the 32 bytes, padded or not, standard or URL-safe alphabet
/// (webhooks). `None` when it is neither.
pub fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(text).ok()?.try_into().ok();
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|engine| engine.decode(text).ok()).and_then(|raw| raw.try_into().ok())
}

/// Whether `bytes` hash to the SHA-256 WhatsApp gave (hex or base64).
/// A digest that cannot be read matches nothing.
pub fn sha256_matches(expected: &str, bytes: &[u8]) -> bool {
    decode_sha256(expected).is_some_and(|digest| digest == sha256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_digests_are_both_read() {
        let bytes = b"parley media";
        let digest = sha256(bytes);
        let hex_form = hex::encode(digest);
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        let b64_unpadded = b64.trim_end_matches('=').to_owned();
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(digest);
        for form in [&hex_form, &hex_form.to_uppercase(), &b64, &b64_unpadded, &url_safe] {
            assert!(sha256_matches(form, bytes), "{form}");
        }
        assert!(!sha256_matches(&b64, b"other bytes"));
        assert!(!sha256_matches("not a digest", bytes));
        // The webhook fixture's short placeholder decodes, but not to 32 bytes.
        assert_eq!(decode_sha256("4654+8g="), None);
    }

    #[test]
    fn file_size_reads_as_number_or_string() {
        let info: MediaInfo = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","url":"https://x.test/m","mime_type":"image/jpeg",
                "sha256":"ab","file_size":"1234","id":"1"}"#,
        )
        .expect("string size");
        assert_eq!(info.file_size, 1234);
        let info: MediaInfo =
            serde_json::from_str(r#"{"url":"u","mime_type":"image/png","sha256":"ab","file_size":7,"id":"2"}"#)
                .expect("number size");
        assert_eq!(info.file_size, 7);
    }
}
