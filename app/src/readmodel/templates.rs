//! The template read model in SQLite: one row per tenant, name and
//! language, built from the template streams, with its review status.

use parley_events::RecordedEvent;
use rusqlite::{params, Connection, Row, Transaction};
use serde_json::Value;

use super::sqlite::{from_micros, micros, parse_time};
use super::TemplateView;
use crate::error::AppError;

/// The template's (name, language) from its stream `{tenant}/template/{name}/{language}`.
fn key(stream_id: &str) -> Option<(&str, &str)> {
    let mut parts = stream_id.rsplitn(3, '/');
    let language = parts.next()?;
    let name = parts.next()?;
    Some((name, language))
}

pub(super) fn project_template(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let Some((name, language)) = key(&e.stream_id) else { return Ok(()) };
    let (tenant, d, v) = (e.tenant_id.as_str(), &e.data, e.version as i64);
    let at = parse_time(&d["at"]).unwrap_or_else(|| micros(e.recorded_at));
    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
    match e.event_type.as_str() {
        "TemplateSubmitted" => {
            tx.prepare_cached(
                "INSERT INTO templates(tenant_id, name, language, category, status, reason, components, whatsapp_id,
                 waba_id, deleted, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, 0, ?9, ?10)
                 ON CONFLICT(tenant_id, name, language) DO UPDATE SET category = excluded.category,
                 status = excluded.status, reason = NULL, components = excluded.components,
                 whatsapp_id = excluded.whatsapp_id, waba_id = excluded.waba_id, deleted = 0,
                 updated_at = excluded.updated_at, version = excluded.version",
            )?
            .execute(params![
                tenant,
                name,
                language,
                s("category").unwrap_or_default(),
                s("status").unwrap_or_default(),
                d["components"].to_string(),
                s("whatsapp_id"),
                s("waba_id").unwrap_or_default(),
                at,
                v
            ])?;
        }
        "TemplateStatusChanged" => {
            tx.prepare_cached(
                "UPDATE templates SET status = ?4, reason = ?5, category = COALESCE(?6, category), updated_at = ?7,
                 version = ?8 WHERE tenant_id = ?1 AND name = ?2 AND language = ?3",
            )?
            .execute(params![tenant, name, language, s("status"), s("reason"), s("category"), at, v])?;
        }
        "TemplateDeleted" => {
            tx.prepare_cached(
                "UPDATE templates SET deleted = 1, updated_at = ?4, version = ?5
                 WHERE tenant_id = ?1 AND name = ?2 AND language = ?3",
            )?
            .execute(params![tenant, name, language, at, v])?;
        }
        _ => {}
    }
    Ok(())
}

fn template_row(r: &Row<'_>) -> rusqlite::Result<TemplateView> {
    let components: String = r.get(5)?;
    Ok(TemplateView {
        name: r.get(0)?,
        language: r.get(1)?,
        category: r.get(2)?,
        status: r.get(3)?,
        reason: r.get(4)?,
        components: serde_json::from_str(&components).unwrap_or(Value::Null),
        whatsapp_id: r.get(6)?,
        waba_id: r.get(7)?,
        updated_at: from_micros(r.get(8)?),
    })
}

pub(super) fn query_templates(c: &Connection, tenant: &str, name: Option<&str>) -> Result<Vec<TemplateView>, AppError> {
    let mut stmt = c.prepare_cached(
        "SELECT name, language, category, status, reason, components, whatsapp_id, waba_id, updated_at FROM templates
         WHERE tenant_id = ?1 AND deleted = 0 AND (?2 IS NULL OR name = ?2) ORDER BY name, language LIMIT 5000",
    )?;
    let rows = stmt.query_map(params![tenant, name], template_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
