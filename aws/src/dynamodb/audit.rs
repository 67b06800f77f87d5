//! The audit log (SPEC 5.1) in the read-model table: one item per audited
//! event, `pk` = `AUDIT#<tenant>`, `sk` = the event's global position
//! zero-padded to 20 digits, so a tenant's entries are one partition read
//! newest first with a descending query.
//!
//! The projector calls [`DynamoAuditLog::apply`] with the events of the
//! stream; an item is keyed by its position and written whole, so a
//! redelivered event rewrites the same item and changes nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use parley_app::error::AppError;
use parley_app::identity::audit::{AuditEntry, AuditLog, AUDITED};
use parley_events::RecordedEvent;

const PK: &str = "pk";
const SK: &str = "sk";
/// The most entries one listing returns.
const MAX_PAGE: usize = 200;

/// The audit log over the read-model table.
pub struct DynamoAuditLog {
    client: Client,
    table: String,
}

fn partition(tenant_id: &str) -> String {
    format!("AUDIT#{tenant_id}")
}

/// 20 digits hold every `u64`, so text order is position order.
fn sort_key(position: u64) -> String {
    format!("{position:020}")
}

fn internal<E: std::error::Error>(error: E) -> AppError {
    AppError::internal(DisplayErrorContext(error))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoAuditLog {
    /// `table` is the read-model table (`DynamoReadModels::create_table` makes it).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAuditLog { client, table: table.into() }
    }

    /// Records the audited events among `events`; the others are skipped.
    pub async fn apply(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        for event in events.iter().filter(|e| AUDITED.contains(&e.event_type.as_str())) {
            self.client
                .put_item()
                .table_name(&self.table)
                .item(PK, s(partition(&event.tenant_id)))
                .item(SK, s(sort_key(event.global_position)))
                .item("at", s(event.occurred_at.to_rfc3339()))
                .item("type", s(&event.event_type))
                .item("actor", s(&event.actor))
                .item("subject", s(&event.stream_id))
                .item("data", s(event.data.to_string()))
                .send()
                .await
                .map_err(internal)?;
        }
        Ok(())
    }
}

fn entry(item: &std::collections::HashMap<String, AttributeValue>) -> Result<AuditEntry, AppError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| AppError::internal(format!("audit item without {name}")))
    };
    Ok(AuditEntry {
        id: text(SK)?.parse().map_err(AppError::internal)?,
        at: DateTime::parse_from_rfc3339(&text("at")?).map_err(AppError::internal)?.with_timezone(&Utc),
        event_type: text("type")?,
        actor: text("actor")?,
        subject: text("subject")?,
        data: serde_json::from_str(&text("data")?)?,
    })
}

#[async_trait]
impl AuditLog for DynamoAuditLog {
    async fn list(&self, tenant_id: &str, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, AppError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(partition(tenant_id)))
            .expression_attribute_values(":before", s(sort_key(before.unwrap_or(u64::MAX))))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(internal)?;
        out.items().iter().map(entry).collect()
    }
}
