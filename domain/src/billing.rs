//! Billing (SPEC 3.7): plans, the trial, usage limits, proration and the
//! monthly invoice, all as pure functions of the billing account's events
//! and a month's usage.
//!
//! Money is kept in integers: amounts in minor units (cents), per-message
//! prices in millionths of the currency unit ("micros"), so that a price of
//! 0.0125 is exact. Each line is rounded to cents once.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Event, Pricing};

/// How long the trial of a paid plan lasts, from the first plan choice.
pub const TRIAL_DAYS: i64 = 14;
/// The share of the monthly limit at which a tenant is warned.
pub const WARN_PERCENT: u64 = 80;
/// Days after a failed payment on which dunning mails go out (step 1, 2, 3).
pub const DUNNING_DAYS: [i64; 3] = [0, 3, 7];

/// The price of one billable message of a pricing category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CategoryPrice {
    pub category: &'static str,
    /// Millionths of the currency unit.
    pub micros: i64,
}

/// A plan of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: &'static str,
    /// Minor units per month.
    pub monthly_fee: i64,
    /// Billable messages a month covered by the fee; the allowance is
    /// taken from the categories in the order of `prices`.
    pub included_messages: u64,
    /// Billable messages a month before marketing sends are blocked
    /// (unless `overage_allowed`); None for no limit.
    pub message_limit: Option<u64>,
    pub overage_allowed: bool,
    pub prices: &'static [CategoryPrice],
}

const STANDARD_PRICES: &[CategoryPrice] = &[
    CategoryPrice { category: "utility", micros: 10_000 },
    CategoryPrice { category: "authentication", micros: 12_500 },
    CategoryPrice { category: "authentication_international", micros: 30_000 },
    CategoryPrice { category: "marketing", micros: 25_000 },
    CategoryPrice { category: "service", micros: 5_000 },
];

/// The plan catalogue.
pub const PLANS: &[Plan] = &[
    Plan {
        id: "free",
        monthly_fee: 0,
        included_messages: 100,
        message_limit: Some(100),
        overage_allowed: false,
        prices: STANDARD_PRICES,
    },
    Plan {
        id: "starter",
        monthly_fee: 4_900,
        included_messages: 1_000,
        message_limit: Some(5_000),
        overage_allowed: false,
        prices: STANDARD_PRICES,
    },
    Plan {
        id: "growth",
        monthly_fee: 19_900,
        included_messages: 10_000,
        message_limit: Some(50_000),
        overage_allowed: true,
        prices: STANDARD_PRICES,
    },
];

/// The plan of a tenant that never chose one.
pub const DEFAULT_PLAN: &str = "free";

pub fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

impl Plan {
    pub fn price_of(&self, category: &str) -> Option<i64> {
        self.prices.iter().find(|p| p.category == category).map(|p| p.micros)
    }
}

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    pub fn of(t: DateTime<Utc>) -> Month {
        Month { year: t.year(), month: t.month() }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let month = Month { year: y.parse().ok()?, month: m.parse().ok()? };
        (1..=12).contains(&month.month).then_some(month)
    }

    pub fn start(self) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Utc.from_utc_datetime(&d))
            .unwrap_or_default()
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month { year: self.year - 1, month: 12 }
        } else {
            Month { year: self.year, month: self.month - 1 }
        }
    }

    /// The first instant after the month.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The data of `PlanChanged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanChanged {
    pub plan: String,
    pub previous: Option<String>,
    /// Set when the change starts a trial (the first paid plan).
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// The data of `BillingProfileSet`: who is billed and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProfile {
    /// Where invoices and dunning mails go.
    pub email: Option<String>,
    pub tax_id: Option<String>,
    /// VAT in basis points (2000 = 20 %).
    pub vat_rate_bp: u32,
    /// ISO 4217, upper case.
    pub currency: String,
    pub at: DateTime<Utc>,
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: u64,
    /// Micros per unit (fees: the prorated fee itself, quantity 1).
    pub unit_micros: i64,
    /// Minor units.
    pub amount: i64,
}

/// The data of `InvoiceIssued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceIssued {
    pub invoice_id: Uuid,
    pub number: String,
    /// `YYYY-MM`.
    pub month: String,
    pub plan: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: i64,
    pub vat_rate_bp: u32,
    pub vat: i64,
    pub total: i64,
    pub tax_id: Option<String>,
    pub bill_to: Option<String>,
    /// Blob key of the rendered PDF.
    pub pdf: Option<String>,
    pub due_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// A tenant's billing account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BillingAccount {
    /// Each plan with the instant it took effect, oldest first.
    pub plans: Vec<(String, DateTime<Utc>)>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub profile: Option<BillingProfile>,
    /// The customer id at the payment provider, once created.
    pub customer_id: Option<String>,
    /// The highest limit level the tenant was told about, per month.
    pub notified: BTreeMap<String, LimitState>,
}

impl BillingAccount {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::PlanChanged(c) => {
                self.plans.push((c.plan.clone(), c.at));
                if c.trial_ends_at.is_some() {
                    self.trial_ends_at = c.trial_ends_at;
                }
            }
            Event::BillingProfileSet(p) => self.profile = Some(p.clone()),
            Event::PaymentCustomerLinked { customer_id, .. } => self.customer_id = Some(customer_id.clone()),
            Event::UsageLimitNotified { month, level, .. } => {
                let known = self.notified.entry(month.clone()).or_insert(*level);
                *known = (*known).max(*level);
            }
            _ => {}
        }
        self
    }

    /// The plan in effect at `at`.
    pub fn plan_at(&self, at: DateTime<Utc>) -> &'static Plan {
        let id = self.plans.iter().rev().find(|(_, from)| *from <= at).map_or(DEFAULT_PLAN, |(p, _)| p.as_str());
        plan(id).or_else(|| plan(DEFAULT_PLAN)).unwrap_or(&PLANS[0])
    }

    pub fn current_plan(&self) -> &'static Plan {
        self.plans.last().and_then(|(p, _)| plan(p)).unwrap_or(&PLANS[0])
    }

    pub fn currency(&self) -> String {
        self.profile.as_ref().map_or_else(|| "USD".to_owned(), |p| p.currency.clone())
    }

    pub fn in_trial(&self, at: DateTime<Utc>) -> bool {
        self.trial_ends_at.is_some_and(|t| at < t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingRefusal {
    #[error("there is no plan named {0}")]
    UnknownPlan(String),
    #[error("{0}")]
    InvalidProfile(String),
    #[error("the invoice does not exist")]
    NoInvoice,
}

/// Moves the tenant to `plan_id` from `now`; the first paid plan starts the
/// trial. Choosing the current plan again changes nothing.
pub fn change_plan(state: &BillingAccount, plan_id: &str, now: DateTime<Utc>) -> Result<Vec<Event>, BillingRefusal> {
    let chosen = plan(plan_id).ok_or_else(|| BillingRefusal::UnknownPlan(plan_id.to_owned()))?;
    let previous = state.plans.last().map(|(p, _)| p.clone());
    if previous.as_deref() == Some(chosen.id) {
        return Ok(vec![]);
    }
    let trial_ends_at =
        (state.trial_ends_at.is_none() && chosen.monthly_fee > 0).then(|| now + Duration::days(TRIAL_DAYS));
    Ok(vec![Event::PlanChanged(PlanChanged { plan: chosen.id.to_owned(), previous, trial_ends_at, at: now })])
}

/// Sets who is billed and how.
pub fn set_profile(profile: BillingProfile) -> Result<Vec<Event>, BillingRefusal> {
    let currency_ok = profile.currency.len() == 3 && profile.currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency_ok {
        return Err(BillingRefusal::InvalidProfile("currency must be an ISO 4217 code such as EUR".into()));
    }
    if profile.vat_rate_bp > 10_000 {
        return Err(BillingRefusal::InvalidProfile("vat_rate must be at most 100 %".into()));
    }
    Ok(vec![Event::BillingProfileSet(profile)])
}

/// Messages of one pricing category in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CategoryUsage {
    pub billable: u64,
    /// Counted but not charged (free customer service, free entry point).
    pub free: u64,
}

/// A month's usage by pricing category.
pub type Usage = BTreeMap<String, CategoryUsage>;

/// Whether a status's `pricing` makes the message billable, and in which
/// category; None when the status carries no category.
pub fn metered(pricing: &Pricing) -> Option<(String, bool)> {
    let category = pricing.category.clone()?;
    let free_type = pricing.pricing_type.as_deref().is_some_and(|t| t.starts_with("free_"));
    Some((category, pricing.billable.unwrap_or(false) && !free_type))
}

pub fn billable_total(usage: &Usage) -> u64 {
    usage.values().map(|u| u.billable).sum()
}

/// Where a tenant stands against its monthly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitState {
    Ok,
    /// At or above 80 % of the limit.
    Warning,
    /// At or above the limit.
    Reached,
}

pub fn limit_state(plan: &Plan, billable: u64) -> LimitState {
    match plan.message_limit {
        Some(limit) if billable >= limit => LimitState::Reached,
        Some(limit) if billable * 100 >= limit * WARN_PERCENT => LimitState::Warning,
        _ => LimitState::Ok,
    }
}

/// Whether a marketing send is allowed with this month's billable count.
pub fn marketing_allowed(plan: &Plan, billable: u64) -> bool {
    plan.overage_allowed || limit_state(plan, billable) != LimitState::Reached
}

/// Tells the tenant once per month and level when its usage reaches 80 %
/// and 100 % of the plan's limit.
pub fn notify_limit(state: &BillingAccount, month: Month, billable: u64, now: DateTime<Utc>) -> Vec<Event> {
    let level = limit_state(state.plan_at(now), billable);
    let told = state.notified.get(&month.to_string()).copied().unwrap_or(LimitState::Ok);
    if level == LimitState::Ok || level <= told {
        return vec![];
    }
    vec![Event::UsageLimitNotified { month: month.to_string(), level, at: now }]
}

/// Rounds micros × quantity to minor units, half away from zero.
fn to_minor(micros: i128) -> i64 {
    let cents = (micros + micros.signum() * 5_000) / 10_000;
    i64::try_from(cents).unwrap_or(i64::MAX)
}

/// The amounts of an invoice before it is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub plan: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: i64,
    pub vat_rate_bp: u32,
    pub vat: i64,
    pub total: i64,
}

/// The fee of each plan period inside `[from, to)`, prorated by the second,
/// without the trial.
pub fn prorated_fees(account: &BillingAccount, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<InvoiceLine> {
    let month = Month::of(from);
    let month_secs = (month.end() - month.start()).num_seconds().max(1);
    let mut bounds: Vec<(DateTime<Utc>, &'static Plan)> = vec![(from, account.plan_at(from))];
    for (id, at) in &account.plans {
        if *at > from && *at < to {
            bounds.push((*at, plan(id).unwrap_or(&PLANS[0])));
        }
    }
    if let Some(trial_end) = account.trial_ends_at.filter(|t| *t > from && *t < to) {
        bounds.push((trial_end, account.plan_at(trial_end)));
        bounds.sort_by_key(|(t, _)| *t);
    }
    let mut lines = Vec::new();
    for (i, (start, p)) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map_or(to, |(t, _)| *t);
        let secs = (end - *start).num_seconds();
        if p.monthly_fee == 0 || secs <= 0 || account.in_trial(*start) {
            continue;
        }
        let amount = to_minor(i128::from(p.monthly_fee) * 10_000 * i128::from(secs) / i128::from(month_secs));
        let days = (secs as f64 / 86_400.0 * 10.0).round() / 10.0;
        let description = if secs == month_secs {
            format!("Plan {} (monthly fee)", p.id)
        } else {
            format!("Plan {} ({days} of {} days)", p.id, month_secs / 86_400)
        };
        lines.push(InvoiceLine { description, quantity: 1, unit_micros: i64::from(p.monthly_fee) * 10_000, amount });
    }
    lines
}

/// The invoice of `month`: prorated fees, then one line per pricing category
/// (the allowance taken first), then free messages at no charge; VAT on the
/// subtotal.
pub fn draft_invoice(account: &BillingAccount, month: Month, usage: &Usage) -> InvoiceDraft {
    let mut lines = prorated_fees(account, month.start(), month.end());
    let plan = account.plan_at(month.end() - Duration::seconds(1));
    let mut allowance = plan.included_messages;
    let mut categories: Vec<(&str, i64)> = plan.prices.iter().map(|p| (p.category, p.micros)).collect();
    for category in usage.keys() {
        if !categories.iter().any(|(c, _)| c == category) {
            // A category the catalogue does not price is listed at no charge.
            categories.push((category.as_str(), 0));
        }
    }
    for (category, micros) in &categories {
        let Some(u) = usage.get(*category) else { continue };
        if u.billable > 0 {
            let covered = u.billable.min(allowance);
            allowance -= covered;
            let charged = u.billable - covered;
            let amount = to_minor(i128::from(*micros) * i128::from(charged));
            let description = if covered > 0 {
                format!("{category} messages: {} ({covered} included)", u.billable)
            } else {
                format!("{category} messages: {}", u.billable)
            };
            lines.push(InvoiceLine { description, quantity: charged, unit_micros: *micros, amount });
        }
        if u.free > 0 {
            lines.push(InvoiceLine {
                description: format!("{category} messages, free of charge: {}", u.free),
                quantity: u.free,
                unit_micros: 0,
                amount: 0,
            });
        }
    }
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    let vat_rate_bp = account.profile.as_ref().map_or(0, |p| p.vat_rate_bp);
    let vat = to_minor(i128::from(subtotal) * i128::from(vat_rate_bp));
    InvoiceDraft {
        plan: plan.id.to_owned(),
        currency: account.currency(),
        lines,
        subtotal,
        vat_rate_bp,
        vat,
        total: subtotal + vat,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    /// A payment attempt failed; dunning runs until it is paid.
    PaymentFailed,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::PaymentFailed => "payment_failed",
        }
    }
}

/// One invoice (one per tenant and month).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invoice {
    pub issued: Option<InvoiceIssued>,
    pub status: Option<InvoiceStatus>,
    pub external_id: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    /// Dunning mails sent since the last failure.
    pub dunning_steps: u32,
}

impl Invoice {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::InvoiceIssued(i) => {
                self.issued = Some(i.clone());
                self.status = Some(InvoiceStatus::Open);
            }
            Event::InvoiceLinked { external_id, .. } => self.external_id = Some(external_id.clone()),
            Event::InvoicePaid { .. } => self.status = Some(InvoiceStatus::Paid),
            Event::InvoicePaymentFailed { at, .. } => {
                if self.status != Some(InvoiceStatus::Paid) {
                    self.status = Some(InvoiceStatus::PaymentFailed);
                    self.failed_at = Some(*at);
                    self.dunning_steps = 0;
                }
            }
            Event::DunningMailSent { step, .. } => self.dunning_steps = self.dunning_steps.max(*step),
            _ => {}
        }
        self
    }
}

/// Issues the invoice; an invoice that exists is never issued again.
pub fn issue(state: &Invoice, invoice: InvoiceIssued) -> Vec<Event> {
    if state.issued.is_some() {
        return vec![];
    }
    vec![Event::InvoiceIssued(invoice)]
}

pub fn link(state: &Invoice, external_id: &str, now: DateTime<Utc>) -> Result<Vec<Event>, BillingRefusal> {
    state.issued.as_ref().ok_or(BillingRefusal::NoInvoice)?;
    if state.external_id.as_deref() == Some(external_id) {
        return Ok(vec![]);
    }
    Ok(vec![Event::InvoiceLinked { external_id: external_id.to_owned(), at: now }])
}

/// Marks the invoice paid; paying twice changes nothing.
pub fn pay(state: &Invoice, reference: Option<String>, now: DateTime<Utc>) -> Result<Vec<Event>, BillingRefusal> {
    match state.status {
        None => Err(BillingRefusal::NoInvoice),
        Some(InvoiceStatus::Paid) => Ok(vec![]),
        Some(_) => Ok(vec![Event::InvoicePaid { at: now, reference }]),
    }
}

/// Records a failed payment of an unpaid invoice.
pub fn payment_failed(state: &Invoice, reason: &str, now: DateTime<Utc>) -> Result<Vec<Event>, BillingRefusal> {
    match state.status {
        None => Err(BillingRefusal::NoInvoice),
        Some(InvoiceStatus::Paid) => Ok(vec![]),
        Some(_) => Ok(vec![Event::InvoicePaymentFailed { at: now, reason: reason.to_owned() }]),
    }
}

/// The dunning step due at `now`, if any: each step once, on its day after
/// the failure, while the invoice is unpaid.
pub fn dunning_due(state: &Invoice, now: DateTime<Utc>) -> Option<u32> {
    if state.status != Some(InvoiceStatus::PaymentFailed) {
        return None;
    }
    let failed_at = state.failed_at?;
    let next = state.dunning_steps as usize;
    let days = *DUNNING_DAYS.get(next)?;
    (now >= failed_at + Duration::days(days)).then_some(state.dunning_steps + 1)
}

pub fn record_dunning(state: &Invoice, now: DateTime<Utc>) -> Vec<Event> {
    match dunning_due(state, now) {
        Some(step) => vec![Event::DunningMailSent { step, at: now }],
        None => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn account(events: Vec<Event>) -> BillingAccount {
        events.iter().fold(BillingAccount::default(), |s, e| s.evolve(e))
    }

    #[test]
    fn months_parse_and_step() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.next().to_string(), "2027-01");
        assert_eq!(m.previous().to_string(), "2026-11");
        assert_eq!(m.start(), t("2026-12-01T00:00:00Z"));
        assert!(Month::parse("2026-13").is_none() && Month::parse("26-1").is_none());
    }

    #[test]
    fn a_full_month_on_a_paid_plan_after_the_trial() {
        let s = BillingAccount::default();
        let mut events = change_plan(&s, "starter", t("2026-01-10T00:00:00Z")).unwrap();
        let s = account(events.clone());
        assert_eq!(s.trial_ends_at, Some(t("2026-01-24T00:00:00Z")));
        events.extend(
            set_profile(BillingProfile {
                email: None,
                tax_id: Some("DE123".into()),
                vat_rate_bp: 1_900,
                currency: "EUR".into(),
                at: t("2026-01-10T00:00:00Z"),
            })
            .unwrap(),
        );
        let s = account(events);
        let mut usage = Usage::new();
        usage.insert("utility".into(), CategoryUsage { billable: 800, free: 0 });
        usage.insert("marketing".into(), CategoryUsage { billable: 500, free: 0 });
        usage.insert("service".into(), CategoryUsage { billable: 0, free: 40 });
        let d = draft_invoice(&s, Month::parse("2026-02").unwrap(), &usage);
        // Fee 49.00; utility 800 all included; marketing 200 included, 300 × 0.025 = 7.50.
        assert_eq!(d.subtotal, 4_900 + 750);
        assert_eq!(d.vat, 1_074); // 56.50 × 19 % = 10.735 -> 10.74
        assert_eq!(d.total, 5_650 + 1_074);
        assert_eq!(d.currency, "EUR");
        assert!(d.lines.iter().any(|l| l.amount == 0 && l.quantity == 40));
    }

    #[test]
    fn the_trial_and_a_mid_month_upgrade_are_prorated() {
        let e1 = change_plan(&BillingAccount::default(), "starter", t("2026-03-01T00:00:00Z")).unwrap();
        let s = account(e1.clone());
        let e2 = change_plan(&s, "growth", t("2026-03-21T00:00:00Z")).unwrap();
        let s = account([e1, e2].concat());
        let d = draft_invoice(&s, Month::parse("2026-03").unwrap(), &Usage::new());
        // Trial until the 15th; starter 15th-21st (6 of 31 days), growth 21st-end (11 of 31 days).
        let starter = (4_900.0_f64 * 6.0 / 31.0).round() as i64;
        let growth = (19_900.0_f64 * 11.0 / 31.0).round() as i64;
        assert_eq!(d.lines.iter().map(|l| l.amount).collect::<Vec<_>>(), vec![starter, growth]);
        assert_eq!(d.plan, "growth");
    }

    #[test]
    fn limits_warn_and_block_marketing() {
        let starter = plan("starter").unwrap();
        assert_eq!(limit_state(starter, 3_999), LimitState::Ok);
        assert_eq!(limit_state(starter, 4_000), LimitState::Warning);
        assert!(!marketing_allowed(starter, 5_000));
        assert!(marketing_allowed(plan("growth").unwrap(), 60_000));
    }

    #[test]
    fn limit_notices_go_out_once_per_month_and_level() {
        let s = BillingAccount::default(); // the free plan: limit 100
        let feb = Month::parse("2026-02").unwrap();
        let now = t("2026-02-10T00:00:00Z");
        assert!(notify_limit(&s, feb, 79, now).is_empty());
        let warned = notify_limit(&s, feb, 80, now);
        assert!(matches!(&warned[0], Event::UsageLimitNotified { level: LimitState::Warning, .. }));
        let s = account(warned);
        assert!(notify_limit(&s, feb, 90, now).is_empty(), "warned once");
        let reached = notify_limit(&s, feb, 100, now);
        assert!(matches!(&reached[0], Event::UsageLimitNotified { level: LimitState::Reached, .. }));
        assert_eq!(notify_limit(&s, feb.next(), 85, now).len(), 1, "a new month, a new notice");
    }

    #[test]
    fn metering_counts_free_types_without_charging_them() {
        let p = |billable, t: &str| Pricing {
            billable: Some(billable),
            pricing_model: Some("PMP".into()),
            category: Some("service".into()),
            pricing_type: Some(t.into()),
        };
        assert_eq!(metered(&p(false, "free_customer_service")), Some(("service".into(), false)));
        assert_eq!(metered(&p(true, "free_entry_point")), Some(("service".into(), false)));
        assert_eq!(metered(&p(true, "regular")), Some(("service".into(), true)));
    }

    #[test]
    fn invoices_are_issued_once_and_dunned_on_schedule() {
        let issued = InvoiceIssued {
            invoice_id: Uuid::nil(),
            number: "T-2026-01".into(),
            month: "2026-01".into(),
            plan: "starter".into(),
            currency: "USD".into(),
            lines: vec![],
            subtotal: 0,
            vat_rate_bp: 0,
            vat: 0,
            total: 0,
            tax_id: None,
            bill_to: None,
            pdf: None,
            due_at: t("2026-02-15T00:00:00Z"),
            at: t("2026-02-01T00:00:00Z"),
        };
        let inv = issue(&Invoice::default(), issued.clone()).iter().fold(Invoice::default(), |s, e| s.evolve(e));
        assert!(issue(&inv, issued).is_empty());
        let failed = t("2026-02-16T00:00:00Z");
        let mut inv = payment_failed(&inv, "card declined", failed).unwrap().iter().fold(inv, |s, e| s.evolve(e));
        assert_eq!(dunning_due(&inv, failed), Some(1));
        inv = record_dunning(&inv, failed).iter().fold(inv, |s, e| s.evolve(e));
        assert_eq!(dunning_due(&inv, failed + Duration::days(2)), None);
        assert_eq!(dunning_due(&inv, failed + Duration::days(3)), Some(2));
        inv = pay(&inv, None, failed + Duration::days(4)).unwrap().iter().fold(inv, |s, e| s.evolve(e));
        assert_eq!(dunning_due(&inv, failed + Duration::days(9)), None);
        assert!(pay(&inv, None, failed).unwrap().is_empty());
    }
}
