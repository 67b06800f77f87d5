//! Usage metering and invoice rows.
//!
//! Usage is metered from the `pricing` object of `sent` and `delivered`
//! statuses, once per message, in the month of its first priced status (as
//! the SQLite projection does). The meter item of a message and the month's
//! counter are written in one transaction conditional on the meter not
//! existing yet, so each message is counted exactly once however often its
//! statuses are delivered.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem, Update};
use parley_app::error::AppError;
use parley_app::readmodel::billing::{BillingReadModel, FailedInvoice, InvoiceView};
use parley_domain::billing::{metered, InvoiceIssued, InvoiceLine, Month, Usage};
use parley_domain::event::Pricing;
use parley_events::RecordedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::capacity::Kind;
use super::super::read_models::rows::{from_micros, micros};
use super::super::read_models::{internal, s, IndexQuery, Stored, PK, ROW, SK};
use super::jobs::by_stream;
use super::{number_attribute, row_key, stream_entity, text_attribute, DynamoOpsReadModels, MAX_ATTEMPTS};

/// The partition listing every billed tenant (one item per tenant).
const BILLED: &str = "BILLED";
/// The partition of invoices whose payment failed, in `gsi4` (sparse).
const FAILED_INVOICES: &str = "FAILED_INVOICES";
/// Counter attributes of a month's usage: billable and free messages per category.
const BILLABLE_PREFIX: &str = "b:";
const FREE_PREFIX: &str = "f:";

fn invoice_pk(tenant_id: &str, month: &str) -> String {
    format!("INV#{tenant_id}#{month}")
}

fn meter_pk(tenant_id: &str, message_id: &str) -> String {
    format!("METER#{tenant_id}#{message_id}")
}

fn usage_pk(tenant_id: &str) -> String {
    format!("USAGE#{tenant_id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct InvoiceRow {
    tenant_id: String,
    id: String,
    month: String,
    number: String,
    plan: String,
    status: String,
    currency: String,
    lines: Vec<InvoiceLine>,
    subtotal: i64,
    vat_rate_bp: u32,
    vat: i64,
    total: i64,
    tax_id: Option<String>,
    pdf: Option<String>,
    external_id: Option<String>,
    issued_at: i64,
    due_at: i64,
}

impl Stored for InvoiceRow {
    fn index_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = vec![
            ("g1pk", format!("INVOICE#{}#{}", self.tenant_id, self.id)),
            ("g1sk", self.month.clone()),
            ("g2pk", format!("INVS#{}", self.tenant_id)),
            ("g2sk", self.month.clone()),
        ];
        if let Some(external) = &self.external_id {
            keys.push(("g3pk", format!("EXTINV#{external}")));
            keys.push(("g3sk", self.tenant_id.clone()));
        }
        if self.status == "payment_failed" {
            keys.push(("g4pk", FAILED_INVOICES.to_owned()));
            keys.push(("g4sk", format!("{}#{}", self.tenant_id, self.month)));
        }
        keys
    }
}

impl InvoiceRow {
    /// The row after `event`; `None` until the invoice is issued.
    fn apply(row: Option<Self>, tenant_id: &str, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        match (event.event_type.as_str(), row) {
            ("InvoiceIssued", None) => {
                let i: InvoiceIssued = serde_json::from_value(d.clone()).ok()?;
                Some(InvoiceRow {
                    tenant_id: tenant_id.to_owned(),
                    id: i.invoice_id.to_string(),
                    month: i.month,
                    number: i.number,
                    plan: i.plan,
                    status: "open".into(),
                    currency: i.currency,
                    lines: i.lines,
                    subtotal: i.subtotal,
                    vat_rate_bp: i.vat_rate_bp,
                    vat: i.vat,
                    total: i.total,
                    tax_id: i.tax_id,
                    pdf: i.pdf,
                    external_id: None,
                    issued_at: micros(i.at),
                    due_at: micros(i.due_at),
                })
            }
            ("InvoiceLinked", Some(mut row)) => {
                row.external_id = d["external_id"].as_str().map(str::to_owned);
                Some(row)
            }
            ("InvoicePaid", Some(mut row)) => {
                row.status = "paid".into();
                Some(row)
            }
            ("InvoicePaymentFailed", Some(mut row)) => {
                // A paid invoice stays paid.
                if row.status != "paid" {
                    row.status = "payment_failed".into();
                }
                Some(row)
            }
            (_, row) => row,
        }
    }

    fn view(&self) -> Result<InvoiceView, AppError> {
        Ok(InvoiceView {
            id: self.id.parse().map_err(|_| AppError::internal(format!("invoice id {:?} is not a uuid", self.id)))?,
            number: self.number.clone(),
            month: self.month.clone(),
            plan: self.plan.clone(),
            status: self.status.clone(),
            currency: self.currency.clone(),
            lines: self.lines.clone(),
            subtotal: self.subtotal,
            vat_rate_bp: self.vat_rate_bp,
            vat: self.vat,
            total: self.total,
            tax_id: self.tax_id.clone(),
            pdf: self.pdf.clone(),
            external_id: self.external_id.clone(),
            issued_at: from_micros(self.issued_at),
            due_at: from_micros(self.due_at),
        })
    }
}

/// What a priced status meters: the message, its month, the counter attribute.
fn metering(event: &RecordedEvent) -> Option<(String, String, String)> {
    if !matches!(event.event_type.as_str(), "MessageSent" | "MessageDelivered") || event.data["pricing"].is_null() {
        return None;
    }
    let pricing: Pricing = serde_json::from_value(event.data["pricing"].clone()).ok()?;
    let (category, billable) = metered(&pricing)?;
    let message_id = stream_entity(&event.stream_id)?.to_owned();
    let at = event.data["at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(event.recorded_at, |t| t.with_timezone(&chrono::Utc));
    let prefix = if billable { BILLABLE_PREFIX } else { FREE_PREFIX };
    Some((message_id, Month::of(at).to_string(), format!("{prefix}{category}")))
}

impl DynamoOpsReadModels {
    pub(super) async fn apply_invoices(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        for ((tenant_id, month), events) in by_stream(events, "/invoice/") {
            self.rows
                .apply_row(invoice_pk(&tenant_id, &month), &events, |row, e| InvoiceRow::apply(row, &tenant_id, e))
                .await?;
        }
        Ok(())
    }

    pub(super) async fn apply_usage(&self, events: &[RecordedEvent]) -> Result<(), AppError> {
        let mut billed = BTreeSet::new();
        let mut metered_now = BTreeSet::new();
        for event in events {
            let priced = matches!(event.event_type.as_str(), "MessageSent" | "MessageDelivered")
                && !event.data["pricing"].is_null();
            if event.stream_id.ends_with("/billing") || priced {
                billed.insert(event.tenant_id.clone());
            }
            let Some((message_id, month, counter)) = metering(event) else { continue };
            // WhatsApp repeats the pricing on `delivered`: the first priced status counts.
            if metered_now.insert((event.tenant_id.clone(), message_id.clone())) {
                self.meter(&event.tenant_id, &message_id, &month, &counter).await?;
            }
        }
        for tenant_id in billed {
            // Idempotent: a tenant billed again is the same item.
            let output = self
                .client()
                .put_item()
                .table_name(self.table())
                .item(PK, s(BILLED))
                .item(SK, s(tenant_id))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(internal)?;
            self.rows.meter().record(Kind::Write, output.consumed_capacity());
        }
        Ok(())
    }

    /// Counts a message in its month unless its meter says it was counted.
    async fn meter(&self, tenant_id: &str, message_id: &str, month: &str, counter: &str) -> Result<(), AppError> {
        let pk = meter_pk(tenant_id, message_id);
        for _ in 0..MAX_ATTEMPTS {
            // A read first: a redelivered status costs one read, not a refused transaction.
            if self.item(&pk, ROW).await?.is_some() {
                return Ok(());
            }
            let marker = Put::builder()
                .table_name(self.table())
                .set_item(Some(row_key(pk.clone()).into_iter().chain([("month".to_owned(), s(month))]).collect()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(internal)?;
            let count = Update::builder()
                .table_name(self.table())
                .key(PK, s(usage_pk(tenant_id)))
                .key(SK, s(month))
                .update_expression("ADD #counter :one")
                .expression_attribute_names("#counter", counter)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
                .map_err(internal)?;
            let items = vec![
                TransactWriteItem::builder().put(marker).build(),
                TransactWriteItem::builder().update(count).build(),
            ];
            if self.transact(items).await? {
                return Ok(());
            }
        }
        Err(AppError::internal(format!("the meter of message {message_id} kept changing under the projector")))
    }

    /// Invoice rows of an index partition, in sort order.
    async fn invoice_rows(&self, index: &str, partition: String, forward: bool) -> Result<Vec<InvoiceRow>, AppError> {
        let mut rows = Vec::new();
        let query = IndexQuery { index, partition, below: None, above: None, forward };
        self.rows
            .scan_index(query, |row: InvoiceRow| {
                rows.push(row);
                true
            })
            .await?;
        Ok(rows)
    }
}

#[async_trait]
impl BillingReadModel for DynamoOpsReadModels {
    async fn usage(&self, tenant_id: &str, month: Month) -> Result<Usage, AppError> {
        let mut usage = Usage::new();
        let Some(item) = self.item(&usage_pk(tenant_id), &month.to_string()).await? else { return Ok(usage) };
        for name in item.keys() {
            let count = number_attribute(&item, name).max(0) as u64;
            if let Some(category) = name.strip_prefix(BILLABLE_PREFIX) {
                usage.entry(category.to_owned()).or_default().billable = count;
            } else if let Some(category) = name.strip_prefix(FREE_PREFIX) {
                usage.entry(category.to_owned()).or_default().free = count;
            }
        }
        Ok(usage)
    }

    async fn billed_tenants(&self) -> Result<Vec<String>, AppError> {
        let items = self.partition(BILLED, None).await?;
        let mut tenants: Vec<String> = items.iter().filter_map(|i| text_attribute(i, SK)).map(str::to_owned).collect();
        tenants.sort();
        Ok(tenants)
    }

    async fn invoices(&self, tenant_id: &str) -> Result<Vec<InvoiceView>, AppError> {
        self.invoice_rows("gsi2", format!("INVS#{tenant_id}"), false).await?.iter().map(InvoiceRow::view).collect()
    }

    async fn invoice(&self, tenant_id: &str, id: Uuid) -> Result<Option<InvoiceView>, AppError> {
        let rows = self.invoice_rows("gsi1", format!("INVOICE#{tenant_id}#{id}"), true).await?;
        rows.first().map(InvoiceRow::view).transpose()
    }

    async fn invoice_by_external_id(&self, external_id: &str) -> Result<Option<(String, InvoiceView)>, AppError> {
        let rows = self.invoice_rows("gsi3", format!("EXTINV#{external_id}"), true).await?;
        rows.first().map(|row| Ok((row.tenant_id.clone(), row.view()?))).transpose()
    }

    async fn failed_invoices(&self) -> Result<Vec<FailedInvoice>, AppError> {
        #[derive(Deserialize)]
        struct Failed {
            g4sk: String,
        }
        let mut failed = Vec::new();
        let query =
            IndexQuery { index: "gsi4", partition: FAILED_INVOICES.into(), below: None, above: None, forward: true };
        self.rows
            .scan_index(query, |row: Failed| {
                // `tenant#month`: a month holds no `#`, a tenant may.
                if let Some((tenant_id, month)) = row.g4sk.rsplit_once('#') {
                    failed.push(FailedInvoice { tenant_id: tenant_id.to_owned(), month: month.to_owned() });
                }
                true
            })
            .await?;
        Ok(failed)
    }
}
