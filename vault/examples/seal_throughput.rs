//! Measures the local vault: creating data keys for new contacts (store writes, one at a time
//! and from many concurrent callers), then sealing and opening message texts with cached keys
//! (the hot path of inbound webhooks).
//!
//! `cargo run --release -p parley-vault --example seal_throughput [contacts] [messages]`

use std::sync::Arc;
use std::time::Instant;

use parley_vault::{KeyScope, LocalVault, Vault, VaultError};

const TEXT: &[u8] = b"Does it come in another color? I would like the blue one, size M.";

/// Seals `TEXT` once for every scope from `tasks` concurrent tasks; returns the seconds taken.
async fn seal_each(vault: &Arc<LocalVault>, scopes: &Arc<Vec<KeyScope>>, tasks: usize) -> Result<f64, VaultError> {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let vault = Arc::clone(vault);
        let scopes = Arc::clone(scopes);
        workers.spawn(async move {
            for scope in scopes.iter().skip(t).step_by(tasks) {
                vault.seal(scope, TEXT).await?;
            }
            Ok::<_, VaultError>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| VaultError::Unavailable(e.to_string()))??;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn scopes(tenant: &str, count: usize) -> Arc<Vec<KeyScope>> {
    Arc::new((0..count).map(|i| KeyScope::contact(tenant, &format!("1555{i:07}"))).collect())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let contacts: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);
    let messages: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(400_000);

    let dir = tempfile::tempdir()?;
    let vault = Arc::new(LocalVault::open(dir.path())?);

    let sequential = scopes("bench-sequential", contacts);
    let seconds = seal_each(&vault, &sequential, 1).await?;
    println!("new keys, 1 caller:   {contacts} in {seconds:.2}s ({:.0}/s)", contacts as f64 / seconds);

    let concurrent = scopes("bench-concurrent", contacts);
    let seconds = seal_each(&vault, &concurrent, 64).await?;
    println!("new keys, 64 callers: {contacts} in {seconds:.2}s ({:.0}/s)", contacts as f64 / seconds);

    // Cached keys: every message goes to a contact whose key is already known.
    let hot: Arc<Vec<KeyScope>> = Arc::new(concurrent.iter().cycle().take(messages).cloned().collect());
    let seconds = seal_each(&vault, &hot, 8).await?;
    println!("seal, cached, 8 tasks: {messages} in {seconds:.2}s ({:.0}/s)", messages as f64 / seconds);

    let sealed = vault.seal(&concurrent[0], TEXT).await?;
    let started = Instant::now();
    for _ in 0..messages {
        vault.open(&sealed).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("open, cached, 1 task: {messages} in {seconds:.2}s ({:.0}/s)", messages as f64 / seconds);
    Ok(())
}
