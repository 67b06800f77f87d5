//! Opaque pagination cursors: the sort key of the last item returned.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::error::AppError;

pub fn encode(sort_micros: i64, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{sort_micros}:{id}"))
}

pub fn decode(cursor: &str) -> Result<(i64, Uuid), AppError> {
    let bad = || AppError::validation("cursor", "is not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
    Ok((micros.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

/// A cursor after the row with this text key (contacts list by `wa_id`).
pub fn encode_key(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("key:{key}"))
}

pub fn decode_key(cursor: &str) -> Result<String, AppError> {
    let bad = || AppError::validation("cursor", "is not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(raw).ok().and_then(|s| s.strip_prefix("key:").map(str::to_owned)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode(&encode(123, id)).unwrap(), (123, id));
        assert!(decode("not a cursor").is_err());
        assert_eq!(decode_key(&encode_key("4917")).unwrap(), "4917");
        assert!(decode_key(&encode(123, id)).is_err());
    }
}
