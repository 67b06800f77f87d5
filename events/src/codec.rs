//! Encoding domain events into envelopes and decoding them back, upcasting
//! old schema versions on read.
//!
//! Domain event enums serialize adjacently tagged: `{"type": "MessageSent", "data": {...}}`.
//! The codec splits that into the envelope's `type` and `data` and stamps the
//! current schema version of that type. On read, `Upcasters` lift `data` from
//! the stored schema version to the current one, step by step, before serde
//! sees it. Stored events are never rewritten.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapDeserializer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// One upcast step: takes `data` as stored at schema version `n` of an event
/// type and returns it as schema version `n + 1` expects it.
pub type Upcast = fn(Value) -> Value;

/// The name of the envelope field that carries the event type in the tagged form.
const TAG: &str = "type";
/// The name of the envelope field that carries the payload in the tagged form.
const CONTENT: &str = "data";

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The stored type names no variant of the event enum.
    #[error("unknown event type {event_type}")]
    UnknownType { event_type: String },
    /// The event was written by newer code than this one.
    #[error("event type {event_type} has schema version {stored}, this code knows up to {current}")]
    VersionTooNew { event_type: String, stored: u32, current: u32 },
    /// No upcast step lifts this event type from this schema version.
    #[error("no upcast registered for event type {event_type} from schema version {from_version}")]
    MissingUpcast { event_type: String, from_version: u32 },
    /// The data does not match what the (upcast) event type expects.
    #[error("event type {event_type} (schema version {schema_version}) has bad data: {source}")]
    BadData {
        event_type: String,
        schema_version: u32,
        #[source]
        source: serde_json::Error,
    },
    /// The value to encode does not serialize as an adjacently tagged enum.
    #[error("event does not serialize as {{\"type\": .., \"data\": ..}}: {0}")]
    NotTagged(String),
    /// Serialization itself failed (for example a map with non-string keys).
    #[error("event could not be serialized: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// The registry of upcast steps and current schema versions, per event type.
#[derive(Debug, Clone, Default)]
pub struct Upcasters {
    types: HashMap<String, TypeSchema>,
}

/// What the registry knows of one event type.
#[derive(Debug, Clone, Default)]
struct TypeSchema {
    /// Steps by the version they lift from.
    steps: BTreeMap<u32, Upcast>,
    /// A version declared without (or beyond) steps.
    explicit: u32,
}

impl TypeSchema {
    fn current(&self) -> u32 {
        let from_steps = self.steps.last_key_value().map_or(1, |(from, _)| from.saturating_add(1));
        from_steps.max(self.explicit).max(1)
    }
}

impl Upcasters {
    /// An empty registry: every event type is at schema version 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that lifts `event_type` data from `from_version`
    /// to `from_version + 1`. Registering the same step twice replaces it.
    pub fn register(&mut self, event_type: &str, from_version: u32, step: Upcast) -> &mut Self {
        self.types.entry(event_type.to_owned()).or_default().steps.insert(from_version, step);
        self
    }

    /// Builder form of [`Upcasters::register`].
    pub fn with(mut self, event_type: &str, from_version: u32, step: Upcast) -> Self {
        self.register(event_type, from_version, step);
        self
    }

    /// Declares the current schema version of `event_type` explicitly, for a
    /// version bump that registers no step yet. The current version is never
    /// lower than the highest registered step + 1.
    pub fn set_current_version(&mut self, event_type: &str, version: u32) -> &mut Self {
        self.types.entry(event_type.to_owned()).or_default().explicit = version;
        self
    }

    /// The schema version new events of `event_type` are written with:
    /// 1 unless a step or an explicit version says otherwise.
    pub fn current_version(&self, event_type: &str) -> u32 {
        self.types.get(event_type).map_or(1, TypeSchema::current)
    }

    /// Lifts `data` of `event_type` from `schema_version` to the current version.
    pub fn upcast(&self, event_type: &str, schema_version: u32, data: Value) -> Result<Value, CodecError> {
        let current = self.current_version(event_type);
        if schema_version > current {
            return Err(CodecError::VersionTooNew {
                event_type: event_type.to_owned(),
                stored: schema_version,
                current,
            });
        }
        let mut data = data;
        for from_version in schema_version..current {
            let step = self
                .types
                .get(event_type)
                .and_then(|schema| schema.steps.get(&from_version))
                .ok_or_else(|| CodecError::MissingUpcast { event_type: event_type.to_owned(), from_version })?;
            data = step(data);
        }
        Ok(data)
    }
}

/// Turns events of the domain enum `E` into envelope parts and back.
pub struct EventCodec<E> {
    upcasters: Upcasters,
    _event: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for EventCodec<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCodec").field("upcasters", &self.upcasters).finish()
    }
}

impl<E> Clone for EventCodec<E> {
    fn clone(&self) -> Self {
        Self::new(self.upcasters.clone())
    }
}

impl<E> Default for EventCodec<E> {
    fn default() -> Self {
        Self::new(Upcasters::new())
    }
}

impl<E> EventCodec<E> {
    pub fn new(upcasters: Upcasters) -> Self {
        Self { upcasters, _event: PhantomData }
    }

    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }
}

impl<E: Serialize + DeserializeOwned> EventCodec<E> {
    /// Splits `event` into (type, current schema version, data).
    /// A variant without content (a unit variant) has `null` data.
    pub fn encode(&self, event: &E) -> Result<(String, u32, Value), CodecError> {
        let value = serde_json::to_value(event).map_err(CodecError::Serialize)?;
        let Value::Object(mut fields) = value else {
            return Err(CodecError::NotTagged(format!("got {value}")));
        };
        let event_type = match fields.remove(TAG) {
            Some(Value::String(event_type)) => event_type,
            _ => return Err(CodecError::NotTagged(format!("no string \"{TAG}\" field"))),
        };
        let data = fields.remove(CONTENT).unwrap_or(Value::Null);
        if let Some(extra) = fields.keys().next() {
            return Err(CodecError::NotTagged(format!("unexpected field {extra:?}")));
        }
        let schema_version = self.upcasters.current_version(&event_type);
        Ok((event_type, schema_version, data))
    }

    /// Rebuilds the event from stored envelope parts, upcasting `data` from
    /// `schema_version` to the current version first.
    pub fn decode(&self, event_type: &str, schema_version: u32, data: Value) -> Result<E, CodecError> {
        if !is_known_type::<E>(event_type) {
            return Err(CodecError::UnknownType { event_type: event_type.to_owned() });
        }
        let data = self.upcasters.upcast(event_type, schema_version, data)?;
        let mut tagged = Map::with_capacity(2);
        tagged.insert(TAG.to_owned(), Value::String(event_type.to_owned()));
        tagged.insert(CONTENT.to_owned(), data);
        serde_json::from_value(Value::Object(tagged)).map_err(|source| CodecError::BadData {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })
    }
}

/// Whether `event_type` names a variant of `E`.
///
/// Serde offers no list of an enum's variants, but its derived code reports
/// an unknown tag through `Error::unknown_variant`. Feeding `E` a map with
/// only the tag, through an error type that notes that one call, tells an
/// unknown type apart from any other failure (such as the missing data)
/// without looking at error messages.
fn is_known_type<E: DeserializeOwned>(event_type: &str) -> bool {
    let probe = MapDeserializer::<_, TagProbeError>::new(std::iter::once((TAG, event_type)));
    !matches!(E::deserialize(probe), Err(TagProbeError::UnknownVariant))
}

/// The error type of the tag probe in [`is_known_type`].
#[derive(Debug)]
enum TagProbeError {
    UnknownVariant,
    Other,
}

impl fmt::Display for TagProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownVariant => "unknown variant",
            Self::Other => "other",
        })
    }
}

impl std::error::Error for TagProbeError {}

impl serde::de::Error for TagProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Self::Other
    }

    fn unknown_variant(_variant: &str, _expected: &'static [&'static str]) -> Self {
        Self::UnknownVariant
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// v1 of `Sent` had `to`; v2 renamed it `recipient`; v3 added `attempts`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum TestEvent {
        Sent { recipient: String, attempts: u32 },
        Tagged(String),
        Archived,
    }

    fn rename_to_recipient(mut data: Value) -> Value {
        if let Some(fields) = data.as_object_mut() {
            if let Some(to) = fields.remove("to") {
                fields.insert("recipient".to_owned(), to);
            }
        }
        data
    }

    fn add_attempts(mut data: Value) -> Value {
        if let Some(fields) = data.as_object_mut() {
            fields.entry("attempts").or_insert(json!(1));
        }
        data
    }

    fn codec() -> EventCodec<TestEvent> {
        EventCodec::new(Upcasters::new().with("Sent", 1, rename_to_recipient).with("Sent", 2, add_attempts))
    }

    #[test]
    fn current_version_defaults_to_one_and_follows_steps() {
        let codec = codec();
        assert_eq!(codec.upcasters().current_version("Sent"), 3);
        assert_eq!(codec.upcasters().current_version("Tagged"), 1);
    }

    #[test]
    fn explicit_version_raises_but_never_lowers() {
        let mut upcasters = Upcasters::new().with("Sent", 1, rename_to_recipient);
        upcasters.set_current_version("Tagged", 4);
        upcasters.set_current_version("Sent", 1);
        assert_eq!(upcasters.current_version("Tagged"), 4);
        assert_eq!(upcasters.current_version("Sent"), 2);
    }

    #[test]
    fn encode_splits_type_version_and_data() {
        let (event_type, version, data) =
            codec().encode(&TestEvent::Sent { recipient: "447700900001".into(), attempts: 2 }).expect("encodes");
        assert_eq!(event_type, "Sent");
        assert_eq!(version, 3);
        assert_eq!(data, json!({"recipient": "447700900001", "attempts": 2}));

        let (event_type, version, data) = codec().encode(&TestEvent::Tagged("vip".into())).expect("encodes");
        assert_eq!((event_type.as_str(), version, data), ("Tagged", 1, json!("vip")));
    }

    #[test]
    fn round_trips_every_variant_shape() {
        let codec = codec();
        for event in
            [TestEvent::Sent { recipient: "a".into(), attempts: 7 }, TestEvent::Tagged("b".into()), TestEvent::Archived]
        {
            let (event_type, version, data) = codec.encode(&event).expect("encodes");
            let decoded = codec.decode(&event_type, version, data).expect("decodes");
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn decode_upcasts_through_every_step() {
        let from_v1 = codec().decode("Sent", 1, json!({"to": "447700900002"})).expect("decodes v1");
        assert_eq!(from_v1, TestEvent::Sent { recipient: "447700900002".into(), attempts: 1 });

        let from_v2 = codec().decode("Sent", 2, json!({"recipient": "447700900003"})).expect("decodes v2");
        assert_eq!(from_v2, TestEvent::Sent { recipient: "447700900003".into(), attempts: 1 });
    }

    #[test]
    fn unknown_type_is_reported_as_such() {
        let err = codec().decode("Exploded", 1, json!({})).expect_err("unknown");
        assert!(matches!(err, CodecError::UnknownType { ref event_type } if event_type == "Exploded"), "{err}");
        // Even with a version the code could not know either: the type is the first problem.
        let err = codec().decode("Exploded", 9, json!({})).expect_err("unknown");
        assert!(matches!(err, CodecError::UnknownType { .. }), "{err}");
    }

    #[test]
    fn newer_schema_version_is_refused() {
        let err = codec().decode("Sent", 4, json!({"recipient": "x", "attempts": 1})).expect_err("too new");
        assert!(matches!(err, CodecError::VersionTooNew { stored: 4, current: 3, .. }), "{err}");
    }

    #[test]
    fn missing_step_is_reported() {
        let mut upcasters = Upcasters::new();
        upcasters.register("Sent", 2, add_attempts);
        let codec = EventCodec::<TestEvent>::new(upcasters);
        let err = codec.decode("Sent", 1, json!({"to": "x"})).expect_err("gap");
        assert!(
            matches!(err, CodecError::MissingUpcast { from_version: 1, ref event_type } if event_type == "Sent"),
            "{err}"
        );
    }

    #[test]
    fn bad_data_is_reported_with_its_version() {
        let err = codec().decode("Sent", 3, json!({"recipient": 5, "attempts": 1})).expect_err("bad");
        assert!(matches!(err, CodecError::BadData { schema_version: 3, .. }), "{err}");
        let err = codec().decode("Sent", 3, Value::Null).expect_err("missing data");
        assert!(matches!(err, CodecError::BadData { .. }), "{err}");
    }

    #[test]
    fn non_enum_values_are_not_encoded() {
        let codec = EventCodec::<Value>::default();
        let err = codec.encode(&json!([1, 2])).expect_err("array");
        assert!(matches!(err, CodecError::NotTagged(_)), "{err}");
        let err = codec.encode(&json!({"type": "A", "data": 1, "extra": 2})).expect_err("extra");
        assert!(matches!(err, CodecError::NotTagged(_)), "{err}");
    }
}
