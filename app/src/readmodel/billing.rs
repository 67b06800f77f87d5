//! The billing read models (SPEC 5.9): usage per tenant, month and pricing
//! category (metered from the `pricing` object of status webhooks), and
//! the invoices issued.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_domain::billing::{InvoiceLine, Month, Usage};
use uuid::Uuid;

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceView {
    pub id: Uuid,
    pub number: String,
    pub month: String,
    pub plan: String,
    pub status: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: i64,
    pub vat_rate_bp: u32,
    pub vat: i64,
    pub total: i64,
    pub tax_id: Option<String>,
    pub pdf: Option<String>,
    pub external_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

/// An unpaid invoice whose payment failed (dunning works through these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedInvoice {
    pub tenant_id: String,
    pub month: String,
}

#[async_trait]
pub trait BillingReadModel: Send + Sync + 'static {
    async fn usage(&self, tenant_id: &str, month: Month) -> Result<Usage, AppError>;
    /// Tenants with a billing account or any metered usage.
    async fn billed_tenants(&self) -> Result<Vec<String>, AppError>;
    /// Newest first.
    async fn invoices(&self, tenant_id: &str) -> Result<Vec<InvoiceView>, AppError>;
    async fn invoice(&self, tenant_id: &str, id: Uuid) -> Result<Option<InvoiceView>, AppError>;
    /// The invoice with this external (payment provider) id, in any tenant.
    async fn invoice_by_external_id(&self, external_id: &str) -> Result<Option<(String, InvoiceView)>, AppError>;
    async fn failed_invoices(&self) -> Result<Vec<FailedInvoice>, AppError>;
}
