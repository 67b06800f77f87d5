//! Parley's back office next to the messaging [`App`]: jobs and their
//! runner, CSV exports, analytics and billing (plans, usage, invoices,
//! dunning). It builds on the App's ports (event store, blob store,
//! mailer, clock) and adds the read models and the job queue it needs.

use std::sync::Arc;
use std::time::Duration;

use parley_domain::billing::{BillingAccount, Invoice};
use parley_domain::job::Job;
use parley_domain::Event;

use crate::app::App;
use crate::queue::WorkQueue;
use crate::readmodel::analytics::AnalyticsReadModel;
use crate::readmodel::billing::BillingReadModel;
use crate::readmodel::jobs::JobReadModel;
use crate::repo::{Aggregate, Repository};
use crate::services::stripe::StripeClient;

impl Aggregate for Job {
    fn apply(self, event: &Event) -> Self {
        self.evolve(event)
    }
}

impl Aggregate for BillingAccount {
    fn apply(self, event: &Event) -> Self {
        self.evolve(event)
    }
}

impl Aggregate for Invoice {
    fn apply(self, event: &Event) -> Self {
        self.evolve(event)
    }
}

/// The adapters the back office adds to the App's.
pub struct OpsPorts {
    pub jobs: Arc<dyn JobReadModel>,
    pub analytics: Arc<dyn AnalyticsReadModel>,
    pub billing: Arc<dyn BillingReadModel>,
    /// Where queued jobs wait for the runner (SQS in AWS).
    pub job_queue: Arc<dyn WorkQueue>,
}

/// Stripe's API base and secret key, when invoices are also created there.
#[derive(Clone)]
pub struct StripeSettings {
    pub api_base: String,
    pub secret_key: String,
    /// The signing secret of the webhook endpoint (`whsec_...`).
    pub webhook_secret: String,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("StripeSettings").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct OpsSettings {
    /// Attempts of a job before it fails for good.
    pub job_max_attempts: u32,
    /// The pause before a failed job's second attempt, doubled for each further one.
    pub job_retry_delay: Duration,
    /// How long download links stay valid.
    pub download_ttl: Duration,
    /// Days from issue to due date of an invoice.
    pub invoice_due_days: i64,
    pub stripe: Option<StripeSettings>,
    /// How often the in-process scheduler looks for due work.
    pub scheduler_interval: Duration,
    /// Days records stay hot before the archiver moves them, unless the
    /// tenant chose otherwise (SPEC 6.3).
    pub retention_days: u32,
    /// How long an outbound message may wait in the queue before the
    /// cleanup fails it as expired.
    pub queued_message_ttl: Duration,
    /// How often the template status poller asks the Graph API.
    pub template_poll_interval: Duration,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            job_max_attempts: 3,
            job_retry_delay: Duration::from_secs(30),
            download_ttl: Duration::from_secs(24 * 3600),
            invoice_due_days: 14,
            stripe: None,
            scheduler_interval: Duration::from_secs(60),
            retention_days: 90,
            queued_message_ttl: Duration::from_secs(24 * 3600),
            template_poll_interval: Duration::from_secs(3600),
        }
    }
}

impl OpsSettings {
    /// Reads `PARLEY_JOB_MAX_ATTEMPTS`, `PARLEY_SCHEDULER_INTERVAL_SECS`, `PARLEY_RETENTION_DAYS`,
    /// `PARLEY_QUEUED_MESSAGE_TTL_SECS`, `PARLEY_TEMPLATE_POLL_INTERVAL_SECS` and, for Stripe, `PARLEY_STRIPE_SECRET_KEY`,
    /// `PARLEY_STRIPE_WEBHOOK_SECRET` and `PARLEY_STRIPE_API_BASE`; adds one
    /// line to `problems` per bad value.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> OpsSettings {
        let mut s = OpsSettings::default();
        let mut number = |key: &str, min: u64, max: u64| -> Option<u64> {
            let raw = get(key)?;
            match raw.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    problems.push(format!("{key}: `{raw}` is not a whole number from {min} to {max}"));
                    None
                }
            }
        };
        if let Some(n) = number("PARLEY_JOB_MAX_ATTEMPTS", 1, 20) {
            s.job_max_attempts = n as u32;
        }
        if let Some(n) = number("PARLEY_SCHEDULER_INTERVAL_SECS", 1, 3600) {
            s.scheduler_interval = Duration::from_secs(n);
        }
        if let Some(n) = number("PARLEY_RETENTION_DAYS", 1, 3650) {
            s.retention_days = n as u32;
        }
        if let Some(n) = number("PARLEY_QUEUED_MESSAGE_TTL_SECS", 60, 30 * 24 * 3600) {
            s.queued_message_ttl = Duration::from_secs(n);
        }
        if let Some(n) = number("PARLEY_TEMPLATE_POLL_INTERVAL_SECS", 60, 7 * 24 * 3600) {
            s.template_poll_interval = Duration::from_secs(n);
        }
        match (get("PARLEY_STRIPE_SECRET_KEY"), get("PARLEY_STRIPE_WEBHOOK_SECRET")) {
            (Some(secret_key), Some(webhook_secret)) => {
                let api_base = get("PARLEY_STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com".into());
                if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
                    problems.push(format!("PARLEY_STRIPE_API_BASE: `{api_base}` must start with https:// or http://"));
                }
                s.stripe = Some(StripeSettings { api_base, secret_key, webhook_secret });
            }
            (None, None) => {}
            _ => problems.push(
                "PARLEY_STRIPE_SECRET_KEY and PARLEY_STRIPE_WEBHOOK_SECRET: set both to use Stripe, or neither".into(),
            ),
        }
        s
    }
}

pub struct Ops {
    pub app: Arc<App>,
    pub jobs: Repository<Job>,
    pub accounts: Repository<BillingAccount>,
    pub invoices: Repository<Invoice>,
    pub job_views: Arc<dyn JobReadModel>,
    pub analytics: Arc<dyn AnalyticsReadModel>,
    pub billing: Arc<dyn BillingReadModel>,
    pub job_queue: Arc<dyn WorkQueue>,
    pub stripe: Option<StripeClient>,
    pub settings: OpsSettings,
}

/// States kept in memory per back-office aggregate type.
const CACHE_CAPACITY: usize = 10_000;

fn repository<S: Aggregate>(app: &App) -> Repository<S> {
    Repository::new(app.store.clone(), app.sealer.clone(), app.clock.clone(), CACHE_CAPACITY)
}

impl Ops {
    pub fn new(app: Arc<App>, ports: OpsPorts, settings: OpsSettings) -> Result<Arc<Ops>, crate::error::AppError> {
        let stripe = settings.stripe.as_ref().map(StripeClient::new).transpose()?;
        let ops = Arc::new(Ops {
            jobs: repository(&app),
            accounts: repository(&app),
            invoices: repository(&app),
            job_views: ports.jobs,
            analytics: ports.analytics,
            billing: ports.billing,
            job_queue: ports.job_queue,
            stripe,
            settings,
            app,
        });
        let weak: std::sync::Weak<Ops> = Arc::downgrade(&ops);
        let allowance: std::sync::Weak<dyn crate::app::MarketingAllowance> = weak;
        // The first back office composed on an app answers for it.
        let _ = ops.app.marketing_allowance.set(allowance);
        Ok(ops)
    }
}
