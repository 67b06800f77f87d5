//! The analytics projection (SPEC 5.8) and its query.
//!
//! Counts go to the day (UTC) a message was created, so a day's delivery
//! rate compares that day's outbound messages with how many of them were
//! delivered. Each outbound message remembers which statuses it has counted,
//! so a status is counted once per message. A conversation waiting for an
//! answer remembers since when; the next outbound message records the first
//! response time.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use parley_events::RecordedEvent;
use rusqlite::{params, OptionalExtension, Transaction};
use uuid::Uuid;

use super::{micros, parse_time, SqliteOpsReadModels};
use crate::error::AppError;
use crate::readmodel::analytics::{AnalyticsReadModel, DailyRows};

fn day(t: DateTime<Utc>) -> String {
    t.date_naive().to_string()
}

fn bump(tx: &Transaction<'_>, tenant: &str, day: &str, number: &str, column: &str) -> Result<(), AppError> {
    tx.prepare_cached(&format!(
        "INSERT INTO analytics_daily(tenant_id, day, number_id, {column}) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT(tenant_id, day, number_id) DO UPDATE SET {column} = {column} + 1"
    ))?
    .execute(params![tenant, day, number])?;
    Ok(())
}

fn bump_counter(tx: &Transaction<'_>, key: [&str; 5]) -> Result<(), AppError> {
    tx.prepare_cached(
        "INSERT INTO analytics_counters(tenant_id, day, number_id, dimension, name, count) VALUES (?1, ?2, ?3, ?4, ?5, 1)
         ON CONFLICT(tenant_id, day, number_id, dimension, name) DO UPDATE SET count = count + 1",
    )?
    .execute(params![key[0], key[1], key[2], key[3], key[4]])?;
    Ok(())
}

pub(super) fn project(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    templates: &HashMap<Uuid, String>,
) -> Result<(), AppError> {
    let (tenant, d) = (e.tenant_id.as_str(), &e.data);
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
    match e.event_type.as_str() {
        "MessageReceived" => {
            let at = parse_time(&d["sent_at"]).unwrap_or(e.recorded_at);
            bump(tx, tenant, &day(at), &s("number_id"), "inbound")?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO analytics_awaiting(tenant_id, conversation_id, since) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![tenant, s("conversation_id"), micros(at)])?;
        }
        "MessageQueued" => {
            let at = parse_time(&d["queued_at"]).unwrap_or(e.recorded_at);
            let (message_id, number, today) = (s("message_id"), s("number_id"), day(at));
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO analytics_messages(tenant_id, message_id, number_id, day) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![tenant, message_id, number, today])?;
            if inserted == 0 {
                return Ok(());
            }
            bump(tx, tenant, &today, &number, "outbound")?;
            if let Some(name) = message_id.parse().ok().and_then(|id: Uuid| templates.get(&id)) {
                bump_counter(tx, [tenant, &today, &number, "template", name])?;
            }
            let conversation = s("conversation_id");
            let since: Option<i64> = tx
                .prepare_cached("SELECT since FROM analytics_awaiting WHERE tenant_id = ?1 AND conversation_id = ?2")?
                .query_row(params![tenant, conversation], |r| r.get(0))
                .optional()?;
            if let Some(since) = since {
                let seconds = ((micros(at) - since) / 1_000_000).max(0);
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO analytics_responses(tenant_id, day, number_id, message_id, seconds)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![tenant, today, number, message_id, seconds])?;
                tx.prepare_cached("DELETE FROM analytics_awaiting WHERE tenant_id = ?1 AND conversation_id = ?2")?
                    .execute(params![tenant, conversation])?;
            }
        }
        t @ ("MessageDelivered" | "MessageRead" | "MessagePlayed" | "MessageFailed") => {
            let Some(message_id) = e.stream_id.rsplit('/').next() else { return Ok(()) };
            let row: Option<(String, String, bool, bool, bool)> = tx
                .prepare_cached(
                    "SELECT number_id, day, delivered, read, failed FROM analytics_messages
                     WHERE tenant_id = ?1 AND message_id = ?2",
                )?
                .query_row(params![tenant, message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()?;
            let Some((number, today, delivered, read, failed)) = row else { return Ok(()) };
            let mark = |column: &str| -> Result<(), AppError> {
                tx.prepare_cached(&format!(
                    "UPDATE analytics_messages SET {column} = 1 WHERE tenant_id = ?1 AND message_id = ?2"
                ))?
                .execute(params![tenant, message_id])?;
                bump(tx, tenant, &today, &number, column)
            };
            if t == "MessageFailed" {
                if !failed {
                    mark("failed")?;
                    let kind = d["failure"]["kind"].as_str().unwrap_or("unknown");
                    bump_counter(tx, [tenant, &today, &number, "failure", kind])?;
                }
                return Ok(());
            }
            // A read message was delivered, whether or not `delivered` came.
            if !delivered {
                mark("delivered")?;
            }
            if t != "MessageDelivered" && !read {
                mark("read")?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[async_trait]
impl AnalyticsReadModel for SqliteOpsReadModels {
    async fn daily(
        &self,
        tenant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
        number_id: Option<&str>,
    ) -> Result<DailyRows, AppError> {
        let (tenant, from, to, number) =
            (tenant_id.to_owned(), from.to_string(), to.to_string(), number_id.map(str::to_owned));
        self.read(move |c| {
            let mut rows = DailyRows::new();
            let key = |day: String, number: String| (day.parse::<NaiveDate>().unwrap_or_default(), number);
            let filter = "tenant_id = ?1 AND day >= ?2 AND day <= ?3 AND (?4 IS NULL OR number_id = ?4)";
            let mut stmt = c.prepare_cached(&format!(
                "SELECT day, number_id, inbound, outbound, delivered, read, failed FROM analytics_daily WHERE {filter}"
            ))?;
            let mut q = stmt.query(params![tenant, from, to, number])?;
            while let Some(r) = q.next()? {
                let entry = rows.entry(key(r.get(0)?, r.get(1)?)).or_default();
                entry.inbound = r.get::<_, i64>(2)? as u64;
                entry.outbound = r.get::<_, i64>(3)? as u64;
                entry.delivered = r.get::<_, i64>(4)? as u64;
                entry.read = r.get::<_, i64>(5)? as u64;
                entry.failed = r.get::<_, i64>(6)? as u64;
            }
            let mut stmt = c.prepare_cached(&format!(
                "SELECT day, number_id, dimension, name, count FROM analytics_counters WHERE {filter}"
            ))?;
            let mut q = stmt.query(params![tenant, from, to, number])?;
            while let Some(r) = q.next()? {
                let entry = rows.entry(key(r.get(0)?, r.get(1)?)).or_default();
                let (dimension, name, count): (String, String, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
                let map = if dimension == "template" { &mut entry.templates } else { &mut entry.failed_by_kind };
                map.insert(name, count as u64);
            }
            let mut stmt =
                c.prepare_cached(&format!("SELECT day, number_id, seconds FROM analytics_responses WHERE {filter}"))?;
            let mut q = stmt.query(params![tenant, from, to, number])?;
            while let Some(r) = q.next()? {
                rows.entry(key(r.get(0)?, r.get(1)?)).or_default().first_response_secs.push(r.get(2)?);
            }
            Ok(rows)
        })
        .await
    }
}
