//! The simulator's media store: what numbers uploaded, kept in memory and
//! bounded, so that sends by media id, look-ups and downloads work locally.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

/// Bytes of media the simulator keeps; the oldest files go first.
pub const MEDIA_STORE_BYTES: usize = 256 * 1024 * 1024;

/// One stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// The number that uploaded it: only its token may read it.
    pub phone_number_id: String,
    pub mime_type: String,
    pub bytes: Bytes,
}

/// Files by media id, bounded by total size.
#[derive(Debug, Default)]
pub struct MediaStore {
    files: HashMap<String, StoredMedia>,
    order: VecDeque<String>,
    total: usize,
    next_id: u64,
}

impl MediaStore {
    /// Stores a file and answers its new id.
    pub fn insert(&mut self, media: StoredMedia) -> String {
        while self.total + media.bytes.len() > MEDIA_STORE_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(gone) = self.files.remove(&oldest) {
                self.total -= gone.bytes.len();
            }
        }
        self.next_id += 1;
        // Graph media ids are long decimal numbers; a random part keeps ids
        // from repeating across restarts of the simulator.
        let id = format!("{}{:06}", 7_000_000_000u64 + u64::from(rand::random::<u32>() % 1_000_000_000), self.next_id);
        self.total += media.bytes.len();
        self.files.insert(id.clone(), media);
        self.order.push_back(id.clone());
        id
    }

    pub fn get(&self, id: &str) -> Option<&StoredMedia> {
        self.files.get(id)
    }
}

/// A well-formed upload form.
#[derive(Debug)]
pub struct Upload {
    /// The `type` field: the file's MIME type.
    pub kind: String,
    pub filename: Option<String>,
    pub bytes: Bytes,
}

/// Reads and checks an upload the way the Graph API does: the fields
/// `messaging_product` (`whatsapp`), `type` and `file`, the file non-empty
/// and of the type named. Each failure is a reason answered as code 100.
pub async fn read_upload(mut form: axum::extract::Multipart) -> Result<Upload, String> {
    let (mut product, mut kind, mut file) = (None, None, None);
    while let Some(field) = form.next_field().await.map_err(|e| format!("multipart: {e}"))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "messaging_product" => product = Some(field.text().await.map_err(|e| e.to_string())?),
            "type" => kind = Some(field.text().await.map_err(|e| e.to_string())?),
            "file" => {
                let filename = field.file_name().map(str::to_owned);
                let content_type = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                file = Some((filename, content_type, bytes));
            }
            other => return Err(format!("unknown form field {other:?}")),
        }
    }
    if product.as_deref() != Some(crate::send::MESSAGING_PRODUCT) {
        return Err("messaging_product must be whatsapp".to_owned());
    }
    let kind = kind.filter(|k| !k.is_empty()).ok_or("the type field is required")?;
    let (filename, content_type, bytes) = file.ok_or("the file field is required")?;
    if bytes.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if content_type.as_deref() != Some(kind.as_str()) {
        return Err(format!("the file's content type {content_type:?} is not the type {kind:?}"));
    }
    Ok(Upload { kind, filename, bytes })
}

/// Completes an inbound media object the way WhatsApp's webhooks show it:
/// a message naming a stored media id gets its `mime_type` and base64
/// `sha256`, unless given.
pub fn complete_inbound(store: &MediaStore, content: &mut Value) {
    let Some(object) = content.as_object_mut() else { return };
    let Some(media) = object.get("id").and_then(Value::as_str).and_then(|id| store.get(id)) else { return };
    let digest = base64::engine::general_purpose::STANDARD.encode(crate::media::sha256(&media.bytes));
    object.entry("mime_type").or_insert_with(|| Value::String(media.mime_type.clone()));
    object.entry("sha256").or_insert_with(|| Value::String(digest));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_files_make_room() {
        let mut store = MediaStore::default();
        let big = Bytes::from(vec![0u8; MEDIA_STORE_BYTES / 2 + 1]);
        let file = |bytes: &Bytes| StoredMedia {
            phone_number_id: "1".into(),
            mime_type: "image/png".into(),
            bytes: bytes.clone(),
        };
        let first = store.insert(file(&big));
        let second = store.insert(file(&big));
        assert!(store.get(&first).is_none(), "evicted");
        assert!(store.get(&second).is_some());
        assert_ne!(first, second);
    }

    #[test]
    fn inbound_media_gets_type_and_hash() {
        let mut store = MediaStore::default();
        let id = store.insert(StoredMedia {
            phone_number_id: "1".into(),
            mime_type: "image/jpeg".into(),
            bytes: Bytes::from_static(b"jpeg"),
        });
        let mut content = serde_json::json!({ "id": id });
        complete_inbound(&store, &mut content);
        assert_eq!(content["mime_type"], "image/jpeg");
        assert!(crate::media::sha256_matches(content["sha256"].as_str().unwrap(), b"jpeg"));
    }
}
