//! The analytics read model (SPEC 5.8): counts per tenant, day and business
//! number, first-response samples and template usage.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::NaiveDate;
use parley_events::RecordedEvent;
use uuid::Uuid;

use crate::error::AppError;
use crate::sealing::EventSealer;

/// One day of one business number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DailyCounts {
    pub inbound: u64,
    pub outbound: u64,
    /// Outbound messages created that day that were delivered (or read) by now.
    pub delivered: u64,
    pub read: u64,
    pub failed: u64,
    /// Failed outbound messages by Parley's error kind.
    pub failed_by_kind: BTreeMap<String, u64>,
    /// Template sends by template name.
    pub templates: BTreeMap<String, u64>,
    /// First-response times (seconds) of conversations answered that day.
    pub first_response_secs: Vec<i64>,
}

/// Everything a summary needs for a range of days, keyed by day and number.
pub type DailyRows = BTreeMap<(NaiveDate, String), DailyCounts>;

#[async_trait]
pub trait AnalyticsReadModel: Send + Sync + 'static {
    /// All rows of `tenant_id` with `from <= day <= to`, optionally for one number.
    async fn daily(
        &self,
        tenant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
        number_id: Option<&str>,
    ) -> Result<DailyRows, AppError>;
}

/// Template names of the template sends in `events`, opened from their
/// sealed content: every adapter's projection counts template sends by name.
pub async fn template_names(sealer: &EventSealer, events: &[RecordedEvent]) -> Result<HashMap<Uuid, String>, AppError> {
    let mut names = HashMap::new();
    for e in events.iter().filter(|e| e.event_type == "MessageQueued" && e.data["kind"] == "template") {
        let Some(id) = e.data["message_id"].as_str().and_then(|s| s.parse().ok()) else { continue };
        let content = sealer.open_value(&e.data["content"]).await?;
        if let Some(name) = content["name"].as_str() {
            names.insert(id, name.to_owned());
        }
    }
    Ok(names)
}
