//! The CSV export of a tenant's messages (SPEC 5.2): a job that walks the
//! message read model page by page, newest first, keeps the rows that match
//! the filters, opens their content and writes them to one CSV blob. The
//! archived months the range reaches follow (SPEC 6.3: archived data stays
//! exportable), newest first, skipping messages restored to the hot store.

use chrono::{DateTime, Utc};
use parley_domain::job::JobQueued;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;
use crate::ops::Ops;
use crate::readmodel::MessageView;

/// Which messages an export holds; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportFilter {
    pub conversation_id: Option<Uuid>,
    /// The business number's `phone_number_id`.
    pub number_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// queued, sent, delivered, read, played or failed.
    pub status: Option<String>,
    /// Messages created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Messages created before this time.
    pub to: Option<DateTime<Utc>>,
}

impl ExportFilter {
    pub fn validate(&self) -> Result<(), AppError> {
        if let Some(d) = &self.direction {
            if d != "inbound" && d != "outbound" {
                return Err(AppError::validation("direction", "must be inbound or outbound"));
            }
        }
        if let Some(s) = &self.status {
            if !["queued", "sent", "delivered", "read", "played", "failed"].contains(&s.as_str()) {
                return Err(AppError::validation("status", "must be queued, sent, delivered, read, played or failed"));
            }
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(AppError::validation("from", "must be before `to`"));
            }
        }
        Ok(())
    }

    pub fn matches(&self, m: &MessageView) -> bool {
        self.number_id.as_ref().is_none_or(|n| *n == m.number_id)
            && self.conversation_id.is_none_or(|c| c == m.conversation_id)
            && self.direction.as_ref().is_none_or(|d| *d == m.direction)
            && self.status.as_ref().is_none_or(|s| *s == m.status)
            && self.from.is_none_or(|f| m.created_at >= f)
            && self.to.is_none_or(|t| m.created_at < t)
    }
}

/// Rows read from the read model per page.
const PAGE: usize = 500;

const HEADER: [&str; 15] = [
    "id",
    "conversation_id",
    "number_id",
    "wa_id",
    "direction",
    "type",
    "status",
    "wamid",
    "created_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_kind",
    "text",
];

/// The human-readable text of a message's (opened) content: its body or
/// caption, otherwise the content as JSON; empty when erased.
fn text_of(content: &Value) -> String {
    if content.is_null() {
        return String::new();
    }
    for key in ["body", "caption"] {
        if let Some(t) = content[key].as_str() {
            return t.to_owned();
        }
    }
    content.to_string()
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn record(m: &MessageView, text: String) -> [String; 15] {
    [
        m.id.to_string(),
        m.conversation_id.to_string(),
        m.number_id.clone(),
        m.wa_id.clone(),
        m.direction.clone(),
        m.kind.clone(),
        m.status.clone(),
        m.wamid.clone().unwrap_or_default(),
        m.created_at.to_rfc3339(),
        time(m.sent_at),
        time(m.delivered_at),
        time(m.read_at),
        time(m.failed_at),
        m.error.as_ref().and_then(|e| e["kind"].as_str()).unwrap_or_default().to_owned(),
        text,
    ]
}

impl Ops {
    /// Writes the export's CSV blob; returns its key.
    pub async fn export_messages(&self, tenant_id: &str, job: &JobQueued) -> Result<String, AppError> {
        let filter: ExportFilter = serde_json::from_value(job.params.clone())
            .map_err(|e| AppError::validation("params", format!("not an export filter: {e}")))?;
        let total = self.app.read_models.count_messages(tenant_id).await?.max(1);
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(HEADER).map_err(AppError::internal)?;
        let mut seen = 0u64;
        let mut written = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page =
                self.app.read_models.messages(tenant_id, filter.conversation_id, cursor.as_deref(), PAGE).await?;
            for m in page.items.iter().filter(|m| filter.matches(m)) {
                let content = self.app.sealer.open_value(&m.content).await?;
                csv.write_record(record(m, text_of(&content))).map_err(AppError::internal)?;
                written.insert(m.id);
            }
            seen += page.items.len() as u64;
            // Up to 99: the job is at 100 only when its blob is stored.
            self.report_progress(tenant_id, job.job_id, (seen * 99 / total).min(99) as u8).await?;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut archived = self
            .app
            .archived_messages(tenant_id, filter.from, filter.to, |m| filter.matches(m) && !written.contains(&m.id))
            .await?;
        archived.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        for m in &archived {
            let content = self.app.sealer.open_value(&m.content).await?;
            csv.write_record(record(m, text_of(&content))).map_err(AppError::internal)?;
        }
        let bytes = csv.into_inner().map_err(AppError::internal)?;
        let key = format!("exports/{tenant_id}/{}.csv", job.job_id);
        self.app.blobs.put(&key, bytes.into(), "text/csv; charset=utf-8").await.map_err(AppError::internal)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_comes_from_body_or_caption() {
        assert_eq!(text_of(&serde_json::json!({"body": "hi, \"you\""})), "hi, \"you\"");
        assert_eq!(text_of(&serde_json::json!({"caption": "pic", "id": "1"})), "pic");
        assert_eq!(text_of(&Value::Null), "");
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(ExportFilter { direction: Some("sideways".into()), ..Default::default() }.validate().is_err());
        let t = Utc::now();
        assert!(ExportFilter { from: Some(t), to: Some(t), ..Default::default() }.validate().is_err());
        assert!(ExportFilter::default().validate().is_ok());
    }
}
