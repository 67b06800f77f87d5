//! The vault on AWS KMS: envelope encryption with one data key per key scope.
//!
//! Each (tenant, subject) scope has one live data key at a time, made by KMS
//! `GenerateDataKey` under the deployment's master key and kept only wrapped
//! (the KMS ciphertext blob) in a DynamoDB table. The encryption context names
//! the tenant, the subject and the key id, so a wrapped key opens only for the
//! scope and generation it was made for (and CloudTrail shows whose data a
//! `Decrypt` was for). Values are sealed locally with the unwrapped key
//! ([`DataKey`]), in the same [`Sealed`] form as the local vault.
//!
//! Table: one item per scope, partition key `pk` (string) = the scope's key id
//! at generation 0 (`tenant/subject/0`); `g` (number) the current generation;
//! `l` (bool) whether its key is live; `w` (binary) the wrapped key while live.
//! Shredding sets `l` false and removes `w`: the only copy of the wrapped key
//! is gone, so no value sealed under it can be opened again. A new generation
//! starts only after a shred, so every generation below `g` is shredded. Keys
//! are created with one conditional `PutItem`; racing creators re-read the
//! winner's key.
//!
//! Unwrapped keys are cached for a bounded time (default one minute): a shred
//! is at once effective in the process that made it, and in other processes
//! (other Lambda instances) within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use parley_vault::{DataKey, KeyScope, Sealed, Vault, VaultError, KEY_LEN};

/// How long an unwrapped key is used without asking the table again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Cached keys beyond this many are dropped (all at once; they are fetched again on use).
const CACHE_CAPACITY: usize = 10_000;
/// Creators racing for a scope's first key re-read at most this often.
const CREATE_ATTEMPTS: u32 = 5;

/// A [`Vault`] with data keys from KMS, stored wrapped in DynamoDB.
pub struct KmsVault {
    kms: aws_sdk_kms::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    master_key_id: String,
    table: String,
    ttl: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// Live key per scope.
    current: HashMap<KeyScope, (Arc<DataKey>, Instant)>,
    /// Keys by key id, for opening.
    by_id: HashMap<String, (Arc<DataKey>, Instant)>,
}

/// A scope's item, as read.
struct ScopeRecord {
    generation: u64,
    wrapped: Option<Vec<u8>>,
}

impl KmsVault {
    /// Keys under the KMS key `master_key_id` (id, ARN or alias), stored in `table`.
    pub fn new(
        kms: aws_sdk_kms::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        master_key_id: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        KmsVault {
            kms,
            dynamodb,
            master_key_id: master_key_id.into(),
            table: table.into(),
            ttl: DEFAULT_CACHE_TTL,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Changes how long unwrapped keys are cached (zero: never).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Creates the key table (on demand capacity). For tests and tools:
    /// deployed tables come from the template.
    pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), VaultError> {
        client
            .create_table()
            .table_name(table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(unavailable)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(unavailable)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, entry: Option<&(Arc<DataKey>, Instant)>) -> Option<Arc<DataKey>> {
        entry.filter(|(_, at)| at.elapsed() < self.ttl).map(|(key, _)| Arc::clone(key))
    }

    fn remember(&self, scope: &KeyScope, key: &Arc<DataKey>) {
        let mut cache = self.cache();
        if cache.by_id.len() >= CACHE_CAPACITY {
            *cache = Cache::default();
        }
        let now = Instant::now();
        cache.current.insert(scope.clone(), (Arc::clone(key), now));
        cache.by_id.insert(key.id().to_owned(), (Arc::clone(key), now));
    }

    fn scope_pk(scope: &KeyScope) -> String {
        scope.key_id(0)
    }

    async fn read(&self, scope: &KeyScope) -> Result<Option<ScopeRecord>, VaultError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::scope_pk(scope)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = out.item else { return Ok(None) };
        let generation = match item.get("g") {
            Some(AttributeValue::N(n)) => n.parse().map_err(unavailable)?,
            _ => return Err(VaultError::Unavailable(format!("key item of {scope:?} has no generation"))),
        };
        let live = matches!(item.get("l"), Some(AttributeValue::Bool(true)));
        let wrapped = match item.get("w") {
            Some(AttributeValue::B(blob)) if live => Some(blob.clone().into_inner()),
            _ => None,
        };
        Ok(Some(ScopeRecord { generation, wrapped }))
    }

    fn context(scope: &KeyScope, key_id: &str) -> HashMap<String, String> {
        HashMap::from([
            ("tenant".to_owned(), scope.tenant_id.clone()),
            ("subject".to_owned(), scope.subject.clone()),
            ("key_id".to_owned(), key_id.to_owned()),
        ])
    }

    async fn unwrap_key(&self, scope: &KeyScope, key_id: &str, wrapped: Vec<u8>) -> Result<Arc<DataKey>, VaultError> {
        let out = self
            .kms
            .decrypt()
            .key_id(&self.master_key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(Self::context(scope, key_id)))
            .send()
            .await
            .map_err(|e| VaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let plaintext = out.plaintext.ok_or_else(|| VaultError::Unavailable("KMS Decrypt returned no key".into()))?;
        Ok(Arc::new(DataKey::new(key_id.to_owned(), &key_bytes(plaintext.as_ref())?)))
    }

    /// Makes generation `generation` of the scope's key and stores it, unless
    /// another process stored one first (then `None`).
    async fn create(&self, scope: &KeyScope, generation: u64) -> Result<Option<Arc<DataKey>>, VaultError> {
        let key_id = scope.key_id(generation);
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.master_key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(Self::context(scope, &key_id)))
            .send()
            .await
            .map_err(|e| VaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let (Some(plaintext), Some(wrapped)) = (out.plaintext, out.ciphertext_blob) else {
            return Err(VaultError::Unavailable("KMS GenerateDataKey returned no key".into()));
        };
        let put = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::scope_pk(scope)))
            .item("g", AttributeValue::N(generation.to_string()))
            .item("l", AttributeValue::Bool(true))
            .item("w", AttributeValue::B(wrapped.into_inner().into()))
            // Only the first key of a scope, or the one right after a shred.
            .condition_expression("attribute_not_exists(pk) OR (g = :prev AND l = :dead)")
            .expression_attribute_values(":prev", AttributeValue::N((generation - 1).to_string()))
            .expression_attribute_values(":dead", AttributeValue::Bool(false))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Some(Arc::new(DataKey::new(key_id, &key_bytes(plaintext.as_ref())?)))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn current_key(&self, scope: &KeyScope) -> Result<Arc<DataKey>, VaultError> {
        if let Some(key) = self.cached(self.cache().current.get(scope)) {
            return Ok(key);
        }
        for _ in 0..CREATE_ATTEMPTS {
            let record = self.read(scope).await?;
            let key = match record {
                Some(ScopeRecord { generation, wrapped: Some(wrapped) }) => {
                    Some(self.unwrap_key(scope, &scope.key_id(generation), wrapped).await?)
                }
                Some(ScopeRecord { generation, wrapped: None }) => self.create(scope, generation + 1).await?,
                None => self.create(scope, 1).await?,
            };
            if let Some(key) = key {
                self.remember(scope, &key);
                return Ok(key);
            }
        }
        Err(VaultError::Unavailable(format!("no key for {scope:?} after {CREATE_ATTEMPTS} attempts")))
    }

    async fn key_by_id(&self, key_id: &str) -> Result<Arc<DataKey>, VaultError> {
        if let Some(key) = self.cached(self.cache().by_id.get(key_id)) {
            return Ok(key);
        }
        let unknown = || VaultError::UnknownKey(key_id.to_owned());
        let (scope, generation) = KeyScope::parse_key_id(key_id).ok_or_else(unknown)?;
        let record = self.read(&scope).await?.ok_or_else(unknown)?;
        if generation > record.generation || generation == 0 {
            return Err(unknown());
        }
        match record.wrapped {
            Some(wrapped) if generation == record.generation => {
                let key = self.unwrap_key(&scope, key_id, wrapped).await?;
                self.remember(&scope, &key);
                Ok(key)
            }
            _ => Err(VaultError::Shredded),
        }
    }
}

#[async_trait]
impl Vault for KmsVault {
    async fn seal(&self, scope: &KeyScope, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        self.current_key(scope).await?.seal(plaintext)
    }

    async fn open(&self, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        self.key_by_id(&sealed.k).await?.open(sealed)
    }

    async fn shred(&self, scope: &KeyScope) -> Result<(), VaultError> {
        // Forget the key here first: even if the table write fails, this process stops using it.
        {
            let mut cache = self.cache();
            cache.current.remove(scope);
            cache.by_id.retain(|id, _| KeyScope::parse_key_id(id).is_none_or(|(s, _)| &s != scope));
        }
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::scope_pk(scope)))
            .update_expression("SET l = :dead REMOVE w")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":dead", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A scope that never had a key has nothing to destroy.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }
}

fn key_bytes(plaintext: &[u8]) -> Result<[u8; KEY_LEN], VaultError> {
    plaintext.try_into().map_err(|_| VaultError::Unavailable(format!("KMS returned a {}-byte key", plaintext.len())))
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> VaultError {
    VaultError::Unavailable(DisplayErrorContext(e).to_string())
}

fn unavailable(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}
