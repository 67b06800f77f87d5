//! Counting the capacity units an adapter consumes.
//!
//! Every request asks DynamoDB for its consumed capacity (`TOTAL`, which
//! costs nothing extra) and adds it here, so a process can log or export what
//! its traffic costs, and `aws/examples/capacity.rs` can measure the units of
//! each use case. Refused conditional writes are billed too, but their error
//! responses carry no capacity: they are not counted.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;

/// Read and write units consumed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CapacityUnits {
    pub read: f64,
    pub write: f64,
}

/// Whether a request reads or writes (`TOTAL` reports one number for both).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Read,
    Write,
}

/// A running total of consumed capacity, in thousandths of a unit.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

impl CapacityMeter {
    /// Adds the capacity one response reports.
    pub(crate) fn record<'a>(&self, kind: Kind, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let units: f64 = consumed.into_iter().filter_map(ConsumedCapacity::capacity_units).sum();
        // Units come in halves and wholes; thousandths keep them exact.
        let milli = (units * 1000.0).round().max(0.0) as u64;
        let counter = match kind {
            Kind::Read => &self.read_milli,
            Kind::Write => &self.write_milli,
        };
        counter.fetch_add(milli, Ordering::Relaxed);
    }

    /// The units consumed since the meter was made.
    pub fn total(&self) -> CapacityUnits {
        CapacityUnits {
            read: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}
