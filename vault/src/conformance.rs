//! Conformance suite for [`Vault`] adapters: every adapter must pass [`run_vault_suite`].
//!
//! Each check works in tenants of its own with random ids, so the suite can run against a
//! vault that already holds data (a persistent store, a shared emulator).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tokio::task::JoinSet;

use crate::{KeyScope, Sealed, Vault, VaultError};

/// Runs every check of the suite against `vault`. Panics on the first failure.
pub async fn run_vault_suite(vault: Arc<dyn Vault>) {
    round_trip(vault.as_ref()).await;
    key_ids_follow_scopes(vault.as_ref()).await;
    tampering_is_detected(vault.as_ref()).await;
    unknown_key_is_reported(vault.as_ref()).await;
    shred_destroys_only_its_scope(vault.as_ref()).await;
    seal_after_shred_uses_a_new_key(vault.as_ref()).await;
    concurrent_first_seals_agree_on_one_key(Arc::clone(&vault)).await;
}

/// A tenant id no other run uses.
fn fresh_tenant(label: &str) -> String {
    format!("conformance-{label}-{:016x}", rand::random::<u64>())
}

async fn seal(vault: &dyn Vault, scope: &KeyScope, plaintext: &[u8]) -> Sealed {
    vault.seal(scope, plaintext).await.unwrap_or_else(|e| panic!("seal for {scope:?} failed: {e}"))
}

async fn open_ok(vault: &dyn Vault, sealed: &Sealed) -> Vec<u8> {
    vault.open(sealed).await.unwrap_or_else(|e| panic!("open of {sealed:?} failed: {e}"))
}

/// Values of every size come back as they went in, also after a JSON round trip of the
/// sealed form; sealing the same text twice gives different ciphertexts.
pub async fn round_trip(vault: &dyn Vault) {
    let scope = KeyScope::contact(fresh_tenant("round-trip"), "16505551234");
    let binary: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let texts: [&[u8]; 4] = [b"", b"Does it come in another color?", "Olá, ¿qué tal? 👋".as_bytes(), &binary];
    for plaintext in texts {
        let sealed = seal(vault, &scope, plaintext).await;
        let json = serde_json::to_string(&sealed).expect("sealed value serializes");
        let stored: Sealed = serde_json::from_str(&json).expect("sealed value deserializes");
        assert_eq!(open_ok(vault, &stored).await, plaintext, "round trip");
    }

    let text = b"the same words, sealed twice";
    let a = seal(vault, &scope, text).await;
    let b = seal(vault, &scope, text).await;
    assert_ne!(a.n, b.n, "every seal uses a fresh nonce");
    assert_ne!(a.c, b.c, "equal plaintexts must not give equal ciphertexts");
    let raw = STANDARD.decode(&a.c).expect("ciphertext is base64");
    assert!(!raw.windows(text.len()).any(|w| w == text), "ciphertext must not contain the plaintext");
}

/// One scope keeps one key id until shredded; different scopes (other subject, or same
/// subject in another tenant) get different key ids; key ids name their scope.
pub async fn key_ids_follow_scopes(vault: &dyn Vault) {
    let tenant = fresh_tenant("key-ids");
    let other_tenant = fresh_tenant("key-ids-other");
    let alice = KeyScope::contact(tenant.clone(), "15550000001");
    let bob = KeyScope::contact(tenant.clone(), "15550000002");
    let numbers = KeyScope::new(tenant, "numbers");
    let alice_elsewhere = KeyScope::contact(other_tenant, "15550000001");

    let first = seal(vault, &alice, b"1").await;
    let second = seal(vault, &alice, b"2").await;
    assert_eq!(first.k, second.k, "a scope reuses its key until shredded");

    let mut ids = vec![first.k.clone()];
    for scope in [&bob, &numbers, &alice_elsewhere] {
        let sealed = seal(vault, scope, b"x").await;
        assert!(!ids.contains(&sealed.k), "{scope:?} shares key id {}", sealed.k);
        ids.push(sealed.k);
    }
    for (id, scope) in ids.iter().zip([&alice, &bob, &numbers, &alice_elsewhere]) {
        let (named, _generation) =
            KeyScope::parse_key_id(id).unwrap_or_else(|| panic!("key id {id} does not name a scope and generation"));
        assert_eq!(&named, scope, "key id {id} names the wrong scope");
    }
}

/// Altered ciphertexts, nonces and key ids, and malformed encodings, are refused.
pub async fn tampering_is_detected(vault: &dyn Vault) {
    let tenant = fresh_tenant("tamper");
    let alice = KeyScope::contact(tenant.clone(), "15550000001");
    let bob = KeyScope::contact(tenant, "15550000002");
    let sealed = seal(vault, &alice, b"confidential").await;
    let bobs = seal(vault, &bob, b"other secret").await;

    let mut ciphertext = STANDARD.decode(&sealed.c).expect("base64");
    let mut nonce = STANDARD.decode(&sealed.n).expect("base64");
    let last = ciphertext.len() - 1;
    ciphertext[0] ^= 0x01;
    nonce[0] ^= 0x80;
    let mut tag_flipped = STANDARD.decode(&sealed.c).expect("base64");
    tag_flipped[last] ^= 0x01;
    let truncated = STANDARD.decode(&sealed.c).expect("base64")[..last].to_vec();

    let cases = [
        ("flipped ciphertext bit", Sealed { c: STANDARD.encode(&ciphertext), ..sealed.clone() }),
        ("flipped tag bit", Sealed { c: STANDARD.encode(&tag_flipped), ..sealed.clone() }),
        ("truncated ciphertext", Sealed { c: STANDARD.encode(&truncated), ..sealed.clone() }),
        ("empty ciphertext", Sealed { c: String::new(), ..sealed.clone() }),
        ("flipped nonce bit", Sealed { n: STANDARD.encode(&nonce), ..sealed.clone() }),
        ("short nonce", Sealed { n: STANDARD.encode([0u8; 8]), ..sealed.clone() }),
        ("malformed base64", Sealed { c: "not base64!".into(), ..sealed.clone() }),
        ("moved under another scope's key id", Sealed { k: bobs.k.clone(), ..sealed.clone() }),
        ("other scope's ciphertext", Sealed { c: bobs.c.clone(), n: bobs.n.clone(), ..sealed.clone() }),
    ];
    for (what, altered) in cases {
        assert_eq!(vault.open(&altered).await, Err(VaultError::Tampered), "{what}");
    }
    assert_eq!(open_ok(vault, &sealed).await, b"confidential", "the original still opens");
}

/// A key id the vault never created is reported as unknown.
pub async fn unknown_key_is_reported(vault: &dyn Vault) {
    let scope = KeyScope::contact(fresh_tenant("unknown"), "15550000001");
    let sealed = seal(vault, &scope, b"hello").await;
    let never_created = scope.key_id(1_000_000);
    let unknown = Sealed { k: never_created.clone(), ..sealed };
    assert_eq!(vault.open(&unknown).await, Err(VaultError::UnknownKey(never_created)));
}

/// Shredding a scope makes every value sealed before unreadable, and leaves every other scope
/// readable. Shredding twice, or a scope without a key, is not an error.
pub async fn shred_destroys_only_its_scope(vault: &dyn Vault) {
    let tenant = fresh_tenant("shred");
    let alice = KeyScope::contact(tenant.clone(), "15550000001");
    let bob = KeyScope::contact(tenant.clone(), "15550000002");
    let alice_elsewhere = KeyScope::contact(fresh_tenant("shred-other"), "15550000001");
    let never_used = KeyScope::contact(tenant, "15550000003");

    let mut alices = Vec::new();
    for i in 0..5 {
        alices.push(seal(vault, &alice, format!("alice {i}").as_bytes()).await);
    }
    let bobs = seal(vault, &bob, b"bob").await;
    let elsewhere = seal(vault, &alice_elsewhere, b"alice in another tenant").await;
    // Read once first, so an adapter with a cache has the key cached when it is shredded.
    open_ok(vault, &alices[0]).await;

    vault.shred(&alice).await.expect("shred succeeds");
    for sealed in &alices {
        assert_eq!(vault.open(sealed).await, Err(VaultError::Shredded), "{sealed:?}");
    }
    assert_eq!(open_ok(vault, &bobs).await, b"bob");
    assert_eq!(open_ok(vault, &elsewhere).await, b"alice in another tenant");

    vault.shred(&alice).await.expect("shredding again is not an error");
    vault.shred(&never_used).await.expect("shredding a scope without keys is not an error");
    assert_eq!(vault.open(&alices[0]).await, Err(VaultError::Shredded));
}

/// After a shred, sealing for the same scope works with a new key id (a later generation),
/// while the earlier values stay shredded.
pub async fn seal_after_shred_uses_a_new_key(vault: &dyn Vault) {
    let scope = KeyScope::contact(fresh_tenant("rekey"), "15550000001");
    let before = seal(vault, &scope, b"before").await;
    vault.shred(&scope).await.expect("shred succeeds");

    let after = seal(vault, &scope, b"after").await;
    assert_ne!(after.k, before.k, "a shredded key is never reused");
    let generation =
        |id: &str| KeyScope::parse_key_id(id).unwrap_or_else(|| panic!("key id {id} does not name a generation")).1;
    assert!(generation(&after.k) > generation(&before.k), "generations increase");
    assert_eq!(open_ok(vault, &after).await, b"after");
    assert_eq!(vault.open(&before).await, Err(VaultError::Shredded));

    vault.shred(&scope).await.expect("second shred succeeds");
    assert_eq!(vault.open(&after).await, Err(VaultError::Shredded));
    let third = seal(vault, &scope, b"third").await;
    assert!(third.k != before.k && third.k != after.k);
    assert_eq!(open_ok(vault, &third).await, b"third");
}

/// Many first seals of a new scope at the same moment all succeed under one key, and all open.
pub async fn concurrent_first_seals_agree_on_one_key(vault: Arc<dyn Vault>) {
    const TASKS: usize = 32;
    let scope = KeyScope::contact(fresh_tenant("race"), "15550000001");
    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        let vault = Arc::clone(&vault);
        let scope = scope.clone();
        tasks.spawn(async move {
            let plaintext = format!("message {i}").into_bytes();
            let sealed = vault.seal(&scope, &plaintext).await;
            (plaintext, sealed)
        });
    }
    let mut key_ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (plaintext, sealed) = joined.expect("sealing task did not panic");
        let sealed = sealed.unwrap_or_else(|e| panic!("concurrent seal failed: {e}"));
        assert_eq!(open_ok(vault.as_ref(), &sealed).await, plaintext);
        key_ids.push(sealed.k);
    }
    assert_eq!(key_ids.len(), TASKS);
    key_ids.dedup();
    assert_eq!(key_ids.len(), 1, "one key wins the race: {key_ids:?}");
}
