//! The blob store on Amazon S3.
//!
//! One bucket per deployment; keys are the port's keys unchanged (they start
//! with the tenant). Download links are presigned `GetObject` URLs, so the
//! bytes never pass through a Lambda function.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use parley_app::blobs::{validate_key, Blob, BlobError, BlobStore};

/// S3 refuses presigned URLs valid for longer than seven days.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A [`BlobStore`] on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3BlobStore { client, bucket: bucket.into() }
    }

    /// The S3 client for `config`. With an endpoint override (an emulator on
    /// loopback) requests are path-style: `http://127.0.0.1:PORT/bucket/key`,
    /// since bucket subdomains of an IP address do not resolve.
    pub fn client(config: &SdkConfig) -> Client {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
        Client::from_conf(s3)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        validate_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetObjectError::NoSuchKey(_)) => return Ok(None),
            Err(e) => return Err(sdk_error(e)),
        };
        let content_type = out.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
        let bytes = out.body.collect().await.map_err(|e| BlobError::Unavailable(e.to_string()))?.into_bytes();
        Ok(Some(Blob { bytes, content_type }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        // S3 answers a delete of a missing key with success, as the port wants.
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        if prefix.chars().any(char::is_control) {
            return Err(BlobError::InvalidKey(format!("{prefix:?}: control characters are not allowed")));
        }
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_error)?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        keys.sort();
        Ok(keys)
    }

    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        validate_key(key)?;
        let presigning = PresigningConfig::expires_in(expires_in.min(MAX_LINK_LIFETIME))
            .map_err(|e| BlobError::Unavailable(format!("link lifetime: {e}")))?;
        let request =
            self.client.get_object().bucket(&self.bucket).key(key).presigned(presigning).await.map_err(sdk_error)?;
        Ok(request.uri().to_owned())
    }
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> BlobError {
    BlobError::Unavailable(DisplayErrorContext(e).to_string())
}
