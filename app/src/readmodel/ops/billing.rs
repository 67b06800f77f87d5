//! The billing usage and invoice projections and their queries.
//!
//! Usage is metered from the `pricing` object of `sent` and `delivered`
//! statuses: WhatsApp repeats it on both, so each message is metered once,
//! in the month of its first priced status.

use async_trait::async_trait;
use parley_domain::billing::{metered, CategoryUsage, Month, Usage};
use parley_domain::event::Pricing;
use parley_events::RecordedEvent;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::{from_micros, micros, parse_time, SqliteOpsReadModels};
use crate::error::AppError;
use crate::readmodel::billing::{BillingReadModel, FailedInvoice, InvoiceView};

pub(super) fn project_usage(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let tenant = e.tenant_id.as_str();
    tx.prepare_cached("INSERT OR IGNORE INTO billing_tenants(tenant_id) VALUES (?1)")?.execute(params![tenant])?;
    if !matches!(e.event_type.as_str(), "MessageSent" | "MessageDelivered") {
        return Ok(());
    }
    let Ok(pricing) = serde_json::from_value::<Pricing>(e.data["pricing"].clone()) else { return Ok(()) };
    let Some((category, billable)) = metered(&pricing) else { return Ok(()) };
    let Some(message_id) = e.stream_id.rsplit('/').next() else { return Ok(()) };
    let first = tx
        .prepare_cached("INSERT OR IGNORE INTO billing_metered(tenant_id, message_id) VALUES (?1, ?2)")?
        .execute(params![tenant, message_id])?;
    if first == 0 {
        return Ok(());
    }
    let month = Month::of(parse_time(&e.data["at"]).unwrap_or(e.recorded_at)).to_string();
    let column = if billable { "billable" } else { "free" };
    tx.prepare_cached(&format!(
        "INSERT INTO billing_usage(tenant_id, month, category, {column}) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT(tenant_id, month, category) DO UPDATE SET {column} = {column} + 1"
    ))?
    .execute(params![tenant, month, category])?;
    Ok(())
}

pub(super) fn project_invoice(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), AppError> {
    let (tenant, d) = (e.tenant_id.as_str(), &e.data);
    let month = e.stream_id.rsplit('/').next().unwrap_or_default();
    let set_status = |status: &str| -> Result<(), AppError> {
        tx.prepare_cached("UPDATE invoices SET status = ?3 WHERE tenant_id = ?1 AND month = ?2 AND status != 'paid'")?
            .execute(params![tenant, month, status])?;
        Ok(())
    };
    match e.event_type.as_str() {
        "InvoiceIssued" => {
            let i: parley_domain::billing::InvoiceIssued = serde_json::from_value(d.clone())?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO invoices(tenant_id, id, month, number, plan, status, currency, lines, subtotal,
                 vat_rate_bp, vat, total, tax_id, pdf, issued_at, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                tenant,
                i.invoice_id.to_string(),
                i.month,
                i.number,
                i.plan,
                i.currency,
                serde_json::to_string(&i.lines)?,
                i.subtotal,
                i.vat_rate_bp,
                i.vat,
                i.total,
                i.tax_id,
                i.pdf,
                micros(i.at),
                micros(i.due_at)
            ])?;
        }
        "InvoiceLinked" => {
            tx.prepare_cached("UPDATE invoices SET external_id = ?3 WHERE tenant_id = ?1 AND month = ?2")?
                .execute(params![tenant, month, d["external_id"].as_str()])?;
        }
        "InvoicePaid" => set_status("paid")?,
        "InvoicePaymentFailed" => set_status("payment_failed")?,
        _ => {}
    }
    Ok(())
}

const COLUMNS: &str = "id, number, month, plan, status, currency, lines, subtotal, vat_rate_bp, vat, total, tax_id, pdf,
    external_id, issued_at, due_at";

fn invoice_row(r: &Row<'_>) -> rusqlite::Result<InvoiceView> {
    invoice_at(r, 0)
}

/// An invoice whose columns start at `first` (queries may select others before them).
fn invoice_at(r: &Row<'_>, first: usize) -> rusqlite::Result<InvoiceView> {
    let c = |i: usize| first + i;
    Ok(InvoiceView {
        id: r.get::<_, String>(c(0))?.parse().unwrap_or_default(),
        number: r.get(c(1))?,
        month: r.get(c(2))?,
        plan: r.get(c(3))?,
        status: r.get(c(4))?,
        currency: r.get(c(5))?,
        lines: serde_json::from_str(&r.get::<_, String>(c(6))?).unwrap_or_default(),
        subtotal: r.get(c(7))?,
        vat_rate_bp: r.get(c(8))?,
        vat: r.get(c(9))?,
        total: r.get(c(10))?,
        tax_id: r.get(c(11))?,
        pdf: r.get(c(12))?,
        external_id: r.get(c(13))?,
        issued_at: from_micros(r.get(c(14))?),
        due_at: from_micros(r.get(c(15))?),
    })
}

#[async_trait]
impl BillingReadModel for SqliteOpsReadModels {
    async fn usage(&self, tenant_id: &str, month: Month) -> Result<Usage, AppError> {
        let (tenant, month) = (tenant_id.to_owned(), month.to_string());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT category, billable, free FROM billing_usage WHERE tenant_id = ?1 AND month = ?2")?;
            let rows = stmt.query_map(params![tenant, month], |r| {
                let (billable, free): (i64, i64) = (r.get(1)?, r.get(2)?);
                Ok((r.get::<_, String>(0)?, CategoryUsage { billable: billable as u64, free: free as u64 }))
            })?;
            Ok(rows.collect::<Result<Usage, _>>()?)
        })
        .await
    }

    async fn billed_tenants(&self) -> Result<Vec<String>, AppError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT tenant_id FROM billing_tenants ORDER BY tenant_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn invoices(&self, tenant_id: &str) -> Result<Vec<InvoiceView>, AppError> {
        let tenant = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM invoices WHERE tenant_id = ?1 ORDER BY month DESC"))?;
            let rows = stmt.query_map(params![tenant], invoice_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn invoice(&self, tenant_id: &str, id: Uuid) -> Result<Option<InvoiceView>, AppError> {
        let (tenant, id) = (tenant_id.to_owned(), id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM invoices WHERE tenant_id = ?1 AND id = ?2"))?
                .query_row(params![tenant, id], invoice_row)
                .optional()?)
        })
        .await
    }

    async fn invoice_by_external_id(&self, external_id: &str) -> Result<Option<(String, InvoiceView)>, AppError> {
        let external = external_id.to_owned();
        self.read(move |c| {
            Ok(c.prepare_cached(&format!("SELECT tenant_id, {COLUMNS} FROM invoices WHERE external_id = ?1"))?
                .query_row(params![external], |r| Ok((r.get(0)?, invoice_at(r, 1)?)))
                .optional()?)
        })
        .await
    }

    async fn failed_invoices(&self) -> Result<Vec<FailedInvoice>, AppError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant_id, month FROM invoices WHERE status = 'payment_failed' ORDER BY tenant_id, month",
            )?;
            let rows = stmt.query_map([], |r| Ok(FailedInvoice { tenant_id: r.get(0)?, month: r.get(1)? }))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
