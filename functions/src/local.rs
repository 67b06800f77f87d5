//! The local runtime: SQLite event store and read models, a SQLite work
//! queue, files for keys, the built-in WhatsApp simulator, every worker
//! in-process. One process, one data directory, no cloud account.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use parley_app::app::{Ports, Settings};
use parley_app::auth::LocalIssuer;
use parley_app::blobs::FileBlobStore;
use parley_app::config::{Config, StoreKind};
use parley_app::idempotency::SqliteIdempotency;
use parley_app::identity::audit::SqliteAuditLog;
use parley_app::identity::local::LocalIdentity;
use parley_app::mail::OutboxMailer;
use parley_app::ops::{Ops, OpsPorts};
use parley_app::queue::SqliteQueue;
use parley_app::readmodel::ops::SqliteOpsReadModels;
use parley_app::readmodel::sqlite::SqliteReadModels;
use parley_app::search::sqlite::SqliteSearchIndex;
use parley_app::services::dispatcher::DispatchReactor;
use parley_app::services::jobs::JobReactor;
use parley_app::services::numbers::AppNumberDirectory;
use parley_app::{App, Clock, SystemClock};
use parley_events::{EventStore, ProjectionRunner, SqliteCheckpoints, SqliteEventStore};
use parley_vault::LocalVault;
use parley_whatsapp::simulator::{self, Simulator, SimulatorConfig};
use parley_whatsapp::GraphClient;
use tokio::sync::watch;

/// Deliveries of one outbound job before it goes to the dead-letter store.
const MAX_RECEIVES: u32 = 10;
/// Read models trail the log by at most about this much under load.
const READ_MODEL_COALESCE: std::time::Duration = std::time::Duration::from_millis(10);
/// Queued messages wait at most about this much before the sender sees them.
const DISPATCH_COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Everything the local runtime runs.
pub struct Local {
    pub app: Arc<App>,
    pub config: Config,
    pub read_models: Arc<SqliteReadModels>,
    pub projections: Arc<ProjectionRunner>,
    pub dispatch: Arc<ProjectionRunner>,
    /// Present when the built-in simulator stands in for the Graph API.
    pub simulator: Option<Arc<Simulator>>,
    pub issuer: Arc<LocalIssuer>,
    /// Jobs, exports, analytics and billing.
    pub ops: Arc<Ops>,
    pub ops_models: Arc<SqliteOpsReadModels>,
    file_blobs: Arc<FileBlobStore>,
}

impl Local {
    /// Opens (or creates) the data directory and composes the application.
    pub fn open(config: Config) -> anyhow::Result<Local> {
        Local::open_with_clock(config, Arc::new(SystemClock))
    }

    /// As [`Local::open`], on the given clock (tests move a manual one).
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Local> {
        if config.store != StoreKind::Sqlite {
            anyhow::bail!("the local runtime keeps its data in SQLite: set PARLEY_STORE=sqlite or leave it unset");
        }
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
        let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.join("events.db"))?);
        let vault = Arc::new(LocalVault::open(dir)?);
        let read_models = SqliteReadModels::open(&dir.join("readmodels.db"))?;
        let idempotency = Arc::new(SqliteIdempotency::open(&dir.join("state.db"))?);
        let queue = Arc::new(SqliteQueue::open(&dir.join("queue.db"), MAX_RECEIVES)?);
        let checkpoints = Arc::new(SqliteCheckpoints::open(&dir.join("state.db"))?);
        let issuer = Arc::new(LocalIssuer::open(dir)?);
        let blob_signing_key = parley_app::keyfile::load_or_create(&dir.join("blobs.key"))?;
        let blobs = Arc::new(FileBlobStore::open(&dir.join("blobs"), &config.public_url, blob_signing_key)?);
        let file_blobs = blobs.clone();
        let ops_models = SqliteOpsReadModels::open(&dir.join("ops.db"))?;
        let job_queue = Arc::new(SqliteQueue::open(&dir.join("jobs.db"), MAX_RECEIVES)?);
        let mailer = Arc::new(OutboxMailer::open(&dir.join("outbox"), &config.mail_from)?);
        let identity =
            Arc::new(LocalIdentity::open(&dir.join("identity.db"), issuer.clone(), mailer.clone(), clock.clone())?);
        let audit = Arc::new(SqliteAuditLog::open(&dir.join("audit.db"))?);
        let search = SqliteSearchIndex::open(&dir.join("search.db"))?;

        let simulated = config.whatsapp_api_base.is_none();
        let api_base =
            config.whatsapp_api_base.clone().unwrap_or_else(|| format!("http://{}/simulator", config.http_addr));
        let whatsapp = GraphClient::try_new(&api_base, &config.whatsapp_api_version, config.whatsapp_timeout)
            .map_err(|e| anyhow::anyhow!("PARLEY_WHATSAPP_API_BASE: {e}"))?;

        let settings = Settings::from_config(&config)?;
        let app = App::new(
            Ports {
                rate_limiter: Arc::new(parley_app::ratelimit::MemoryRateLimiter::default()),
                store: store.clone(),
                vault,
                read_models: read_models.clone(),
                idempotency,
                outbound_queue: queue.clone(),
                whatsapp: Arc::new(whatsapp),
                tokens: issuer.clone(),
                clock,
                blobs,
                mailer,
                identity,
                audit: audit.clone(),
                search: search.clone(),
            },
            settings,
        );
        let mut all_projections = read_models.projections();
        all_projections.extend(ops_models.projections(app.sealer.clone()));
        all_projections.push(search.projection(app.search_indexer()));
        let ops = Ops::new(
            app.clone(),
            OpsPorts {
                jobs: ops_models.clone(),
                analytics: ops_models.clone(),
                billing: ops_models.clone(),
                job_queue: job_queue.clone(),
            },
            config.ops.clone(),
        )?;
        // Under load, a few milliseconds of patience turns a transaction per
        // commit into one per few hundred events.
        let mut read_side = all_projections;
        read_side.push(audit);
        let projections = Arc::new(ProjectionRunner::new(store.clone(), read_side).with_coalesce(READ_MODEL_COALESCE));
        let job_reactor = JobReactor::new(job_queue.clone(), checkpoints.clone(), config.ops.job_retry_delay);
        let dispatch = Arc::new(
            ProjectionRunner::new(
                store,
                vec![Arc::new(DispatchReactor::new(queue, checkpoints)), Arc::new(job_reactor)],
            )
            .with_coalesce(DISPATCH_COALESCE),
        );
        let simulator = simulated.then(|| {
            Simulator::new(
                SimulatorConfig {
                    webhook_url: format!("http://{}/webhooks/whatsapp", config.http_addr),
                    status_delay: config.simulator_status_delay,
                    read_receipts: true,
                },
                Arc::new(AppNumberDirectory(app.clone())),
            )
        });
        Ok(Local { app, config, read_models, projections, dispatch, simulator, issuer, ops, ops_models, file_blobs })
    }

    /// The HTTP router: the API, plus the simulator under `/simulator`.
    pub fn router(&self) -> axum::Router {
        let api = parley_app::http::router(self.app.clone())
            .merge(parley_app::http::ops::router(self.ops.clone()))
            .merge(parley_app::http::blobs::router(self.file_blobs.clone()));
        match &self.simulator {
            Some(sim) => api.nest("/simulator", simulator::router(sim.clone())),
            None => api,
        }
    }

    /// Serves on `listener` and runs every worker until `shutdown` resolves.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut workers = tokio::task::JoinSet::new();
        {
            let runner = self.projections.clone();
            let stop = stopped();
            workers.spawn(async move { runner.run(stop).await });
        }
        {
            let runner = self.dispatch.clone();
            let stop = stopped();
            workers.spawn(async move { runner.run(stop).await });
        }
        workers.spawn(parley_app::services::sender::run_sender(self.app.clone(), stopped()));
        workers.spawn(parley_app::services::jobs::run_job_worker(self.ops.clone(), stopped()));
        workers.spawn(parley_app::services::scheduler::run_scheduler(self.ops.clone(), stopped()));
        workers.spawn(parley_app::services::window_closer::run_window_closer(
            self.app.clone(),
            self.config.window_closer_interval,
            stopped(),
        ));

        let router = self.router();
        tracing::info!(
            addr = %listener.local_addr()?,
            data_dir = %self.config.data_dir.display(),
            whatsapp = if self.simulator.is_some() { "built-in simulator" } else { "Graph API" },
            "parley is serving"
        );
        let stop_for_server = stopped();
        // The peer address feeds sign-in throttling per client.
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, service).with_graceful_shutdown(stop_for_server);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        server.await.context("HTTP server failed")?;
        while workers.join_next().await.is_some() {}
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
