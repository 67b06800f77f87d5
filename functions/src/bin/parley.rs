//! `parley`: the local all-in-one server and its command line.

use anyhow::Context;
use chrono::Duration;
use clap::{Parser, Subcommand};
use parley_app::auth::{valid_tenant_id, Role};
use parley_app::Config;
use parley_domain::billing::Month;
use parley_functions::local::{shutdown_signal, Local};

// The server allocates many small, short-lived values (JSON, events) across
// threads; mimalloc handles that pattern markedly better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "parley", version, about = "Parley: WhatsApp Business messaging backend (local runtime)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the simulator and every worker (the default).
    Serve,
    /// Print a bearer token for a tenant, signed by the local key.
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "owner")]
        role: Role,
        #[arg(long, default_value = "dev")]
        user: String,
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
    /// Counts for a tenant as the read models see them, and the event log's head (JSON).
    Stats {
        #[arg(long)]
        tenant: String,
    },
    /// Message templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Read-model maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Billing runs, as the scheduler does them.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Archives in blob storage (gzip JSON Lines per tenant and month).
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Archive a tenant's messages older than its retention now, as the daily run does.
    Run {
        #[arg(long)]
        tenant: String,
    },
    /// Bring an archived month back into the event store and the read models. Re-running restores nothing twice.
    Restore {
        #[arg(long)]
        tenant: String,
        /// YYYY-MM
        #[arg(long)]
        month: String,
    },
    /// Set how many days a tenant's messages stay in the hot store (1 to 3650).
    Retention {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Issue the invoices of a month (YYYY-MM; default: last month). Re-running issues nothing twice.
    Invoice {
        #[arg(long)]
        month: Option<String>,
    },
    /// Send the dunning mails that are due now.
    Dunning,
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Check template JSON files offline with the rules the API applies; exits 1 on any broken rule.
    Lint {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Rebuild read models from the event log, from zero.
    Rebuild {
        /// One projection (messages, conversations, numbers, jobs, analytics, billing-usage, invoices, search); all when absent.
        #[arg(long)]
        name: Option<String>,
    },
    /// How far each projection is behind the event log.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    parley_functions::telemetry::init();
    let cli = Cli::parse();
    // Linting is offline: it needs no configuration or data directory.
    if let Some(Command::Templates { command: TemplatesCommand::Lint { files } }) = &cli.command {
        let clean = parley_functions::lint::lint_files(files, &mut std::io::stdout().lock())?;
        std::process::exit(if clean { 0 } else { 1 });
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let addr = config.http_addr;
            let local = Local::open(config)?;
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
            local.run(listener, shutdown_signal()).await
        }
        Command::Token { tenant, role, user, ttl_hours } => {
            anyhow::ensure!(valid_tenant_id(&tenant), "--tenant: use 1 to 64 letters, digits, - or _");
            let local = Local::open(config)?;
            let token = local.issuer.issue(&tenant, &user, role, chrono::Utc::now(), Duration::hours(ttl_hours))?;
            println!("{token}");
            Ok(())
        }
        Command::Projections { command: ProjectionsCommand::Rebuild { name } } => {
            let local = Local::open(config)?;
            let started = std::time::Instant::now();
            eprintln!("rebuilding {} from the event log...", name.as_deref().unwrap_or("all projections"));
            local.projections.rebuild(name.as_deref()).await?;
            for (name, lag) in local.projections.lag().await? {
                eprintln!("{name}: rebuilt, {lag} events behind");
            }
            eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Stats { tenant } => {
            let local = Local::open(config)?;
            let messages = local.app.read_models.count_messages(&tenant).await?;
            let head = local.app.store.head_position().await?;
            let lag: serde_json::Map<String, serde_json::Value> =
                local.projections.lag().await?.into_iter().map(|(n, l)| (n, l.into())).collect();
            println!(
                "{}",
                serde_json::json!({"tenant": tenant, "messages": messages, "event_log_head": head, "projection_lag": lag})
            );
            Ok(())
        }
        Command::Billing { command } => {
            let local = Local::open(config)?;
            // Usage comes from the read models: bring them up to date first.
            local.projections.catch_up().await?;
            match command {
                BillingCommand::Invoice { month } => {
                    let month = match month {
                        Some(m) => Month::parse(&m).context("--month: use YYYY-MM")?,
                        None => Month::of(chrono::Utc::now()).previous(),
                    };
                    eprintln!("issuing the invoices of {month}...");
                    let issued = local.ops.issue_invoices(month).await?;
                    println!("{issued} invoices issued for {month}");
                }
                BillingCommand::Dunning => {
                    let sent = local.ops.send_dunning_mails().await?;
                    println!("{sent} dunning mails sent");
                }
            }
            Ok(())
        }
        Command::Archive { command } => {
            let local = Local::open(config)?;
            // Archives hold the message rows: bring the read models up to date first.
            local.projections.catch_up().await?;
            match command {
                ArchiveCommand::Run { tenant } => {
                    let days = local.ops.retention_days(&tenant).await?;
                    let cutoff = chrono::Utc::now() - Duration::days(i64::from(days));
                    eprintln!("archiving the messages of {tenant} dormant since before {cutoff} ({days} days)...");
                    let months = local
                        .ops
                        .archive_before(&tenant, cutoff, |done, total| async move {
                            eprintln!("{done}/{total} streams");
                            Ok(())
                        })
                        .await?;
                    for month in months {
                        println!("{}\t{} streams\t{}\t{}", month.month, month.streams, month.events, month.messages);
                    }
                }
                ArchiveCommand::Restore { tenant, month } => {
                    let month = Month::parse(&month).context("--month: use YYYY-MM")?;
                    eprintln!("restoring {month} of {tenant}...");
                    let restored = local.ops.restore_month(&tenant, month).await?;
                    println!(
                        "{} archived events: {} put back, {} message rows rebuilt",
                        restored.archived, restored.events, restored.messages
                    );
                }
                ArchiveCommand::Retention { tenant, days } => {
                    local.ops.set_retention(&tenant, days, "cli").await?;
                    println!("{tenant}: messages stay hot for {days} days");
                }
            }
            Ok(())
        }
        Command::Templates { command: TemplatesCommand::Lint { .. } } => Ok(()),
        Command::Projections { command: ProjectionsCommand::Status } => {
            let local = Local::open(config)?;
            for (name, lag) in local.projections.lag().await? {
                println!("{name}\t{lag} events behind");
            }
            Ok(())
        }
    }
}
