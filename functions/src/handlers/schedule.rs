//! Scheduled workers (EventBridge Scheduler in AWS, timers locally): each
//! runs once per invocation and is safe to run again (a retried or
//! duplicated schedule does nothing twice).

use chrono::{DateTime, Utc};
use parley_app::ops::Ops;
use parley_app::App;
use parley_domain::billing::Month;
use serde_json::Value;

/// The 24h window closer (SPEC 4.1): returns how many windows it expired.
pub async fn close_windows(app: &App) -> anyhow::Result<usize> {
    let expired = app.close_expired_windows().await?;
    tracing::info!(expired, "window closer ran");
    Ok(expired)
}

/// The month an invoicer run bills: `{"month": "YYYY-MM"}` in the payload
/// (to bill a month again by hand), else the month before `now`.
pub fn invoice_month(payload: &Value, now: DateTime<Utc>) -> anyhow::Result<Month> {
    match payload.get("month") {
        None | Some(Value::Null) => Ok(Month::of(now).previous()),
        Some(Value::String(month)) => {
            Month::parse(month).ok_or_else(|| anyhow::anyhow!("month: `{month}` is not a YYYY-MM month"))
        }
        Some(other) => anyhow::bail!("month: {other} is not a YYYY-MM string"),
    }
}

/// The monthly invoicer: issues the invoice of `month` for every billed
/// tenant; returns how many this run issued (a re-run issues none twice).
pub async fn issue_invoices(ops: &Ops, month: Month) -> anyhow::Result<usize> {
    let issued = ops.issue_invoices(month).await?;
    tracing::info!(%month, issued, "invoicer ran");
    Ok(issued)
}

/// Dunning: sends the reminders due for failed payments.
pub async fn send_dunning_mails(ops: &Ops) -> anyhow::Result<usize> {
    let sent = ops.send_dunning_mails().await?;
    tracing::info!(sent, "dunning ran");
    Ok(sent)
}

/// Usage notices at 80 % and 100 % of a plan's limit, once per month and level.
pub async fn send_usage_notices(ops: &Ops) -> anyhow::Result<usize> {
    let told = ops.send_usage_notices().await?;
    tracing::info!(told, "usage notices ran");
    Ok(told)
}

/// The archiver: queues one archive run job per tenant; the job runner does
/// the work. Returns how many it queued.
pub async fn queue_archive_runs(ops: &Ops, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let queued = ops.queue_archive_runs(now).await?;
    tracing::info!(queued, "archiver ran");
    Ok(queued)
}

/// The cleanup: fails queued messages that can no longer be sent at `now`.
pub async fn expire_queued_messages(ops: &Ops, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let expired = ops.expire_queued_messages(now).await?;
    tracing::info!(expired, "message cleanup ran");
    Ok(expired)
}

/// The template poller: asks WhatsApp for the status of every template and
/// records what changed.
pub async fn poll_template_statuses(ops: &Ops) -> anyhow::Result<usize> {
    let changes = ops.poll_template_statuses().await?;
    tracing::info!(changes, "template poller ran");
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_invoicer_bills_the_month_before_unless_told_which() {
        let now: DateTime<Utc> = "2027-01-01T02:00:00Z".parse().unwrap();
        assert_eq!(invoice_month(&json!({}), now).unwrap(), Month { year: 2026, month: 12 });
        assert_eq!(invoice_month(&json!({"month": "2026-07"}), now).unwrap(), Month { year: 2026, month: 7 });
        assert!(invoice_month(&json!({"month": "July"}), now).unwrap_err().to_string().contains("July"));
        assert!(invoice_month(&json!({"month": 7}), now).is_err());
    }
}
