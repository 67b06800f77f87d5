//! Parley's event infrastructure: the envelope of every domain event, a codec
//! with schema versions and upcasting, the event store port with its SQLite and
//! in-memory adapters, and the projection runner that feeds read models.

pub mod bus;
pub mod checkpoint;
pub mod codec;
pub mod envelope;
pub mod memory;
pub mod projection;
pub mod sqlite;
pub mod store;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use bus::{BusError, InProcessBus, IntegrationBus, IntegrationEvent, IntegrationPublisher};
pub use checkpoint::SqliteCheckpoints;
pub use codec::{CodecError, EventCodec, Upcast, Upcasters};
pub use envelope::{NewEvent, RecordedEvent};
pub use memory::MemoryEventStore;
pub use projection::{Projection, ProjectionError, ProjectionRunner};
pub use sqlite::SqliteEventStore;
pub use store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};
