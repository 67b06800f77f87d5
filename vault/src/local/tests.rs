//! LocalVault: the conformance suite plus what only a local, file-backed vault promises.

use std::path::Path;

use super::*;
use crate::conformance::run_vault_suite;

fn scope() -> KeyScope {
    KeyScope::contact("t1", "16505551234")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = LocalVault::open(dir.path()).expect("opens");
    run_vault_suite(Arc::new(vault)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_with_a_tiny_cache() {
    // With room for one key, nearly every call misses the cache and goes to the store.
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = LocalVault::open_with_cache_capacity(dir.path(), 1).expect("opens");
    run_vault_suite(Arc::new(vault)).await;
}

#[tokio::test]
async fn first_key_of_a_scope_has_the_documented_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = LocalVault::open(dir.path()).expect("opens");
    let sealed = vault.seal(&scope(), b"hi").await.expect("seals");
    assert_eq!(sealed.k, "t1/contact:16505551234/1");
}

#[tokio::test]
async fn keys_and_shreds_survive_reopening_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shredded_scope = KeyScope::contact("t1", "15550000009");
    let (kept, shredded) = {
        let vault = LocalVault::open(dir.path()).expect("opens");
        let kept = vault.seal(&scope(), b"kept").await.expect("seals");
        let shredded = vault.seal(&shredded_scope, b"gone").await.expect("seals");
        vault.shred(&shredded_scope).await.expect("shreds");
        (kept, shredded)
    };

    let reopened = LocalVault::open(dir.path()).expect("reopens");
    assert_eq!(reopened.open(&kept).await.expect("opens"), b"kept");
    assert_eq!(reopened.open(&shredded).await, Err(VaultError::Shredded));
    let again = reopened.seal(&scope(), b"more").await.expect("seals");
    assert_eq!(again.k, kept.k, "the scope's live key is reused after reopening");
    let rekeyed = reopened.seal(&shredded_scope, b"new").await.expect("seals");
    assert_eq!(rekeyed.k, "t1/contact:15550000009/2", "generation continues after reopening");
}

#[tokio::test]
async fn another_master_key_cannot_read_the_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sealed = {
        let vault = LocalVault::open(dir.path()).expect("opens");
        vault.seal(&scope(), b"secret").await.expect("seals")
    };
    std::fs::write(dir.path().join(master_key::MASTER_KEY_FILE), [7u8; 32]).expect("replaces");
    let vault = LocalVault::open(dir.path()).expect("opens with the other key");
    assert!(matches!(vault.open(&sealed).await, Err(VaultError::Unavailable(_))));
}

fn write_master_key(dir: &Path, len: usize) {
    std::fs::write(dir.join(master_key::MASTER_KEY_FILE), vec![1u8; len]).expect("writes");
}

#[test]
fn a_wrong_size_master_key_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_master_key(dir.path(), 31);
    match LocalVault::open(dir.path()) {
        Err(VaultError::Unavailable(message)) => {
            assert!(message.contains("master.key"), "{message}");
            assert!(message.contains("31 bytes"), "{message}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("a 31-byte master key must be refused"),
    }
    assert!(!dir.path().join(store::KEY_DB_FILE).exists(), "nothing is created next to a bad key");
}

#[tokio::test]
async fn cached_seals_do_not_touch_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = LocalVault::open(dir.path()).expect("opens");
    let sealed = vault.seal(&scope(), b"warm up").await.expect("seals");
    // Another thread holds the store lock: a seal or open that needed the store would wait.
    let inner = Arc::clone(&vault.inner);
    let (locked, store_is_locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _store = inner.store();
        let _ = locked.send(());
        let _ = released.recv();
    });
    store_is_locked.recv().expect("holder locked the store");
    let sealing = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        for _ in 0..1_000 {
            vault.seal(&scope(), b"hot path").await.expect("seals");
        }
        vault.open(&sealed).await.expect("opens")
    });
    let opened = sealing.await;
    release.send(()).expect("holder waits");
    holder.join().expect("holder did not panic");
    let opened = opened.expect("cached calls finish without the store");
    assert_eq!(opened, b"warm up");
}

#[tokio::test]
async fn a_shred_evicts_the_cached_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = LocalVault::open(dir.path()).expect("opens");
    let first = vault.seal(&scope(), b"one").await.expect("seals");
    vault.open(&first).await.expect("opens and caches");
    vault.shred(&scope()).await.expect("shreds");
    assert_eq!(vault.open(&first).await, Err(VaultError::Shredded));
    let second = vault.seal(&scope(), b"two").await.expect("seals");
    assert_eq!(second.k, "t1/contact:16505551234/2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vaults_on_one_directory_agree_on_the_first_key() {
    // Two openers of the same directory race to create the master key and the scope's key;
    // the store's unique live-key index and write transactions make both agree.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let openers: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || LocalVault::open(&path))
        })
        .collect();
    let mut vaults = Vec::new();
    for opener in openers {
        vaults.push(opener.join().expect("no panic").expect("opens"));
    }
    let scope = scope();
    let (a, b) = tokio::join!(vaults[0].seal(&scope, b"a"), vaults[1].seal(&scope, b"b"));
    let (a, b) = (a.expect("seals"), b.expect("seals"));
    assert_eq!(a.k, b.k);
    assert_eq!(vaults[1].open(&a).await.expect("opens"), b"a");
    assert_eq!(vaults[0].open(&b).await.expect("opens"), b"b");
}
