//! The S3 blob store against the emulator: the blob port's conformance suite,
//! and presigned links that really download the bytes.

mod emulator;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parley_app::blobs::{conformance, BlobStore};
use parley_aws::s3::S3BlobStore;

/// A store on a fresh bucket.
async fn store() -> S3BlobStore {
    let client = S3BlobStore::client(&emulator::sdk_config().await);
    let bucket = emulator::unique("blobs");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    S3BlobStore::new(client, bucket)
}

#[tokio::test]
async fn s3_blob_store_conforms() {
    conformance::run_blob_suite(|| async { Arc::new(store().await) as Arc<dyn BlobStore> }).await;
}

#[tokio::test]
async fn a_presigned_link_downloads_the_bytes() {
    let store = store().await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.put("t1/exports/job-1.csv", Bytes::from(bytes.clone()), "text/csv").await.unwrap();
    let url = store.download_url("t1/exports/job-1.csv", Duration::from_secs(300)).await.unwrap();
    assert!(url.starts_with(&emulator::endpoint()), "path-style on the emulator: {url}");
    assert!(url.contains(&format!("/{}/t1/exports/job-1.csv?", store.bucket())), "{url}");
    assert!(url.contains("X-Amz-Expires=300"), "{url}");

    let response = reqwest::get(&url).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["content-type"], "text/csv");
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn listing_follows_pages_past_a_thousand_keys() {
    let store = Arc::new(store().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1005 {
        let store = store.clone();
        tasks.spawn(async move { store.put(&format!("t1/k/{i:04}"), Bytes::from_static(b"x"), "text/plain").await });
        if tasks.len() >= 16 {
            tasks.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let keys = store.list("t1/k/").await.unwrap();
    assert_eq!(keys.len(), 1005);
    assert_eq!(keys.first().map(String::as_str), Some("t1/k/0000"));
    assert_eq!(keys.last().map(String::as_str), Some("t1/k/1004"));
}

#[tokio::test]
async fn reads_of_bad_keys_are_refused_before_any_call() {
    let store = store().await;
    for key in ["../x", "a//b", ""] {
        assert!(store.get(key).await.is_err(), "{key:?}");
        assert!(store.delete(key).await.is_err(), "{key:?}");
        assert!(store.download_url(key, Duration::from_secs(1)).await.is_err(), "{key:?}");
    }
}
