//! Media messages (image, document, audio, video, sticker): the Cloud API's
//! size and type limits, files uploaded to Parley for sending, and the file
//! of an inbound media message fetched into Parley's blob store.
//!
//! The limits are WhatsApp's documented caps for sending; a file over them
//! is refused before anything is queued, since WhatsApp would only refuse it
//! later (error 131053) after the customer-facing send was promised.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Direction, Event};
use crate::message::Message;

const MB: u64 = 1024 * 1024;
const KB: u64 = 1024;

/// Audio: AAC, AMR, MP3, MP4 audio, OGG (Opus), at most 16 MB.
pub const AUDIO_MAX_BYTES: u64 = 16 * MB;
pub const AUDIO_TYPES: &[&str] = &["audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"];

/// Documents: PDF, Office and plain text, at most 100 MB.
pub const DOCUMENT_MAX_BYTES: u64 = 100 * MB;
pub const DOCUMENT_TYPES: &[&str] = &[
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// Images: JPEG and PNG, at most 5 MB.
pub const IMAGE_MAX_BYTES: u64 = 5 * MB;
pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png"];

/// Stickers: WebP, at most 100 KB static or 500 KB animated.
pub const STICKER_STATIC_MAX_BYTES: u64 = 100 * KB;
pub const STICKER_ANIMATED_MAX_BYTES: u64 = 500 * KB;
pub const STICKER_TYPES: &[&str] = &["image/webp"];

/// Video: MP4 and 3GPP, at most 16 MB.
pub const VIDEO_MAX_BYTES: u64 = 16 * MB;
pub const VIDEO_TYPES: &[&str] = &["video/mp4", "video/3gpp"];

/// The message types that carry a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Document,
    Image,
    Sticker,
    Video,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] =
        [MediaKind::Audio, MediaKind::Document, MediaKind::Image, MediaKind::Sticker, MediaKind::Video];

    /// The kind a message type names, if it carries a file.
    pub fn parse(kind: &str) -> Option<MediaKind> {
        MediaKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Image => "image",
            MediaKind::Sticker => "sticker",
            MediaKind::Video => "video",
        }
    }

    /// The MIME types WhatsApp accepts for this kind.
    pub fn types(self) -> &'static [&'static str] {
        match self {
            MediaKind::Audio => AUDIO_TYPES,
            MediaKind::Document => DOCUMENT_TYPES,
            MediaKind::Image => IMAGE_TYPES,
            MediaKind::Sticker => STICKER_TYPES,
            MediaKind::Video => VIDEO_TYPES,
        }
    }

    /// The largest file of this kind; stickers depend on being animated.
    pub fn max_bytes(self, animated: bool) -> u64 {
        match self {
            MediaKind::Audio => AUDIO_MAX_BYTES,
            MediaKind::Document => DOCUMENT_MAX_BYTES,
            MediaKind::Image => IMAGE_MAX_BYTES,
            MediaKind::Sticker if animated => STICKER_ANIMATED_MAX_BYTES,
            MediaKind::Sticker => STICKER_STATIC_MAX_BYTES,
            MediaKind::Video => VIDEO_MAX_BYTES,
        }
    }
}

/// Whether a message type carries a file.
pub fn is_media_kind(kind: &str) -> bool {
    MediaKind::parse(kind).is_some()
}

/// A MIME type without parameters, lower case: `audio/ogg; codecs=opus`
/// is `audio/ogg`.
pub fn essence(mime_type: &str) -> String {
    mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Why a file cannot be sent as a message of some type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct MediaRefusal {
    /// Stable code: `media_type_unsupported`, `media_too_large` or `media_empty`.
    pub code: &'static str,
    pub detail: String,
}

pub const MEDIA_TYPE_UNSUPPORTED: &str = "media_type_unsupported";
pub const MEDIA_TOO_LARGE: &str = "media_too_large";
pub const MEDIA_EMPTY: &str = "media_empty";

/// Checks a file against WhatsApp's limits for a message of `kind`.
pub fn check(kind: MediaKind, mime_type: &str, size: u64, animated: bool) -> Result<(), MediaRefusal> {
    let mime = essence(mime_type);
    if !kind.types().contains(&mime.as_str()) {
        return Err(MediaRefusal {
            code: MEDIA_TYPE_UNSUPPORTED,
            detail: format!("{} messages take {}, not {mime}", kind.as_str(), kind.types().join(", ")),
        });
    }
    if size == 0 {
        return Err(MediaRefusal { code: MEDIA_EMPTY, detail: "the file is empty".into() });
    }
    let max = kind.max_bytes(animated);
    if size > max {
        let what = match kind {
            MediaKind::Sticker if animated => "animated sticker",
            MediaKind::Sticker => "static sticker",
            other => other.as_str(),
        };
        return Err(MediaRefusal {
            code: MEDIA_TOO_LARGE,
            detail: format!("a {what} may be at most {max} bytes; this file has {size}"),
        });
    }
    Ok(())
}

/// Checks a file uploaded for later sending: its type must suit some kind of
/// message, and its size that kind's largest cap. The send checks the
/// kind's own limit again.
pub fn check_upload(mime_type: &str, size: u64, animated: bool) -> Result<(), MediaRefusal> {
    let mime = essence(mime_type);
    let kinds: Vec<MediaKind> = MediaKind::ALL.into_iter().filter(|k| k.types().contains(&mime.as_str())).collect();
    let Some(kind) = kinds.iter().copied().max_by_key(|k| k.max_bytes(animated)) else {
        let all: Vec<&str> = MediaKind::ALL.iter().flat_map(|k| k.types().iter().copied()).collect();
        return Err(MediaRefusal {
            code: MEDIA_TYPE_UNSUPPORTED,
            detail: format!("WhatsApp sends only {}; not {mime}", all.join(", ")),
        });
    };
    check(kind, &mime, size, animated)
}

/// Whether a WebP file is animated: its extended header (`VP8X`) has the
/// animation flag set.
pub fn webp_is_animated(bytes: &[u8]) -> bool {
    const ANIMATION_FLAG: u8 = 0x02;
    bytes.len() > 20 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" && &bytes[12..16] == b"VP8X" && {
        bytes[20] & ANIMATION_FLAG != 0
    }
}

/// A file uploaded to Parley for sending (stream `{tenant}/media/{blob_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaUploaded {
    pub blob_id: Uuid,
    pub blob_key: String,
    pub mime_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// An animated WebP (stickers have a larger cap).
    pub animated: bool,
    pub filename: Option<String>,
    pub at: DateTime<Utc>,
}

/// An uploaded file: what its stream says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadedFile {
    pub file: Option<MediaUploaded>,
}

impl UploadedFile {
    pub fn evolve(mut self, event: &Event) -> Self {
        if let Event::MediaUploaded(uploaded) = event {
            self.file = Some(uploaded.clone());
        }
        self
    }
}

/// Records an upload once.
pub fn record_upload(state: &UploadedFile, uploaded: MediaUploaded) -> Vec<Event> {
    if state.file.is_some() {
        return Vec::new();
    }
    vec![Event::MediaUploaded(uploaded)]
}

/// Where an inbound message's file stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InboundMedia {
    /// Not a media message, or not fetched yet.
    #[default]
    NotFetched,
    Stored {
        blob_key: String,
        mime_type: String,
    },
    Failed {
        reason: String,
    },
}

/// An inbound file fetched and checked against WhatsApp's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    pub blob_key: String,
    pub mime_type: String,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub size: u64,
}

/// Whether an inbound message's file still needs fetching.
pub fn needs_fetch(state: &Message) -> bool {
    state.direction == Some(Direction::Inbound)
        && is_media_kind(&state.kind)
        && !state.deleted
        && state.inbound_media == InboundMedia::NotFetched
}

/// Records the fetched file once.
pub fn record_stored(state: &Message, stored: StoredMedia, now: DateTime<Utc>) -> Vec<Event> {
    if !needs_fetch(state) {
        return Vec::new();
    }
    vec![Event::MessageMediaStored {
        blob_key: stored.blob_key,
        mime_type: stored.mime_type,
        sha256: stored.sha256,
        size: stored.size,
        at: now,
    }]
}

/// Records that the file could not be fetched, for good.
pub fn record_fetch_failed(state: &Message, reason: &str, now: DateTime<Utc>) -> Vec<Event> {
    if !needs_fetch(state) {
        return Vec::new();
    }
    vec![Event::MessageMediaFetchFailed { reason: reason.to_owned(), at: now }]
}

/// Records the media id WhatsApp gave an outbound message's uploaded file,
/// so a retried send does not upload it again.
pub fn record_whatsapp_upload(state: &Message, media_id: &str, now: DateTime<Utc>) -> Vec<Event> {
    if state.direction != Some(Direction::Outbound) || state.whatsapp_media_id.is_some() {
        return Vec::new();
    }
    vec![Event::MessageMediaUploaded { media_id: media_id.to_owned(), at: now }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_types_and_cap() {
        assert!(check(MediaKind::Image, "image/jpeg", IMAGE_MAX_BYTES, false).is_ok());
        let too_big = check(MediaKind::Image, "image/png", IMAGE_MAX_BYTES + 1, false).unwrap_err();
        assert_eq!(too_big.code, MEDIA_TOO_LARGE);
        assert_eq!(check(MediaKind::Image, "image/gif", 10, false).unwrap_err().code, MEDIA_TYPE_UNSUPPORTED);
        assert!(check(MediaKind::Audio, "audio/ogg; codecs=opus", AUDIO_MAX_BYTES, false).is_ok());
        assert_eq!(check(MediaKind::Audio, "audio/wav", 10, false).unwrap_err().code, MEDIA_TYPE_UNSUPPORTED);
        assert!(check(MediaKind::Video, "video/3gpp", VIDEO_MAX_BYTES, false).is_ok());
        assert!(check(MediaKind::Video, "video/mp4", VIDEO_MAX_BYTES + 1, false).is_err());
        assert!(check(MediaKind::Document, "application/pdf", DOCUMENT_MAX_BYTES, false).is_ok());
        assert!(check(MediaKind::Document, "application/pdf", DOCUMENT_MAX_BYTES + 1, false).is_err());
        assert!(check(MediaKind::Document, "application/zip", 10, false).is_err());
        assert_eq!(check(MediaKind::Document, "text/plain", 0, false).unwrap_err().code, MEDIA_EMPTY);
    }

    #[test]
    fn stickers_are_webp_with_a_larger_cap_when_animated() {
        let over_static = STICKER_STATIC_MAX_BYTES + 1;
        assert!(check(MediaKind::Sticker, "image/webp", over_static, false).is_err());
        assert!(check(MediaKind::Sticker, "image/webp", over_static, true).is_ok());
        assert!(check(MediaKind::Sticker, "image/webp", STICKER_ANIMATED_MAX_BYTES + 1, true).is_err());
        assert!(check(MediaKind::Sticker, "image/png", 10, false).is_err());
        let mut animated = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        animated.extend([0x02, 0, 0, 0]);
        assert!(webp_is_animated(&animated));
        animated[20] = 0x10;
        assert!(!webp_is_animated(&animated), "alpha flag only");
        assert!(!webp_is_animated(b"RIFF\0\0\0\0WEBPVP8 still image"));
    }

    #[test]
    fn uploads_take_the_largest_cap_of_any_kind() {
        // A WebP larger than a sticker may be: no kind takes it.
        assert!(check_upload("image/webp", STICKER_STATIC_MAX_BYTES + 1, false).is_err());
        assert!(check_upload("application/pdf", DOCUMENT_MAX_BYTES, false).is_ok());
        assert_eq!(check_upload("application/x-msdownload", 10, false).unwrap_err().code, MEDIA_TYPE_UNSUPPORTED);
    }
}
