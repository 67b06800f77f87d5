//! Webhook signatures: the `X-Hub-Signature-256` header Meta puts on every
//! webhook POST.
//!
//! The header is `sha256=<lowercase hex of HMAC-SHA256(app_secret, raw body)>`.
//! It is always computed over the raw bytes exactly as received: re-serialised
//! JSON would differ in whitespace, key order or escaping and never verify.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// The name of the header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The scheme prefix of the header value.
const PREFIX: &str = "sha256=";

/// Length in bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The request carried no signature header.
    #[error("the {SIGNATURE_HEADER} header is missing")]
    Missing,
    /// The header is present but is not `sha256=` followed by 64 hex digits.
    #[error("the {SIGNATURE_HEADER} header is malformed: {0}")]
    Malformed(&'static str),
    /// The header is well formed but does not match the body and secret.
    #[error("the {SIGNATURE_HEADER} header does not match the body")]
    Mismatch,
}

/// Computes the header value Meta would send for `body` signed with
/// `app_secret`: `"sha256=<lowercase hex>"`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let tag = mac(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

/// Checks a signature header against the raw `body`.
///
/// `header` is the raw header value, `None` when the request had none. The
/// comparison runs in constant time so that a caller cannot learn the expected
/// tag byte by byte from response timings.
pub fn verify(app_secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_tag =
        strip_prefix_ignore_case(header, PREFIX).ok_or(SignatureError::Malformed("expected the sha256= prefix"))?;
    if hex_tag.len() != TAG_LEN * 2 {
        return Err(SignatureError::Malformed("expected 64 hex digits"));
    }
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::Malformed("not hexadecimal"))?;
    mac(app_secret, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

/// Returns the HMAC state after absorbing `body`.
fn mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed first), so
    // construction cannot fail; the fallback only satisfies the type.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(app_secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac
}

/// `value` without `prefix`, compared ASCII case-insensitively, as proxies
/// sometimes change the case of what they forward.
fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercase_hex_and_prefix_are_accepted() {
        let header = sign(b"k", b"body").to_uppercase();
        assert_eq!(verify(b"k", b"body", Some(&header)), Ok(()));
    }

    #[test]
    fn a_single_changed_byte_is_a_mismatch() {
        let header = sign(b"k", b"body");
        assert_eq!(verify(b"k", b"bodY", Some(&header)), Err(SignatureError::Mismatch));
    }
}
