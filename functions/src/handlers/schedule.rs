//! Scheduled workers (EventBridge schedules in AWS, timers locally).

use parley_app::App;

/// The 24h window closer (SPEC 4.1): returns how many windows it expired.
pub async fn close_windows(app: &App) -> anyhow::Result<usize> {
    let expired = app.close_expired_windows().await?;
    tracing::info!(expired, "window closer ran");
    Ok(expired)
}
