//! `/v1/billing` (SPEC 5.9): usage, invoices and plan changes.

use std::sync::Arc;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use parley_domain::billing::{BillingProfile, InvoiceLine, LimitState, Month};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{Json, Query};
use crate::http::problem::Problem;
use crate::ops::Ops;
use crate::readmodel::billing::InvoiceView;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `YYYY-MM`; default the current month.
    pub month: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryOut {
    pub category: String,
    pub billable: u64,
    /// Counted, not charged (free customer service, free entry point).
    pub free: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageOut {
    pub month: String,
    pub plan: String,
    pub included_messages: u64,
    pub message_limit: Option<u64>,
    pub overage_allowed: bool,
    pub billable: u64,
    /// ok, warning (80 % of the limit) or reached.
    #[schema(value_type = String)]
    pub limit_state: LimitState,
    pub marketing_allowed: bool,
    pub categories: Vec<CategoryOut>,
}

fn month_param(month: Option<&str>, ops: &Ops) -> Result<Month, AppError> {
    match month {
        None => Ok(Month::of(ops.app.clock.now())),
        Some(m) => Month::parse(m).ok_or_else(|| AppError::validation("month", "must be YYYY-MM")),
    }
}

/// A month's metered usage against the plan.
#[utoipa::path(
    get, path = "/v1/billing/usage", tag = "billing", params(UsageQuery),
    responses((status = 200, body = UsageOut), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn usage(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Query(q): Query<UsageQuery>,
) -> Result<axum::Json<UsageOut>, AppError> {
    let month = month_param(q.month.as_deref(), &ops)?;
    let r = ops.usage_report(&caller.tenant_id, month).await?;
    Ok(axum::Json(UsageOut {
        month: month.to_string(),
        plan: r.plan.id.to_owned(),
        included_messages: r.plan.included_messages,
        message_limit: r.plan.message_limit,
        overage_allowed: r.plan.overage_allowed,
        billable: r.billable,
        limit_state: r.limit_state,
        marketing_allowed: r.marketing_allowed,
        categories: r
            .usage
            .into_iter()
            .map(|(category, u)| CategoryOut { category, billable: u.billable, free: u.free })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineOut {
    pub description: String,
    pub quantity: u64,
    /// Minor units (cents).
    pub amount: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceOut {
    pub id: Uuid,
    pub number: String,
    pub month: String,
    pub plan: String,
    /// open, paid or payment_failed.
    pub status: String,
    pub currency: String,
    pub lines: Vec<LineOut>,
    /// Amounts in minor units.
    pub subtotal: i64,
    pub vat_rate_percent: f64,
    pub vat: i64,
    pub total: i64,
    pub tax_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// A link to the PDF that expires.
    pub pdf_url: Option<String>,
}

async fn invoice_out(ops: &Ops, i: InvoiceView) -> Result<InvoiceOut, AppError> {
    let pdf_url = match &i.pdf {
        Some(key) => Some(ops.app.blobs.download_url(key, ops.settings.download_ttl).await.map_err(AppError::internal)?),
        None => None,
    };
    let line = |l: InvoiceLine| LineOut { description: l.description, quantity: l.quantity, amount: l.amount };
    Ok(InvoiceOut {
        id: i.id,
        number: i.number,
        month: i.month,
        plan: i.plan,
        status: i.status,
        currency: i.currency,
        lines: i.lines.into_iter().map(line).collect(),
        subtotal: i.subtotal,
        vat_rate_percent: f64::from(i.vat_rate_bp) / 100.0,
        vat: i.vat,
        total: i.total,
        tax_id: i.tax_id,
        issued_at: i.issued_at,
        due_at: i.due_at,
        pdf_url,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceList {
    pub items: Vec<InvoiceOut>,
}

/// The tenant's invoices, newest month first.
#[utoipa::path(
    get, path = "/v1/billing/invoices", tag = "billing",
    responses((status = 200, body = InvoiceList)),
    security(("bearer" = []))
)]
pub async fn invoices(State(ops): State<Arc<Ops>>, caller: Caller) -> Result<axum::Json<InvoiceList>, AppError> {
    caller.require(Role::Admin)?;
    let mut items = Vec::new();
    for i in ops.billing.invoices(&caller.tenant_id).await? {
        items.push(invoice_out(&ops, i).await?);
    }
    Ok(axum::Json(InvoiceList { items }))
}

/// One invoice, with a link to its PDF.
#[utoipa::path(
    get, path = "/v1/billing/invoices/{id}", tag = "billing", params(("id" = Uuid, Path)),
    responses((status = 200, body = InvoiceOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn invoice(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<InvoiceOut>, AppError> {
    caller.require(Role::Admin)?;
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound { what: "invoice" })?;
    let i = ops.billing.invoice(&caller.tenant_id, id).await?.ok_or(AppError::NotFound { what: "invoice" })?;
    Ok(axum::Json(invoice_out(&ops, i).await?))
}

/// A plan change, optionally with the billing details.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// free, starter or growth.
    pub plan: String,
    /// Where invoices are mailed.
    pub email: Option<String>,
    pub tax_id: Option<String>,
    /// VAT in percent, e.g. 19 or 20.5.
    pub vat_rate_percent: Option<f64>,
    /// ISO 4217, e.g. EUR; default USD.
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    pub plan: String,
    pub previous: Option<String>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// This month's plan fees after the change, prorated by the second (minor units).
    pub month_fees: i64,
}

/// Upgrades or downgrades the plan from now; fees are prorated.
#[utoipa::path(
    post, path = "/v1/billing/plan", tag = "billing", request_body = PlanRequest,
    responses((status = 200, body = PlanOut), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn plan(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Json(body): Json<PlanRequest>,
) -> Result<axum::Json<PlanOut>, AppError> {
    caller.require(Role::Owner)?;
    let wants_profile =
        body.email.is_some() || body.tax_id.is_some() || body.vat_rate_percent.is_some() || body.currency.is_some();
    let profile = if wants_profile {
        let current = ops.billing_account(&caller.tenant_id).await?.profile.clone();
        if let Some(email) = &body.email {
            super::check_recipient("email", email)?;
        }
        let vat_rate_bp = match body.vat_rate_percent {
            Some(p) if (0.0..=100.0).contains(&p) => (p * 100.0).round() as u32,
            Some(_) => return Err(AppError::validation("vat_rate_percent", "must be from 0 to 100")),
            None => current.as_ref().map_or(0, |c| c.vat_rate_bp),
        };
        Some(BillingProfile {
            email: body.email.or_else(|| current.as_ref().and_then(|c| c.email.clone())),
            tax_id: body.tax_id.or_else(|| current.as_ref().and_then(|c| c.tax_id.clone())),
            vat_rate_bp,
            currency: body
                .currency
                .map(|c| c.to_uppercase())
                .or_else(|| current.as_ref().map(|c| c.currency.clone()))
                .unwrap_or_else(|| "USD".into()),
            at: ops.app.clock.now(),
        })
    } else {
        None
    };
    let change = ops.change_plan(&caller.tenant_id, &body.plan, profile, &caller.actor()).await?;
    Ok(axum::Json(PlanOut {
        plan: change.plan.id.to_owned(),
        previous: change.previous,
        trial_ends_at: change.trial_ends_at,
        month_fees: change.month_fees,
    }))
}
