//! The archiver (SPEC 6.3): a tenant's records older than its retention
//! (default 90 days) move from the hot store to blob storage, as gzip JSON
//! Lines per tenant and month, and can be brought back.
//!
//! What moves are whole streams of records that end: messages. The wamid
//! streams (which message a wamid names, statuses parked for unknown ones)
//! stay hot, so a late status still finds its message. Entity streams (contacts,
//! conversations, templates, members, billing) stay hot however old, since
//! later commands are decided on their state. A stream moves only when its
//! newest event is older than the cutoff, so a message still receiving
//! statuses stays hot. Each stream belongs to the month of its first event
//! (a message's creation), so a restored month holds whole streams.
//!
//! Per month, two blobs:
//! - `archive/{tenant}/{yyyy-mm}/events.jsonl.gz`: the events, one envelope per
//!   line, in log order, exactly as stored (personal fields stay sealed, so
//!   crypto-shredding reaches archives too);
//! - `archive/{tenant}/{yyyy-mm}/messages.jsonl.gz`: the message read-model
//!   rows as they were, for exports without a restore.
//!
//! A run writes the blobs first (merged with what earlier runs wrote for the
//! month, by event id and message id) and only then takes the streams out of
//! the hot store; a run cut short between the two is finished by the next
//! one without writing anything twice.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use parley_domain::billing::Month;
use parley_domain::job::{JobKind, JobQueued};
use parley_domain::tenant;
use parley_events::RecordedEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::App;
use crate::error::AppError;
use crate::identity::service::tenant_stream;
use crate::ops::Ops;
use crate::readmodel::MessageView;
use crate::repo::{ExecuteError, Target};
use crate::sealing::Meta;
use crate::search::SearchChange;
use crate::services::jobs::NewJob;

/// The kinds of stream that archive (the segment after the tenant).
const ARCHIVED_KINDS: [&str; 1] = ["message"];
/// Streams handled per step of a run: read, written, then removed.
const STREAMS_PER_STEP: usize = 200;
/// The actor of scheduled archive runs.
pub const ARCHIVER: &str = "schedule:archiver";

const JSON_LINES_GZ: &str = "application/x-ndjson; charset=utf-8";

pub fn events_key(tenant_id: &str, month: Month) -> String {
    format!("archive/{tenant_id}/{month}/events.jsonl.gz")
}

pub fn messages_key(tenant_id: &str, month: Month) -> String {
    format!("archive/{tenant_id}/{month}/messages.jsonl.gz")
}

fn manifest_key(tenant_id: &str, job_id: Uuid) -> String {
    format!("archive/{tenant_id}/runs/{job_id}.json")
}

/// A message read-model row as archived; personal fields stay sealed.
pub type ArchivedMessage = MessageView;

/// The parameters of an archive run job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveParams {
    /// Streams whose newest event occurred before this move.
    pub cutoff: DateTime<Utc>,
}

/// What a run archived for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedMonth {
    pub month: String,
    pub events: String,
    pub messages: String,
    /// Streams this run added to the month.
    pub streams: usize,
}

/// The artifact of an archive run: the blobs it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveManifest {
    pub tenant_id: String,
    pub cutoff: DateTime<Utc>,
    pub months: Vec<ArchivedMonth>,
}

/// What a restore brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Events in the month's archive.
    pub archived: usize,
    /// Of those, the ones that were not in the hot store.
    pub events: usize,
    pub messages: usize,
}

/// Gzip JSON Lines, one value per line.
fn to_json_lines<T: Serialize>(values: &[T]) -> Result<Bytes, AppError> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for value in values {
        serde_json::to_writer(&mut gz, value)?;
        gz.write_all(b"\n").map_err(AppError::internal)?;
    }
    Ok(gz.finish().map_err(AppError::internal)?.into())
}

fn from_json_lines<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, AppError> {
    let mut values = Vec::new();
    for line in std::io::BufReader::new(GzDecoder::new(bytes)).lines() {
        let line = line.map_err(|e| AppError::internal(format!("archive is not gzip text: {e}")))?;
        if !line.trim().is_empty() {
            values.push(serde_json::from_str(&line)?);
        }
    }
    Ok(values)
}

/// The message id of a message stream (`{tenant}/message/{id}`).
fn message_id(stream_id: &str) -> Option<Uuid> {
    let (_, rest) = stream_id.split_once("/message/")?;
    rest.parse().ok()
}

impl App {
    /// The values of an archive blob (none when it does not exist).
    pub async fn read_archive<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, AppError> {
        match self.blobs.get(key).await.map_err(AppError::internal)? {
            Some(blob) => from_json_lines(&blob.bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The months of a tenant that have archives, oldest first.
    pub async fn archived_months(&self, tenant_id: &str) -> Result<Vec<Month>, AppError> {
        let prefix = format!("archive/{tenant_id}/");
        let mut months: Vec<Month> = self
            .blobs
            .list(&prefix)
            .await
            .map_err(AppError::internal)?
            .iter()
            .filter_map(|key| key.strip_prefix(&prefix)?.strip_suffix("/messages.jsonl.gz"))
            .filter_map(Month::parse)
            .collect();
        months.sort();
        months.dedup();
        Ok(months)
    }

    /// The archived message rows of a tenant created in `[from, to)` (either
    /// bound open) that `keep` accepts, as the read model held them. Months
    /// are read one at a time, so only the kept rows are held at once.
    pub async fn archived_messages(
        &self,
        tenant_id: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        keep: impl Fn(&MessageView) -> bool,
    ) -> Result<Vec<MessageView>, AppError> {
        let mut rows = Vec::new();
        for month in self.archived_months(tenant_id).await? {
            let overlaps = from.is_none_or(|f| month.next().start() > f) && to.is_none_or(|t| month.start() < t);
            if overlaps {
                let archived: Vec<ArchivedMessage> = self.read_archive(&messages_key(tenant_id, month)).await?;
                rows.extend(archived.into_iter().filter(|m| keep(m)));
            }
        }
        Ok(rows)
    }
}

impl Ops {
    /// How many days the tenant's records stay hot.
    pub async fn retention_days(&self, tenant_id: &str) -> Result<u32, AppError> {
        let tenant = self.app.tenants.load(&tenant_stream(tenant_id)).await?;
        Ok(tenant.state.retention_days.unwrap_or(self.settings.retention_days))
    }

    /// Sets the tenant's retention (days records stay hot).
    pub async fn set_retention(&self, tenant_id: &str, days: u32, by: &str) -> Result<(), AppError> {
        let now = self.app.clock.now();
        let target = Target { tenant_id, stream_id: tenant_stream(tenant_id), wa_id: None };
        self.app.tenants.execute(&target, &Meta::new(by), |t| tenant::set_retention(t, days, by, now)).await.map_err(
            |e| match e {
                ExecuteError::Rejected(tenant::RetentionError::UnknownTenant) => AppError::NotFound { what: "tenant" },
                ExecuteError::Rejected(r) => AppError::validation("days", r.to_string()),
                ExecuteError::Failed(e) => e,
            },
        )?;
        Ok(())
    }

    /// Queues one archive run per tenant with records, each with the cutoff
    /// its retention sets at `now`. Returns how many were queued.
    pub async fn queue_archive_runs(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let mut queued = 0;
        for tenant_id in self.app.read_models.tenants().await? {
            let cutoff = now - Duration::days(i64::from(self.retention_days(&tenant_id).await?));
            let params = serde_json::to_value(ArchiveParams { cutoff })?;
            let job = NewJob { kind: JobKind::ArchiveRun, params, requested_by: ARCHIVER.into(), notify: None };
            self.queue_job(&tenant_id, job).await?;
            queued += 1;
        }
        Ok(queued)
    }

    /// The dormant streams of a tenant that archive, by id.
    async fn archivable_streams(&self, tenant_id: &str, cutoff: DateTime<Utc>) -> Result<Vec<String>, AppError> {
        let mut streams = Vec::new();
        for kind in ARCHIVED_KINDS {
            let prefix = format!("{tenant_id}/{kind}/");
            streams.extend(self.app.store.dormant_streams(&prefix, cutoff, usize::MAX).await?);
        }
        Ok(streams)
    }

    /// Runs an archive job: returns the key of its manifest.
    pub async fn run_archive(&self, tenant_id: &str, job: &JobQueued) -> Result<String, AppError> {
        let params: ArchiveParams = serde_json::from_value(job.params.clone())
            .map_err(|e| AppError::validation("params", format!("not archive parameters: {e}")))?;
        let months = self
            .archive_before(tenant_id, params.cutoff, |done, total| async move {
                // Up to 99: the job is at 100 only when its manifest is stored.
                let progress = (done * 99 / total.max(1)).min(99) as u8;
                self.report_progress(tenant_id, job.job_id, progress).await
            })
            .await?;
        let manifest = ArchiveManifest { tenant_id: tenant_id.to_owned(), cutoff: params.cutoff, months };
        let key = manifest_key(tenant_id, job.job_id);
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        self.app.blobs.put(&key, bytes.into(), "application/json").await.map_err(AppError::internal)?;
        Ok(key)
    }

    /// Archives every archivable stream of the tenant dormant before
    /// `cutoff`; `progress(done, total)` hears of each step.
    pub async fn archive_before<F, Fut>(
        &self,
        tenant_id: &str,
        cutoff: DateTime<Utc>,
        progress: F,
    ) -> Result<Vec<ArchivedMonth>, AppError>
    where
        F: Fn(usize, usize) -> Fut,
        Fut: std::future::Future<Output = Result<(), AppError>>,
    {
        let streams = self.archivable_streams(tenant_id, cutoff).await?;
        let mut months: BTreeMap<Month, ArchivedMonth> = BTreeMap::new();
        for (step, chunk) in streams.chunks(STREAMS_PER_STEP).enumerate() {
            for (month, count) in self.archive_streams(tenant_id, chunk).await? {
                months
                    .entry(month)
                    .or_insert_with(|| ArchivedMonth {
                        month: month.to_string(),
                        events: events_key(tenant_id, month),
                        messages: messages_key(tenant_id, month),
                        streams: 0,
                    })
                    .streams += count;
            }
            progress((step * STREAMS_PER_STEP + chunk.len()).min(streams.len()), streams.len()).await?;
        }
        Ok(months.into_values().collect())
    }

    /// Writes one chunk of streams to their months' blobs, then takes them
    /// out of the hot store. Returns the streams added per month.
    async fn archive_streams(&self, tenant_id: &str, stream_ids: &[String]) -> Result<Vec<(Month, usize)>, AppError> {
        let mut by_month: BTreeMap<Month, (Vec<RecordedEvent>, Vec<ArchivedMessage>, usize)> = BTreeMap::new();
        let mut messages = Vec::new();
        for stream_id in stream_ids {
            let events = self.app.store.read_stream(stream_id, 0).await?;
            // Streams carry their tenant in their name; check the envelopes too.
            let Some(first) = events.first().filter(|_| events.iter().all(|e| e.tenant_id == tenant_id)) else {
                continue;
            };
            let entry = by_month.entry(Month::of(first.occurred_at)).or_default();
            if let Some(id) = message_id(stream_id) {
                if let Some(row) = self.app.read_models.message(tenant_id, id).await? {
                    entry.1.push(row);
                }
                messages.push(id);
            }
            entry.0.extend(events);
            entry.2 += 1;
        }
        let mut counts = Vec::new();
        for (month, (events, rows, streams)) in by_month {
            self.merge_into_blob(&events_key(tenant_id, month), events, |e| e.event_id, |e| e.global_position).await?;
            self.merge_into_blob(&messages_key(tenant_id, month), rows, |m| m.id, |m| (m.created_at, m.id)).await?;
            counts.push((month, streams));
        }
        // Only now, with the copies stored, do the originals leave.
        self.app.store.archive_streams(stream_ids).await?;
        self.app.read_models.remove_messages(tenant_id, &messages).await?;
        // Search covers the hot store only.
        let forget: Vec<_> = messages
            .iter()
            .map(|&message_id| SearchChange::Forget { tenant_id: tenant_id.to_owned(), message_id })
            .collect();
        self.app.blinder.index().apply(&forget).await?;
        Ok(counts)
    }

    /// Adds `fresh` to the JSON Lines blob at `key`: what is there already
    /// stays, a value with the same id is written once, the whole in order.
    async fn merge_into_blob<T, K, O>(
        &self,
        key: &str,
        fresh: Vec<T>,
        id: impl Fn(&T) -> K,
        order: impl Fn(&T) -> O,
    ) -> Result<(), AppError>
    where
        T: Serialize + DeserializeOwned,
        K: std::hash::Hash + Eq,
        O: Ord,
    {
        if fresh.is_empty() {
            return Ok(());
        }
        let mut values: Vec<T> = self.app.read_archive(key).await?;
        let mut seen: HashMap<K, ()> = values.iter().map(|v| (id(v), ())).collect();
        let before = values.len();
        for value in fresh {
            if seen.insert(id(&value), ()).is_none() {
                values.push(value);
            }
        }
        if values.len() == before {
            return Ok(());
        }
        values.sort_by_key(|v| order(v));
        self.app.blobs.put(key, to_json_lines(&values)?, JSON_LINES_GZ).await.map_err(AppError::internal)
    }

    /// Brings an archived month back into the hot store and the message
    /// read model. Idempotent: what is already hot is left as it is.
    pub async fn restore_month(&self, tenant_id: &str, month: Month) -> Result<Restored, AppError> {
        let events: Vec<RecordedEvent> = self.app.read_archive(&events_key(tenant_id, month)).await?;
        if let Some(foreign) = events.iter().find(|e| e.tenant_id != tenant_id) {
            return Err(AppError::internal(format!(
                "archive of {tenant_id} for {month} holds an event of another tenant ({})",
                foreign.stream_id
            )));
        }
        let restored = self.app.store.restore_events(&events).await?;
        let before = self.app.read_models.count_messages(tenant_id).await?;
        self.app.read_models.restore_messages(&events).await?;
        self.app.blinder.index().apply(&self.app.search_indexer().changes(&events).await?).await?;
        let after = self.app.read_models.count_messages(tenant_id).await?;
        Ok(Restored { archived: events.len(), events: restored, messages: after.saturating_sub(before) as usize })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_lines_round_trip_through_gzip() {
        let values = vec![serde_json::json!({"a": 1}), serde_json::json!({"b": "two\nlines"})];
        let bytes = to_json_lines(&values).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(from_json_lines::<Value>(&bytes).unwrap(), values);
        assert!(from_json_lines::<Value>(b"not gzip").is_err());
    }

    #[test]
    fn keys_name_tenant_and_month() {
        let month = Month { year: 2026, month: 3 };
        assert_eq!(events_key("t1", month), "archive/t1/2026-03/events.jsonl.gz");
        assert_eq!(messages_key("t1", month), "archive/t1/2026-03/messages.jsonl.gz");
        assert_eq!(message_id(&format!("t1/message/{}", Uuid::nil())), Some(Uuid::nil()));
        assert_eq!(message_id("t1/wamid/w.1"), None);
    }
}
