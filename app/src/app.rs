//! The application: every port the use cases need, wired once at start.

use std::sync::Arc;

use chrono::Duration;
use parley_domain::contact::Contact;
use parley_domain::conversation::Conversation;
use parley_domain::directory::KeywordSettings;
use parley_domain::media::UploadedFile;
use parley_domain::message::Message;
use parley_domain::number::Number;
use parley_domain::optout::Keywords;
use parley_domain::template::Template;
use parley_domain::tenant::Tenant;
use parley_domain::user::User;
use parley_domain::wamid::WamidLink;
use parley_events::EventStore;
use parley_vault::Vault;
use parley_whatsapp::WhatsAppApi;

use crate::auth::TokenVerifier;
use crate::blobs::BlobStore;
use crate::clock::Clock;
use crate::idempotency::IdempotencyStore;
use crate::identity::audit::AuditLog;
use crate::identity::throttle::{FailureThrottle, RateLimiter};
use crate::identity::IdentityProvider;
use crate::mail::Mailer;
use crate::queue::WorkQueue;
use crate::readmodel::ReadModels;
use crate::repo::Repository;
use crate::sealing::EventSealer;

/// The adapters an [`App`] runs on.
pub struct Ports {
    /// Paces sends per number and per customer (SPEC 4.6).
    pub rate_limiter: Arc<dyn crate::ratelimit::RateLimiter>,
    pub store: Arc<dyn EventStore>,
    pub vault: Arc<dyn Vault>,
    pub read_models: Arc<dyn ReadModels>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub outbound_queue: Arc<dyn WorkQueue>,
    pub whatsapp: Arc<dyn WhatsAppApi>,
    pub tokens: Arc<dyn TokenVerifier>,
    pub clock: Arc<dyn Clock>,
    pub blobs: Arc<dyn BlobStore>,
    pub mailer: Arc<dyn Mailer>,
    pub identity: Arc<dyn IdentityProvider>,
    pub audit: Arc<dyn AuditLog>,
    /// The blind index of message text (SPEC 5.2).
    pub search: Arc<dyn crate::search::SearchIndex>,
}

/// Behaviour that is configuration, not wiring.
#[derive(Debug, Clone)]
pub struct Settings {
    pub send_max_attempts: u32,
    pub unconfirmed_grace: Duration,
    pub keywords: Keywords,
    /// States kept in memory per aggregate type.
    pub cache_capacity: usize,
    /// Sends to one customer from one number: WhatsApp's pair rate limit.
    pub pair_limit: parley_domain::ratelimit::Limit,
    /// Failed sign-ins per account, and per client address, before a lock-out.
    pub login_failures_per_account: u32,
    pub login_failures_per_client: u32,
    /// How long failed sign-ins count (and a lock-out lasts at most).
    pub login_failure_window: std::time::Duration,
    /// Authenticated requests per second per tenant, and the burst allowed above it.
    pub tenant_requests_per_second: u32,
    pub tenant_request_burst: u32,
}

impl Settings {
    /// The settings the environment's configuration asks for.
    pub fn from_config(config: &crate::Config) -> Result<Self, crate::AppError> {
        let mut keywords = Keywords::default();
        keywords.opt_out.extend(config.extra_opt_out_keywords.iter().cloned());
        Ok(Settings {
            send_max_attempts: config.send_max_attempts,
            unconfirmed_grace: Duration::from_std(config.unconfirmed_grace).map_err(crate::AppError::internal)?,
            keywords,
            tenant_requests_per_second: config.tenant_rate_limit,
            tenant_request_burst: config.tenant_rate_limit.saturating_mul(2),
            ..Settings::default()
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            send_max_attempts: 5,
            unconfirmed_grace: Duration::minutes(10),
            keywords: Keywords::default(),
            cache_capacity: 200_000,
            // About one message every six seconds, with a short burst allowed.
            pair_limit: parley_domain::ratelimit::Limit { rate: 1.0 / 6.0, burst: 10.0 },
            login_failures_per_account: 5,
            login_failures_per_client: 20,
            login_failure_window: std::time::Duration::from_secs(15 * 60),
            tenant_requests_per_second: 100,
            tenant_request_burst: 200,
        }
    }
}

pub struct App {
    pub rate_limiter: Arc<dyn crate::ratelimit::RateLimiter>,
    pub store: Arc<dyn EventStore>,
    pub sealer: Arc<EventSealer>,
    pub read_models: Arc<dyn ReadModels>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub outbound_queue: Arc<dyn WorkQueue>,
    pub whatsapp: Arc<dyn WhatsAppApi>,
    pub tokens: Arc<dyn TokenVerifier>,
    pub clock: Arc<dyn Clock>,
    pub blobs: Arc<dyn BlobStore>,
    pub mailer: Arc<dyn Mailer>,
    pub settings: Settings,
    pub contacts: Repository<Contact>,
    pub conversations: Repository<Conversation>,
    pub messages: Repository<Message>,
    pub numbers: Repository<Number>,
    pub wamids: Repository<WamidLink>,
    pub keyword_settings: Repository<KeywordSettings>,
    pub templates: Repository<Template>,
    /// Files uploaded through `POST /v1/media`, for sending.
    pub uploads: Repository<UploadedFile>,
    pub identity: Arc<dyn IdentityProvider>,
    pub audit: Arc<dyn AuditLog>,
    pub tenants: Repository<Tenant>,
    pub users: Repository<User>,
    pub throttles: Throttles,
    /// Keys words into a tenant's search terms, over the search index.
    pub blinder: Arc<crate::search::Blinder>,
    /// The back office's word on marketing sends (blocked at 100 % of the
    /// plan's limit without overage); set once the back office is composed,
    /// and held weakly since the back office holds the app.
    pub marketing_allowance: std::sync::OnceLock<std::sync::Weak<dyn MarketingAllowance>>,
}

/// Whether a tenant may send marketing templates now.
#[async_trait::async_trait]
pub trait MarketingAllowance: Send + Sync {
    async fn may_send_marketing(&self, tenant_id: &str) -> Result<bool, crate::error::AppError>;
}

/// Sign-in lock-outs and the per-tenant request rate.
pub struct Throttles {
    pub per_account: FailureThrottle,
    pub per_client: FailureThrottle,
    pub per_tenant: RateLimiter,
}

impl Throttles {
    pub fn new(settings: &Settings) -> Self {
        Throttles {
            per_account: FailureThrottle::new(settings.login_failures_per_account, settings.login_failure_window),
            per_client: FailureThrottle::new(settings.login_failures_per_client, settings.login_failure_window),
            per_tenant: RateLimiter::new(settings.tenant_requests_per_second, settings.tenant_request_burst),
        }
    }
}

impl App {
    pub fn new(ports: Ports, settings: Settings) -> Arc<App> {
        let sealer = Arc::new(EventSealer::new(ports.vault.clone()));
        let capacity = settings.cache_capacity;
        Arc::new(App {
            contacts: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), capacity),
            conversations: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), capacity),
            messages: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), capacity),
            numbers: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            wamids: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), capacity / 4),
            keyword_settings: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            templates: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            uploads: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            rate_limiter: ports.rate_limiter,
            tenants: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            users: Repository::new(ports.store.clone(), sealer.clone(), ports.clock.clone(), 10_000),
            throttles: Throttles::new(&settings),
            blinder: Arc::new(crate::search::Blinder::new(ports.search, ports.vault.clone())),
            marketing_allowance: std::sync::OnceLock::new(),
            identity: ports.identity,
            audit: ports.audit,
            store: ports.store,
            sealer,
            read_models: ports.read_models,
            idempotency: ports.idempotency,
            outbound_queue: ports.outbound_queue,
            whatsapp: ports.whatsapp,
            tokens: ports.tokens,
            clock: ports.clock,
            blobs: ports.blobs,
            mailer: ports.mailer,
            settings,
        })
    }

    /// What the search projection runs its events through.
    pub fn search_indexer(&self) -> crate::search::SearchIndexer {
        crate::search::SearchIndexer::new(self.sealer.clone(), self.blinder.clone())
    }
}
