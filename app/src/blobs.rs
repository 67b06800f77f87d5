//! The blob store port (S3 in AWS) and its local adapter (files under the data dir).
//!
//! Blobs are exports, invoices, archives and media: written once, read by key,
//! listed by prefix, handed to people through download links that expire.
//! Keys are relative slash-separated paths (`{tenant}/exports/{job}.csv`);
//! every adapter refuses keys that could escape their prefix.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob key is invalid: {0}")]
    InvalidKey(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing what was there.
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError>;
    /// Removes the blob; removing a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Keys starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError>;
    /// A URL that lets its holder download the blob until `expires_in` passes.
    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<String, BlobError>;
}

/// Checks the shape every adapter accepts: 1..=1024 bytes of printable
/// characters, relative, no empty, `.` or `..` segments.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = |why: &str| Err(BlobError::InvalidKey(format!("{key:?}: {why}")));
    if key.is_empty() || key.len() > 1024 {
        return bad("must be 1 to 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control characters and backslashes are not allowed");
    }
    if key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return bad("segments must be non-empty and not '.' or '..'");
    }
    Ok(())
}

type HmacSha256 = Hmac<Sha256>;

/// Blobs as files under a root folder. The content type is kept in a sidecar
/// file so a blob reads back exactly as written.
pub struct FileBlobStore {
    root: PathBuf,
    public_base_url: String,
    signing_key: [u8; 32],
}

const META_SUFFIX: &str = ".content-type";

impl FileBlobStore {
    pub fn open(root: &Path, public_base_url: &str, signing_key: [u8; 32]) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root).map_err(|e| unavailable(root, e))?;
        Ok(FileBlobStore {
            root: root.to_path_buf(),
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
            signing_key,
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        if key.ends_with(META_SUFFIX) {
            return Err(BlobError::InvalidKey(format!("{key:?}: the suffix {META_SUFFIX} is reserved")));
        }
        let relative = Path::new(key);
        // validate_key already refuses these; checked again on the real path type.
        if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(BlobError::InvalidKey(format!("{key:?}: not a relative path")));
        }
        Ok(self.root.join(relative))
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.signing_key).expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether a download link's `expires` and `sig` are genuine for `key` and not yet expired.
    pub fn verify_download(&self, key: &str, expires: i64, sig: &str, now_unix: i64) -> bool {
        if now_unix > expires {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else { return false };
        let mut mac = HmacSha256::new_from_slice(&self.signing_key).expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

fn unavailable(path: &Path, e: std::io::Error) -> BlobError {
    BlobError::Unavailable(format!("{}: {e}", path.display()))
}

fn sidecar(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(META_SUFFIX);
    PathBuf::from(name)
}

/// Writes through a temporary file and a rename, so a reader never sees half a blob.
async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&tmp, bytes).await.map_err(|e| unavailable(&tmp, e))?;
    tokio::fs::rename(&tmp, path).await.map_err(|e| unavailable(path, e))
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| unavailable(parent, e))?;
        }
        write_atomically(&sidecar(&path), content_type.as_bytes()).await?;
        write_atomically(&path, &bytes).await
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let path = self.path_of(key)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(&path, e)),
        };
        let content_type =
            tokio::fs::read_to_string(sidecar(&path)).await.unwrap_or_else(|_| "application/octet-stream".to_string());
        Ok(Some(Blob { bytes: Bytes::from(bytes), content_type }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        for file in [path.clone(), sidecar(&path)] {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(unavailable(&file, e)),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let mut pending = vec![root.clone()];
            while let Some(dir) = pending.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(unavailable(&dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| unavailable(&dir, e))?;
                    let path = entry.path();
                    let file_type = entry.file_type().map_err(|e| unavailable(&path, e))?;
                    if file_type.is_dir() {
                        pending.push(path);
                        continue;
                    }
                    let Ok(relative) = path.strip_prefix(&root) else { continue };
                    let key = relative.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
                    let in_flight = relative.extension().is_some_and(|ext| ext.to_string_lossy().starts_with("tmp-"));
                    if key.ends_with(META_SUFFIX) || in_flight || !key.starts_with(&prefix) {
                        continue;
                    }
                    keys.push(key);
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| BlobError::Unavailable(e.to_string()))?
    }

    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        self.path_of(key)?;
        let expires = chrono::Utc::now().timestamp() + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2);
        let sig = self.signature(key, expires);
        Ok(format!("{}/blobs/{key}?expires={expires}&sig={sig}", self.public_base_url))
    }
}

/// The one conformance suite every `BlobStore` adapter passes; `make` gives an empty store.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use std::future::Future;
    use std::sync::Arc;

    pub async fn run_blob_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Arc<dyn BlobStore>>,
    {
        round_trip_and_overwrite(make().await).await;
        list_by_prefix(make().await).await;
        delete_is_idempotent(make().await).await;
        bad_keys_are_refused(make().await).await;
        download_urls_name_the_blob(make().await).await;
    }

    async fn round_trip_and_overwrite(store: Arc<dyn BlobStore>) {
        assert_eq!(store.get("t1/none").await.unwrap(), None);
        let binary: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        store.put("t1/exports/a.bin", Bytes::from(binary.clone()), "application/octet-stream").await.unwrap();
        let blob = store.get("t1/exports/a.bin").await.unwrap().expect("stored");
        assert_eq!(blob.bytes.as_ref(), binary.as_slice(), "bytes round-trip exactly");
        assert_eq!(blob.content_type, "application/octet-stream");
        store.put("t1/exports/a.bin", Bytes::from_static(b"id,text\n"), "text/csv").await.unwrap();
        let blob = store.get("t1/exports/a.bin").await.unwrap().expect("stored");
        assert_eq!(blob, Blob { bytes: Bytes::from_static(b"id,text\n"), content_type: "text/csv".into() });
    }

    async fn list_by_prefix(store: Arc<dyn BlobStore>) {
        for key in ["t1/a/2", "t1/a/1", "t1/b/1", "t2/a/1"] {
            store.put(key, Bytes::from(key.to_string()), "text/plain").await.unwrap();
        }
        assert_eq!(store.list("t1/a/").await.unwrap(), vec!["t1/a/1", "t1/a/2"]);
        assert_eq!(store.list("t1/").await.unwrap(), vec!["t1/a/1", "t1/a/2", "t1/b/1"]);
        assert_eq!(store.list("t3/").await.unwrap(), Vec::<String>::new());
    }

    async fn delete_is_idempotent(store: Arc<dyn BlobStore>) {
        store.put("t1/x", Bytes::from_static(b"x"), "text/plain").await.unwrap();
        store.delete("t1/x").await.unwrap();
        store.delete("t1/x").await.unwrap();
        assert_eq!(store.get("t1/x").await.unwrap(), None);
        assert!(store.list("t1/").await.unwrap().is_empty());
    }

    async fn bad_keys_are_refused(store: Arc<dyn BlobStore>) {
        for key in ["", "/abs", "a//b", "../escape", "a/../b", "a/./b", "trailing/", "ctl\nkey"] {
            let result = store.put(key, Bytes::from_static(b"x"), "text/plain").await;
            assert!(matches!(result, Err(BlobError::InvalidKey(_))), "{key:?} must be refused");
        }
    }

    async fn download_urls_name_the_blob(store: Arc<dyn BlobStore>) {
        store.put("t1/invoices/2026-10.pdf", Bytes::from_static(b"%PDF"), "application/pdf").await.unwrap();
        let url = store.download_url("t1/invoices/2026-10.pdf", Duration::from_secs(600)).await.unwrap();
        assert!(url.starts_with("http"), "{url}");
        assert!(url.contains("2026-10.pdf"), "{url}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn file_blob_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = AtomicU32::new(0);
        conformance::run_blob_suite(|| {
            let root = dir.path().join(n.fetch_add(1, Ordering::SeqCst).to_string());
            async move {
                Arc::new(FileBlobStore::open(&root, "http://127.0.0.1:3000", [7; 32]).unwrap()) as Arc<dyn BlobStore>
            }
        })
        .await;
    }

    #[tokio::test]
    async fn download_links_are_signed_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileBlobStore::open(dir.path(), "http://127.0.0.1:3000/", [7; 32]).unwrap();
        let url = store.download_url("t1/e.csv", Duration::from_secs(60)).await.unwrap();
        let query = url.split_once('?').unwrap().1;
        let mut expires = 0;
        let mut sig = "";
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("sig", v) => sig = v,
                _ => {}
            }
        }
        assert!(url.starts_with("http://127.0.0.1:3000/blobs/t1/e.csv?"));
        let now = expires - 60;
        assert!(store.verify_download("t1/e.csv", expires, sig, now));
        assert!(!store.verify_download("t1/e.csv", expires, sig, expires + 1), "expired");
        assert!(!store.verify_download("t2/e.csv", expires, sig, now), "another key");
        assert!(!store.verify_download("t1/e.csv", expires + 3600, sig, now), "extended expiry");
        let other = FileBlobStore::open(dir.path(), "http://127.0.0.1:3000", [8; 32]).unwrap();
        assert!(!other.verify_download("t1/e.csv", expires, sig, now), "another signing key");
    }
}
