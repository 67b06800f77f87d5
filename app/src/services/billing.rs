//! Billing use cases (SPEC 3.7, 5.9): choosing a plan, the billing profile,
//! usage against the plan's limit, the monthly invoicer, payment outcomes
//! and dunning.

use chrono::{DateTime, Duration, Utc};
use parley_domain::billing::{
    self, billable_total, draft_invoice, limit_state, marketing_allowed, BillingAccount, BillingProfile,
    BillingRefusal, InvoiceIssued, LimitState, Month, Plan, Usage,
};
use parley_domain::{ids, Event};
use uuid::Uuid;

use crate::error::AppError;
use crate::mail::Mail;
use crate::ops::Ops;
use crate::repo::{ExecuteError, Target};
use crate::sealing::Meta;
use crate::services::invoice_pdf;

fn refused(e: ExecuteError<BillingRefusal>) -> AppError {
    match e {
        ExecuteError::Rejected(BillingRefusal::UnknownPlan(p)) => {
            AppError::validation("plan", format!("there is no plan named {p}"))
        }
        ExecuteError::Rejected(BillingRefusal::InvalidProfile(m)) => AppError::validation("billing", m),
        ExecuteError::Rejected(BillingRefusal::NoInvoice) => AppError::NotFound { what: "invoice" },
        ExecuteError::Failed(e) => e,
    }
}

/// A month's usage with the plan's allowance and limit.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    pub month: Month,
    pub plan: &'static Plan,
    pub usage: Usage,
    pub billable: u64,
    pub limit_state: LimitState,
    pub marketing_allowed: bool,
}

/// What a plan change did.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanChange {
    pub plan: &'static Plan,
    pub previous: Option<String>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// This month's fees as they stand after the change (prorated by the second), minor units.
    pub month_fees: i64,
}

fn billing_target(tenant_id: &str) -> Target<'_> {
    Target { tenant_id, stream_id: ids::billing_stream(tenant_id), wa_id: None }
}

fn invoice_target<'a>(tenant_id: &'a str, month: &str) -> Target<'a> {
    Target { tenant_id, stream_id: ids::invoice_stream(tenant_id, month), wa_id: None }
}

/// Invoice ids are derived from tenant and month, so every run agrees on them.
pub fn invoice_id(tenant_id: &str, month: Month) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("parley-invoice\n{tenant_id}\n{month}").as_bytes())
}

impl Ops {
    pub async fn billing_account(&self, tenant_id: &str) -> Result<std::sync::Arc<BillingAccount>, AppError> {
        Ok(self.accounts.load(&ids::billing_stream(tenant_id)).await?.state)
    }

    /// Moves the tenant to another plan from now; fees are prorated.
    pub async fn change_plan(
        &self,
        tenant_id: &str,
        plan_id: &str,
        profile: Option<BillingProfile>,
        actor: &str,
    ) -> Result<PlanChange, AppError> {
        let now = self.app.clock.now();
        let meta = Meta::new(actor);
        if let Some(profile) = profile {
            self.accounts
                .execute(&billing_target(tenant_id), &meta, |_| billing::set_profile(profile.clone()))
                .await
                .map_err(refused)?;
        }
        let done = self
            .accounts
            .execute(&billing_target(tenant_id), &meta, |s| billing::change_plan(s, plan_id, now))
            .await
            .map_err(refused)?;
        let account = &done.state;
        let month = Month::of(now);
        let month_fees = billing::prorated_fees(account, month.start(), month.end()).iter().map(|l| l.amount).sum();
        let previous = done.events.iter().find_map(|e| match e {
            Event::PlanChanged(c) => c.previous.clone(),
            _ => None,
        });
        Ok(PlanChange { plan: account.current_plan(), previous, trial_ends_at: account.trial_ends_at, month_fees })
    }

    pub async fn usage_report(&self, tenant_id: &str, month: Month) -> Result<UsageReport, AppError> {
        let account = self.billing_account(tenant_id).await?;
        let usage = self.billing.usage(tenant_id, month).await?;
        // The plan that governs a month: the one now for the current month, the last one otherwise.
        let now = self.app.clock.now();
        let plan = if Month::of(now) == month {
            account.plan_at(now)
        } else {
            account.plan_at(month.end() - Duration::seconds(1))
        };
        let billable = billable_total(&usage);
        Ok(UsageReport {
            month,
            plan,
            billable,
            limit_state: limit_state(plan, billable),
            marketing_allowed: marketing_allowed(plan, billable),
            usage,
        })
    }

    /// Mails each tenant whose usage this month has reached 80 % or 100 % of
    /// its plan's limit, once per month and level; returns how many were told.
    pub async fn send_usage_notices(&self) -> Result<usize, AppError> {
        let now = self.app.clock.now();
        let month = Month::of(now);
        let meta = Meta::new("schedule:usage-limits");
        let mut told = 0;
        for tenant in self.billing.billed_tenants().await? {
            let report = self.usage_report(&tenant, month).await?;
            if report.limit_state == LimitState::Ok {
                continue;
            }
            let done = self
                .accounts
                .execute(&billing_target(&tenant), &meta, |s| {
                    Ok::<_, BillingRefusal>(billing::notify_limit(s, month, report.billable, now))
                })
                .await
                .map_err(refused)?;
            if done.events.is_empty() {
                continue;
            }
            let Some(to) = done.state.profile.as_ref().and_then(|p| p.email.clone()) else { continue };
            let limit = report.plan.message_limit.unwrap_or_default();
            let (subject, consequence) = match report.limit_state {
                LimitState::Reached if !report.plan.overage_allowed => {
                    ("reached", "Marketing messages are paused until next month or a plan upgrade.")
                }
                LimitState::Reached => ("reached", "Further messages are billed as overage."),
                _ => ("at 80 %", "Consider upgrading your plan before the limit is reached."),
            };
            let text = format!(
                "Tenant {tenant} has used {} of the {limit} billable messages of plan {} in {month}.\n{consequence}\n",
                report.billable, report.plan.id
            );
            let mail = Mail { to, subject: format!("Parley: usage {subject} for {month}"), text, html: None };
            self.app.mailer.send(&mail).await.map_err(AppError::internal)?;
            told += 1;
        }
        Ok(told)
    }

    /// Issues the invoice of `month` for every billed tenant; returns how
    /// many were issued by this run (a re-run issues none twice).
    pub async fn issue_invoices(&self, month: Month) -> Result<usize, AppError> {
        let mut issued = 0;
        for tenant in self.billing.billed_tenants().await? {
            if self.issue_invoice(&tenant, month).await? {
                issued += 1;
            }
        }
        Ok(issued)
    }

    /// Issues one tenant's invoice of `month` unless it exists: PDF blob,
    /// the `InvoiceIssued` event, Stripe (when configured) and the mail.
    pub async fn issue_invoice(&self, tenant_id: &str, month: Month) -> Result<bool, AppError> {
        let month_s = month.to_string();
        let existing = self.invoices.load(&ids::invoice_stream(tenant_id, &month_s)).await?;
        if existing.state.issued.is_some() {
            return Ok(false);
        }
        let account = self.billing_account(tenant_id).await?;
        let usage = self.billing.usage(tenant_id, month).await?;
        let draft = draft_invoice(&account, month, &usage);
        if draft.lines.is_empty() {
            // No fee and no traffic: nothing to bill.
            return Ok(false);
        }
        let now = self.app.clock.now();
        let pdf_key = format!("invoices/{tenant_id}/{month_s}.pdf");
        let mut invoice = InvoiceIssued {
            invoice_id: invoice_id(tenant_id, month),
            number: format!("INV-{month_s}-{tenant_id}"),
            month: month_s.clone(),
            plan: draft.plan,
            currency: draft.currency,
            lines: draft.lines,
            subtotal: draft.subtotal,
            vat_rate_bp: draft.vat_rate_bp,
            vat: draft.vat,
            total: draft.total,
            tax_id: account.profile.as_ref().and_then(|p| p.tax_id.clone()),
            bill_to: account.profile.as_ref().and_then(|p| p.email.clone()),
            pdf: None,
            due_at: now + Duration::days(self.settings.invoice_due_days),
            at: now,
        };
        let pdf = invoice_pdf::render(&invoice, tenant_id);
        self.app.blobs.put(&pdf_key, pdf.into(), "application/pdf").await.map_err(AppError::internal)?;
        invoice.pdf = Some(pdf_key.clone());
        let meta = Meta::new("schedule:invoicer");
        let done = self
            .invoices
            .execute(&invoice_target(tenant_id, &month_s), &meta, |s| {
                Ok::<_, BillingRefusal>(billing::issue(s, invoice.clone()))
            })
            .await
            .map_err(refused)?;
        if done.events.is_empty() {
            // Another run issued it first.
            return Ok(false);
        }
        if let Some(stripe) = &self.stripe {
            let customer = match &account.customer_id {
                Some(c) => c.clone(),
                None => {
                    let id = stripe.create_customer(tenant_id, invoice.bill_to.as_deref()).await?;
                    self.accounts
                        .execute(&billing_target(tenant_id), &meta, |s| {
                            Ok::<_, BillingRefusal>(if s.customer_id.is_some() {
                                vec![]
                            } else {
                                vec![Event::PaymentCustomerLinked { customer_id: id.clone(), at: now }]
                            })
                        })
                        .await
                        .map_err(refused)?;
                    id
                }
            };
            let external = stripe.create_invoice(&customer, &invoice, self.settings.invoice_due_days).await?;
            self.invoices
                .execute(&invoice_target(tenant_id, &month_s), &meta, |s| billing::link(s, &external, now))
                .await
                .map_err(refused)?;
        }
        if let Some(to) = invoice.bill_to.clone() {
            let link =
                self.app.blobs.download_url(&pdf_key, self.settings.download_ttl).await.map_err(AppError::internal)?;
            let text = format!(
                "Your Parley invoice {} for {} is ready.\n\nTotal: {} {}\nDue: {}\n\nDownload the PDF:\n{link}\n",
                invoice.number,
                invoice.month,
                invoice_pdf::money(invoice.total),
                invoice.currency,
                invoice.due_at.format("%Y-%m-%d"),
            );
            let mail = Mail { to, subject: format!("Parley invoice {}", invoice.number), text, html: None };
            self.app.mailer.send(&mail).await.map_err(AppError::internal)?;
        }
        Ok(true)
    }

    /// Records the outcome of a payment reported by the payment provider.
    pub async fn record_payment(&self, external_id: &str, paid: bool, reason: &str) -> Result<bool, AppError> {
        let Some((tenant_id, view)) = self.billing.invoice_by_external_id(external_id).await? else {
            return Ok(false);
        };
        let now = self.app.clock.now();
        let meta = Meta::new("webhook:stripe");
        self.invoices
            .execute(&invoice_target(&tenant_id, &view.month), &meta, |s| {
                if paid {
                    billing::pay(s, Some(external_id.to_owned()), now)
                } else {
                    billing::payment_failed(s, reason, now)
                }
            })
            .await
            .map_err(refused)?;
        Ok(true)
    }

    /// Sends every dunning mail that is due; returns how many went out.
    pub async fn send_dunning_mails(&self) -> Result<usize, AppError> {
        let now = self.app.clock.now();
        let meta = Meta::new("schedule:dunning");
        let mut sent = 0;
        for failed in self.billing.failed_invoices().await? {
            let stream = ids::invoice_stream(&failed.tenant_id, &failed.month);
            let invoice = self.invoices.load(&stream).await?.state;
            let Some(step) = billing::dunning_due(&invoice, now) else { continue };
            let Some(issued) = &invoice.issued else { continue };
            // Record first: a crash after it loses one mail rather than repeating every step.
            let done = self
                .invoices
                .execute(&invoice_target(&failed.tenant_id, &failed.month), &meta, |s| {
                    Ok::<_, BillingRefusal>(billing::record_dunning(s, now))
                })
                .await
                .map_err(refused)?;
            if done.events.is_empty() {
                continue;
            }
            if let Some(to) = issued.bill_to.clone() {
                let text = format!(
                    "Reminder {step}: the payment of Parley invoice {} ({} {}) failed.\n\
                     Please update your payment method so that service continues.\n",
                    issued.number,
                    invoice_pdf::money(issued.total),
                    issued.currency
                );
                let mail =
                    Mail { to, subject: format!("Payment failed: Parley invoice {}", issued.number), text, html: None };
                self.app.mailer.send(&mail).await.map_err(AppError::internal)?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

#[async_trait::async_trait]
impl crate::app::MarketingAllowance for Ops {
    /// Whether the tenant may send a marketing template now: blocked at 100 %
    /// of the plan's limit unless the plan allows overage.
    async fn may_send_marketing(&self, tenant_id: &str) -> Result<bool, AppError> {
        let report = self.usage_report(tenant_id, Month::of(self.app.clock.now())).await?;
        Ok(report.marketing_allowed)
    }
}
