//! Parley's domain model: pure, deterministic, free of I/O.
//!
//! Each aggregate (contact, conversation, message, business number) is a
//! state folded from its events (`State::evolve`) plus decision functions that
//! take the current state and a command and return the new events, or a typed
//! refusal. Time never comes from a clock here: every decision that depends on
//! it takes `now` as an argument.

pub mod billing;
pub mod contact;
pub mod content;
pub mod conversation;
pub mod directory;
pub mod event;
pub mod handling;
pub mod ids;
pub mod job;
pub mod media;
pub mod message;
pub mod number;
pub mod optout;
pub mod policy;
pub mod ratelimit;
pub mod search;
pub mod status;
pub mod template;
pub mod tenant;
pub mod user;
pub mod wamid;
pub mod window;

pub use event::Event;
