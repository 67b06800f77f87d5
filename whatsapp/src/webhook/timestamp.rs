//! Serde support for the Cloud API's timestamps: Unix seconds, usually sent as
//! a decimal string (`"1749416383"`), sometimes as a JSON number (the
//! `user_preferences` field). Both are read; strings are written, as Meta does
//! for messages and statuses.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Converts Unix seconds into a UTC time, `None` when out of chrono's range.
pub fn from_unix_seconds(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// Writes a time as a string of Unix seconds (sub-second precision is dropped,
/// as the wire format has none).
pub fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&time.timestamp())
}

/// Reads Unix seconds given as a string or as an integer.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_any(UnixSecondsVisitor)
}

struct UnixSecondsVisitor;

impl UnixSecondsVisitor {
    fn convert<E: de::Error>(seconds: i64) -> Result<DateTime<Utc>, E> {
        from_unix_seconds(seconds).ok_or_else(|| E::custom(format!("timestamp {seconds} is out of range")))
    }
}

impl Visitor<'_> for UnixSecondsVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unix seconds as a string or an integer")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        let seconds = value.trim().parse::<i64>().map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))?;
        Self::convert(seconds)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Self::convert(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        let seconds = i64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))?;
        Self::convert(seconds)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Stamp(#[serde(with = "super")] DateTime<Utc>);

    #[test]
    fn strings_and_numbers_read_the_same_instant() {
        let from_text: Stamp = serde_json::from_str("\"1749416383\"").expect("string form");
        let from_number: Stamp = serde_json::from_str("1749416383").expect("number form");
        assert_eq!(from_text.0, from_number.0);
        assert_eq!(from_text.0.timestamp(), 1_749_416_383);
    }

    #[test]
    fn written_as_a_string() {
        let stamp = Stamp(from_unix_seconds(1_749_416_383).expect("in range"));
        assert_eq!(serde_json::to_string(&stamp).expect("serialise"), "\"1749416383\"");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(serde_json::from_str::<Stamp>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<Stamp>("true").is_err());
    }
}
