//! Parley's executables share this wiring: the local all-in-one runtime
//! (SPEC 1.1) composes the application from embedded adapters, and each
//! Lambda binary serves the same router or handlers.

#[cfg(feature = "lambda")]
pub mod handlers;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod local;
pub mod telemetry;
