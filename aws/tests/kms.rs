//! The KMS vault against the emulator: the vault port's conformance suite,
//! and what crypto-shredding leaves in the key table.

mod emulator;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use parley_aws::kms::KmsVault;
use parley_vault::{conformance, KeyScope, Vault, VaultError};

struct Setup {
    kms: aws_sdk_kms::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    master_key: String,
    table: String,
}

impl Setup {
    async fn new() -> Self {
        let config = emulator::sdk_config().await;
        let kms = aws_sdk_kms::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let master_key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let table = emulator::unique("vault-keys");
        KmsVault::create_table(&dynamodb, &table).await.unwrap();
        Setup { kms, dynamodb, master_key, table }
    }

    fn vault(&self) -> KmsVault {
        KmsVault::new(self.kms.clone(), self.dynamodb.clone(), &self.master_key, &self.table)
    }
}

#[tokio::test]
async fn kms_vault_conforms() {
    let setup = Setup::new().await;
    conformance::run_vault_suite(Arc::new(setup.vault())).await;
}

#[tokio::test]
async fn a_shred_removes_the_only_wrapped_copy_of_the_key() {
    let setup = Setup::new().await;
    let vault = setup.vault();
    let scope = KeyScope::contact("t1", "15550000001");
    vault.seal(&scope, b"hello").await.unwrap();
    let item = || async {
        let key = AttributeValue::S(scope.key_id(0));
        setup.dynamodb.get_item().table_name(&setup.table).key("pk", key).send().await.unwrap().item.unwrap()
    };
    let before = item().await;
    assert!(matches!(before.get("w"), Some(AttributeValue::B(b)) if !b.as_ref().is_empty()));
    vault.shred(&scope).await.unwrap();
    let after = item().await;
    assert!(after.get("w").is_none(), "{after:?}");
    assert_eq!(after.get("l"), Some(&AttributeValue::Bool(false)));
}

#[tokio::test]
async fn a_shred_reaches_other_instances_once_their_cache_expires() {
    let setup = Setup::new().await;
    let here = setup.vault();
    let there = setup.vault().with_cache_ttl(Duration::from_millis(200));
    let scope = KeyScope::contact("t1", "15550000002");
    let sealed = here.seal(&scope, b"personal").await.unwrap();
    assert_eq!(there.open(&sealed).await.unwrap(), b"personal");
    here.shred(&scope).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(there.open(&sealed).await, Err(VaultError::Shredded));
}

#[tokio::test]
async fn a_wrapped_key_opens_only_with_its_own_encryption_context() {
    let setup = Setup::new().await;
    let vault = setup.vault();
    let scope = KeyScope::contact("t1", "15550000003");
    vault.seal(&scope, b"x").await.unwrap();
    let item = setup
        .dynamodb
        .get_item()
        .table_name(&setup.table)
        .key("pk", AttributeValue::S(scope.key_id(0)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let Some(AttributeValue::B(wrapped)) = item.get("w") else { panic!("no wrapped key: {item:?}") };
    let decrypt_as = |tenant: &str| {
        setup
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped.as_ref().to_vec()))
            .encryption_context("tenant", tenant)
            .encryption_context("subject", "contact:15550000003")
            .encryption_context("key_id", scope.key_id(1))
            .send()
    };
    assert!(decrypt_as("t1").await.is_ok(), "its own context opens it");
    assert!(decrypt_as("t2").await.is_err(), "a key of t1 must not open as t2's");
}
