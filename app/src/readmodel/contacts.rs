//! The contact directory read model in SQLite (SPEC 6.2): one row per
//! tenant and `wa_id`, built from the contact streams. Names and custom
//! attributes stay sealed here as in the events.

use parley_events::RecordedEvent;
use rusqlite::{params, Connection, Row, Transaction};
use serde_json::Value;

use super::sqlite::{from_micros, micros, parse_time};
use super::{ContactFilter, ContactView, Page};
use crate::error::AppError;

pub(super) fn project_contact(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let Some(wa_id) = e.stream_id.rsplit('/').next() else { return Ok(()) };
    let (tenant, d, v) = (e.tenant_id.as_str(), &e.data, e.version as i64);
    let at = parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at));
    match e.event_type.as_str() {
        "ContactCreated" => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO contacts(tenant_id, wa_id, name, created_at, version) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![tenant, wa_id, d["name"].to_string(), at, v])?;
        }
        "ContactRenamed" => {
            tx.prepare_cached("UPDATE contacts SET name = ?3, version = ?4 WHERE tenant_id = ?1 AND wa_id = ?2")?
                .execute(params![tenant, wa_id, d["name"].to_string(), v])?;
        }
        t @ ("ContactOptedOut" | "ContactOptedIn") => {
            tx.prepare_cached(
                "UPDATE contacts SET opted_out = ?3, opt_changed_at = ?4, opt_source = ?5, version = ?6
                 WHERE tenant_id = ?1 AND wa_id = ?2",
            )?
            .execute(params![tenant, wa_id, t == "ContactOptedOut", at, d["source"].as_str(), v])?;
        }
        "ContactErased" => {
            tx.prepare_cached("DELETE FROM contacts WHERE tenant_id = ?1 AND wa_id = ?2")?
                .execute(params![tenant, wa_id])?;
        }
        "ContactUpdated" => {
            let tags = d.get("tags").filter(|t| !t.is_null()).map(Value::to_string);
            let attributes = d.get("attributes").filter(|a| !a.is_null()).map(Value::to_string);
            tx.prepare_cached(
                "UPDATE contacts SET tags = COALESCE(?3, tags), attributes = COALESCE(?4, attributes), version = ?5
                 WHERE tenant_id = ?1 AND wa_id = ?2",
            )?
            .execute(params![tenant, wa_id, tags, attributes, v])?;
        }
        _ => {}
    }
    Ok(())
}

fn contact_row(r: &Row<'_>) -> rusqlite::Result<ContactView> {
    let json = |i: usize| -> rusqlite::Result<Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(Value::Null))
    };
    Ok(ContactView {
        wa_id: r.get(0)?,
        name: json(1)?,
        opted_out: r.get(2)?,
        opt_changed_at: r.get::<_, Option<i64>>(3)?.map(from_micros),
        opt_source: r.get(4)?,
        tags: serde_json::from_value(json(5)?).unwrap_or_default(),
        attributes: json(6)?,
        created_at: from_micros(r.get(7)?),
    })
}

pub(super) fn query_contacts(
    c: &Connection,
    tenant: &str,
    filter: &ContactFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<ContactView>, AppError> {
    let after = cursor.map(super::cursor::decode_key).transpose()?.unwrap_or_default();
    let limit = limit.clamp(1, 200);
    let mut stmt = c.prepare_cached(
        "SELECT wa_id, name, opted_out, opt_changed_at, opt_source, tags, attributes, created_at FROM contacts
         WHERE tenant_id = ?1 AND wa_id > ?2 AND (?3 IS NULL OR opted_out = ?3)
         AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(contacts.tags) t WHERE t.value = ?4))
         ORDER BY wa_id LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![tenant, after, filter.opted_out, filter.tag, limit as i64 + 1], contact_row)?;
    let mut items = rows.collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|c| super::cursor::encode_key(&c.wa_id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
