//! Encoding domain events into envelopes and decoding them back, upcasting
//! old schema versions on read.
//!
//! Domain event enums serialize adjacently tagged: `{"type": "MessageSent", "data": {...}}`.
//! The codec splits that into the envelope's `type` and `data` and stamps the
//! current schema version of that type. On read, `Upcasters` lift `data` from
//! the stored schema version to the current one, step by step, before serde
//! sees it. Stored events are never rewritten.

// TO BE IMPLEMENTED:
// pub type Upcast = fn(serde_json::Value) -> serde_json::Value;
// pub struct Upcasters { .. }  // register(event_type, from_version, Upcast), current_version(event_type) -> u32 (1 by default)
// pub struct EventCodec<E> { upcasters: Upcasters, _e: PhantomData<E> }
//   fn new(upcasters) ; fn encode(&self, &E) -> Result<(String /*type*/, u32 /*schema*/, serde_json::Value /*data*/), CodecError>
//   fn decode(&self, event_type: &str, schema_version: u32, data: serde_json::Value) -> Result<E, CodecError>
// pub enum CodecError (thiserror)
