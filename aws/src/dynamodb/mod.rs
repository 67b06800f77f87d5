//! DynamoDB adapters: the event store, the idempotency store, the rate
//! limiter's buckets and the read models, plus decoding of the events table's stream records.
//!
//! Every adapter takes an [`aws_sdk_dynamodb::Client`] built once by the
//! caller and the name of its table; `create_table` functions exist for
//! tests and local tools, while deployed tables come from `template.yaml`.

pub mod audit;
pub mod capacity;
pub mod event_store;
pub mod idempotency;
pub mod ops;
pub mod rate_limiter;
pub mod read_models;
pub mod search;
pub mod stream;

pub use audit::DynamoAuditLog;
pub use capacity::{CapacityMeter, CapacityUnits};
pub use event_store::DynamoEventStore;
pub use idempotency::DynamoIdempotency;
pub use ops::DynamoOpsReadModels;
pub use rate_limiter::DynamoRateLimiter;
pub use read_models::DynamoReadModels;
pub use search::DynamoSearchIndex;
pub use stream::{recorded_events_from_stream, StreamDecodeError};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use parley_events::StoreError;

/// An SDK failure as the event store port reports it: with the full chain
/// of causes, which the SDK's own `Display` leaves out.
pub(crate) fn unavailable<E: std::error::Error>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}
