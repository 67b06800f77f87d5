//! Webhook signatures: the README's test vector and every refusal.

use parley_whatsapp::signature::{sign, verify, SignatureError};

const VECTOR: &str = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";

#[test]
fn the_test_vector_signs_and_verifies() {
    assert_eq!(sign(b"secret", b"test"), VECTOR);
    assert_eq!(verify(b"secret", b"test", Some(VECTOR)), Ok(()));
}

#[test]
fn a_missing_header_is_missing() {
    assert_eq!(verify(b"secret", b"test", None), Err(SignatureError::Missing));
}

#[test]
fn malformed_headers_are_malformed() {
    for header in [
        "",
        "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
        "sha1=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
        "sha256=0329a06b",
        "sha256=zz29a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
    ] {
        assert!(
            matches!(verify(b"secret", b"test", Some(header)), Err(SignatureError::Malformed(_))),
            "{header:?} should be malformed"
        );
    }
}

#[test]
fn another_secret_or_body_is_a_mismatch() {
    assert_eq!(verify(b"other", b"test", Some(VECTOR)), Err(SignatureError::Mismatch));
    assert_eq!(verify(b"secret", b"test ", Some(VECTOR)), Err(SignatureError::Mismatch));
}

#[test]
fn signing_covers_the_raw_bytes_of_a_fixture() {
    let body =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inbound_text.json")).expect("fixture");
    let header = sign(b"app-secret", &body);
    assert_eq!(verify(b"app-secret", &body, Some(&header)), Ok(()));
    // The same JSON re-serialised is different bytes and must not verify.
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let compact = serde_json::to_vec(&value).expect("serialise");
    assert_eq!(verify(b"app-secret", &compact, Some(&header)), Err(SignatureError::Mismatch));
}
