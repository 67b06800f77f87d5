//! Parley's back office next to the messaging [`App`]: jobs and their
//! runner, CSV exports, analytics, billing (plans, usage, invoices, dunning)
//! and the archiver. It builds on the App's ports (event store, blob store,
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
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub api_base: String,
    pub secret_key: String,
    /// The signing secret of the webhook endpoint (`whsec_...`).
    pub webhook_secret: String,
}

#[derive(Debug, Clone)]
pub struct OpsSettings {
    /// Attempts of a job before it fails for good.
    pub job_max_attempts: u32,
    /// The pause before a failed job's second attempt, doubled for each further one.
    pub job_retry_delay: Duration,
    /// How long download links stay valid.
    pub download_ttl: Duration,
    /// Days events and message rows stay in the hot stores (SPEC 6.3).
    pub retention_days: i64,
    /// Days from issue to due date of an invoice.
    pub invoice_due_days: i64,
    pub stripe: Option<StripeSettings>,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            job_max_attempts: 3,
            job_retry_delay: Duration::from_secs(30),
            download_ttl: Duration::from_secs(24 * 3600),
            retention_days: 90,
            invoice_due_days: 14,
            stripe: None,
        }
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
        Ok(Arc::new(Ops {
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
        }))
    }
}
