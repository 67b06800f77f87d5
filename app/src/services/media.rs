//! Media messages (SPEC 3.4, 5.2): files uploaded to Parley for sending,
//! WhatsApp's limits checked before a media message is queued, the upload to
//! WhatsApp before a send by Parley blob, and the file of every inbound media
//! message fetched into the blob store while WhatsApp still holds it.

use bytes::Bytes;
use parley_domain::media::{self, MediaKind, MediaUploaded, StoredMedia};
use parley_domain::{content, ids, Event};
use parley_whatsapp::media::sha256_matches;
use parley_whatsapp::{Credentials, MediaUpload, RetryPolicy, SendError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::blobs::Blob;
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;
use crate::services::sender::{backoff, Next, OutboundJob};

/// Attempts at fetching one inbound file before it is given up as failed.
pub const FETCH_MAX_ATTEMPTS: u32 = 5;

/// The answer to `POST /v1/media`: the id to send the file by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct UploadedMediaOut {
    /// Send the file with `{"<type>": {"blob_id": ...}}`.
    pub blob_id: Uuid,
    pub mime_type: String,
    pub size: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// Why one fetch attempt failed.
enum FetchError {
    /// Worth another attempt (WhatsApp unavailable or rate limited, the
    /// connection dropped).
    Transient(String),
    /// Another attempt cannot succeed (the id expired, the hash differs).
    Permanent(String),
}

impl From<SendError> for FetchError {
    fn from(error: SendError) -> Self {
        // Fetching only reads: unlike a send, an ambiguous failure is safe to repeat.
        let retry = matches!(error, SendError::Ambiguous(_))
            || !matches!(error.retry_policy(), RetryPolicy::Never | RetryPolicy::RefreshCredentialsOnce);
        if retry {
            FetchError::Transient(error.to_string())
        } else {
            FetchError::Permanent(error.to_string())
        }
    }
}

impl App {
    /// `POST /v1/media`: keeps a file for sending and answers its blob id.
    pub async fn upload_media(
        &self,
        caller: &Caller,
        mime_type: &str,
        filename: Option<String>,
        bytes: Bytes,
    ) -> Result<UploadedMediaOut, AppError> {
        caller.require(Role::Agent)?;
        let mime = media::essence(mime_type);
        let animated = mime == "image/webp" && media::webp_is_animated(&bytes);
        media::check_upload(&mime, bytes.len() as u64, animated)?;
        if let Some(name) = &filename {
            if name.is_empty() || name.len() > 240 || name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
                return Err(AppError::validation("filename", "must be 1 to 240 characters, without slashes"));
            }
        }
        let tenant = caller.tenant_id.as_str();
        let blob_id = Uuid::now_v7();
        let blob_key = ids::upload_blob_key(tenant, blob_id);
        let sha256 = hex::encode(parley_whatsapp::media::sha256(&bytes));
        let size = bytes.len() as u64;
        self.blobs.put(&blob_key, bytes, &mime).await?;
        let uploaded = MediaUploaded {
            blob_id,
            blob_key,
            mime_type: mime.clone(),
            size,
            sha256: sha256.clone(),
            animated,
            filename,
            at: self.clock.now(),
        };
        let target = Target { tenant_id: tenant, stream_id: ids::media_stream(tenant, blob_id), wa_id: None };
        self.uploads
            .execute(&target, &Meta::new(caller.actor()), |s| {
                Ok::<_, AppError>(media::record_upload(s, uploaded.clone()))
            })
            .await?;
        Ok(UploadedMediaOut { blob_id, mime_type: mime, size, sha256 })
    }

    /// Checks an outbound media message's Parley blob against WhatsApp's
    /// limits for its type. Files sent by WhatsApp media id or by link are
    /// not held by Parley; WhatsApp checks those.
    pub async fn check_outbound_media(&self, tenant_id: &str, kind: &str, body: &Value) -> Result<(), AppError> {
        let (Some(kind), Some(blob_id)) = (MediaKind::parse(kind), content::media_blob_id(body)) else {
            return Ok(());
        };
        let file = self.uploaded_file(tenant_id, blob_id).await?;
        media::check(kind, &file.mime_type, file.size, file.animated)?;
        Ok(())
    }

    async fn uploaded_file(&self, tenant_id: &str, blob_id: Uuid) -> Result<MediaUploaded, AppError> {
        let loaded = self.uploads.load(&ids::media_stream(tenant_id, blob_id)).await?;
        loaded.state.file.clone().ok_or_else(|| AppError::Media {
            code: "media_not_found",
            detail: format!("no file {blob_id} was uploaded with POST /v1/media"),
        })
    }

    /// The content to send for an outbound message: a file named by Parley
    /// blob id is uploaded to WhatsApp first (once per message) and sent by
    /// the media id WhatsApp gives it.
    pub async fn content_to_send(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        creds: &Credentials,
        content: &Value,
    ) -> Result<Value, SendError> {
        let Some(blob_id) = content::media_blob_id(content) else { return Ok(content.clone()) };
        let internal = |e: AppError| SendError::NotSent(format!("the file could not be read: {e}"));
        let stream_id = ids::message_stream(tenant_id, message_id);
        let known = self.messages.load(&stream_id).await.map_err(internal)?.state.whatsapp_media_id.clone();
        let media_id = match known {
            Some(id) => id,
            None => {
                let file = self.uploaded_file(tenant_id, blob_id).await.map_err(internal)?;
                let blob = self.blobs.get(&file.blob_key).await.map_err(|e| internal(e.into()))?.ok_or_else(|| {
                    SendError::Protocol { http_status: 0, detail: "the uploaded file is gone".into() }
                })?;
                let upload = MediaUpload {
                    mime_type: file.mime_type.clone(),
                    filename: file.filename.clone().unwrap_or_else(|| blob_id.to_string()),
                    bytes: blob.bytes,
                };
                // An upload whose answer was lost can simply be repeated: an
                // unused media id costs nothing and expires.
                let media_id = match self.whatsapp.upload_media(creds, &upload).await {
                    Err(SendError::Ambiguous(detail)) => return Err(SendError::NotSent(detail)),
                    other => other?,
                };
                let now = self.clock.now();
                let target = Target { tenant_id, stream_id, wa_id: None };
                self.messages
                    .execute(&target, &Meta::new("sender"), |m| {
                        Ok::<_, AppError>(media::record_whatsapp_upload(m, &media_id, now))
                    })
                    .await
                    .map_err(|e| internal(e.into()))?;
                media_id
            }
        };
        let mut out = content.clone();
        if let Some(object) = out.as_object_mut() {
            object.remove("blob_id");
            object.insert("id".into(), Value::String(media_id));
        }
        Ok(out)
    }

    /// Fetches an inbound message's file into the blob store: media id ->
    /// URL -> bytes, with the number's token, checked against the SHA-256
    /// WhatsApp gave. Transient failures try again with backoff.
    pub async fn fetch_inbound_media(&self, tenant_id: &str, message_id: Uuid, attempt: u32) -> Result<Next, AppError> {
        let stream_id = ids::message_stream(tenant_id, message_id);
        let state = self.messages.load(&stream_id).await?.state;
        if !media::needs_fetch(&state) {
            return Ok(Next::Done);
        }
        let Some(received) = self.received_message(&stream_id).await? else { return Ok(Next::Done) };
        let outcome = self.fetch_once(tenant_id, message_id, &state.number_id, &received.content).await;
        let now = self.clock.now();
        let target = Target { tenant_id, stream_id, wa_id: Some(&state.wa_id) };
        let meta = Meta::new("media-fetcher");
        match outcome {
            Ok(stored) => {
                self.messages
                    .execute(&target, &meta, |m| Ok::<_, AppError>(media::record_stored(m, stored.clone(), now)))
                    .await?;
                Ok(Next::Done)
            }
            Err(FetchError::Transient(reason)) if attempt < FETCH_MAX_ATTEMPTS => {
                tracing::warn!(%tenant_id, %message_id, attempt, %reason, "inbound media fetch failed; will retry");
                let delay = backoff(attempt).to_std().unwrap_or(std::time::Duration::from_secs(2));
                let job = OutboundJob::FetchMedia { tenant_id: tenant_id.to_owned(), message_id, attempt: attempt + 1 };
                Ok(Next::Again(job, delay))
            }
            Err(FetchError::Transient(reason) | FetchError::Permanent(reason)) => {
                tracing::warn!(%tenant_id, %message_id, attempt, %reason, "inbound media could not be fetched");
                self.messages
                    .execute(&target, &meta, |m| Ok::<_, AppError>(media::record_fetch_failed(m, &reason, now)))
                    .await?;
                Ok(Next::Done)
            }
        }
    }

    async fn fetch_once(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        number_id: &str,
        content: &Value,
    ) -> Result<StoredMedia, FetchError> {
        let media_id = content
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Permanent("the message names no media id".into()))?;
        let number = self
            .number(number_id)
            .await
            .map_err(|e| FetchError::Transient(e.to_string()))?
            .ok_or_else(|| FetchError::Permanent(format!("the number {number_id} is not registered")))?;
        let creds = Credentials { phone_number_id: number.phone_number_id.clone(), access_token: number.access_token };
        let info = self.whatsapp.media_info(&creds, media_id).await?;
        let bytes = self.whatsapp.download_media(&creds, &info.url, media::DOCUMENT_MAX_BYTES).await?;
        // The webhook's hash (base64) is what the customer sent; the
        // look-up's (hex) must agree with it too.
        let webhook_sha = content.get("sha256").and_then(Value::as_str);
        for expected in webhook_sha.into_iter().chain(Some(info.sha256.as_str())) {
            if !sha256_matches(expected, &bytes) {
                return Err(FetchError::Permanent(format!(
                    "sha256_mismatch: the downloaded file does not hash to {expected}"
                )));
            }
        }
        let mime_type = content
            .get("mime_type")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(info.mime_type.as_str())
            .to_owned();
        let blob_key = ids::inbound_media_blob_key(tenant_id, message_id);
        let size = bytes.len() as u64;
        let sha256 = hex::encode(parley_whatsapp::media::sha256(&bytes));
        self.blobs.put(&blob_key, bytes, &mime_type).await.map_err(|e| FetchError::Transient(e.to_string()))?;
        Ok(StoredMedia { blob_key, mime_type, sha256, size })
    }

    /// The received message's event, with its content opened.
    async fn received_message(
        &self,
        stream_id: &str,
    ) -> Result<Option<parley_domain::event::MessageReceived>, AppError> {
        let first = self.store.read_stream(stream_id, 0).await?;
        let Some(first) = first.first() else { return Ok(None) };
        match self.sealer.decode(first).await? {
            Event::MessageReceived(r) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// `GET /v1/messages/{id}/media`: the stored file of one of the caller's
    /// messages.
    pub async fn message_media(&self, caller: &Caller, message_id: Uuid) -> Result<Blob, AppError> {
        let view = self
            .read_models
            .message(&caller.tenant_id, message_id)
            .await?
            .ok_or(AppError::NotFound { what: "message" })?;
        let not_stored = AppError::NotFound { what: "media" };
        if view.deleted {
            return Err(not_stored);
        }
        let key = view.media.and_then(|m| m.blob_key).ok_or(not_stored)?;
        // Keys carry the tenant; a key of another tenant is never served.
        if !key.starts_with(&format!("{}/", caller.tenant_id)) {
            return Err(AppError::NotFound { what: "media" });
        }
        self.blobs.get(&key).await?.ok_or(AppError::NotFound { what: "media" })
    }
}
