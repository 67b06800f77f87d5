//! The one conformance suite of the back-office read-model ports (jobs,
//! analytics, billing): every adapter, fed the same events through its
//! projections, answers the same queries the same way.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use parley_domain::billing::{InvoiceIssued, InvoiceLine, Month};
use parley_domain::event::{Failure, MessageQueued, MessageReceived, Pricing};
use parley_domain::job::{JobKind, JobQueued};
use parley_domain::{ids, Event};
use parley_events::{Projection, RecordedEvent};
use serde_json::json;
use uuid::Uuid;

use super::analytics::AnalyticsReadModel;
use super::billing::BillingReadModel;
use super::jobs::JobReadModel;

/// An adapter under test: its projections and the ports they feed.
pub struct OpsReadModels {
    pub projections: Vec<Arc<dyn Projection>>,
    pub jobs: Arc<dyn JobReadModel>,
    pub analytics: Arc<dyn AnalyticsReadModel>,
    pub billing: Arc<dyn BillingReadModel>,
}

/// Runs every case; `make` gives empty read models.
pub async fn run_ops_readmodel_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = OpsReadModels>,
{
    jobs_follow_their_lifecycle_and_page_newest_first(make().await).await;
    analytics_count_each_status_once_per_message(make().await).await;
    usage_is_metered_once_per_message_and_invoices_follow_payments(make().await).await;
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_default()
}

/// Feeds events (one stream each) through every projection, in order.
struct Log {
    events: Vec<RecordedEvent>,
    versions: BTreeMap<String, u64>,
}

impl Log {
    fn new() -> Self {
        Log { events: Vec::new(), versions: BTreeMap::new() }
    }

    fn push(&mut self, tenant: &str, stream: &str, event: Event, at: DateTime<Utc>) {
        let encoded = serde_json::to_value(&event).unwrap_or_default();
        let version = self.versions.entry(stream.to_owned()).or_default();
        *version += 1;
        self.events.push(RecordedEvent {
            event_id: Uuid::now_v7(),
            stream_id: stream.to_owned(),
            version: *version,
            tenant_id: tenant.to_owned(),
            event_type: event.type_name().to_owned(),
            schema_version: 1,
            occurred_at: at,
            recorded_at: at,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "test".into(),
            data: encoded["data"].clone(),
            global_position: self.events.len() as u64 + 1,
        });
    }

    async fn apply(&self, models: &OpsReadModels) {
        for p in &models.projections {
            let from = p.checkpoint().await.unwrap_or(0);
            let batch: Vec<RecordedEvent> = self.events.iter().filter(|e| e.global_position > from).cloned().collect();
            p.apply(&batch).await.unwrap_or_else(|e| panic!("{} failed: {e}", p.name()));
        }
    }
}

async fn jobs_follow_their_lifecycle_and_page_newest_first(m: OpsReadModels) {
    let mut log = Log::new();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, at) in [(a, t("2026-01-01T10:00:00Z")), (b, t("2026-01-01T11:00:00Z"))] {
        let q = JobQueued {
            job_id: id,
            kind: JobKind::MessageExport,
            params: json!({}),
            requested_by: "user:1".into(),
            notify: None,
            max_attempts: 2,
            at,
        };
        log.push("t1", &ids::job_stream("t1", id), Event::JobQueued(q), at);
    }
    let stream = ids::job_stream("t1", a);
    let at = t("2026-01-01T12:00:00Z");
    log.push("t1", &stream, Event::JobStarted { attempt: 1, at }, at);
    log.push("t1", &stream, Event::JobProgressed { progress: 40, at }, at);
    log.push("t1", &stream, Event::JobFailed { attempt: 1, error: "boom".into(), retrying: true, at }, at);
    log.apply(&m).await;
    let job = m.jobs.job("t1", a).await.ok().flatten().expect("job a");
    assert_eq!((job.status.as_str(), job.attempts, job.error.as_deref()), ("queued", 1, Some("boom")));

    log.push("t1", &stream, Event::JobStarted { attempt: 2, at }, at);
    log.push("t1", &stream, Event::JobSucceeded { artifact: Some("exports/t1/a.csv".into()), at }, at);
    log.apply(&m).await;
    let job = m.jobs.job("t1", a).await.ok().flatten().expect("job a");
    assert_eq!((job.status.as_str(), job.progress, job.attempts), ("succeeded", 100, 2));
    assert_eq!(job.artifact.as_deref(), Some("exports/t1/a.csv"));
    assert!(m.jobs.job("t2", a).await.ok().flatten().is_none(), "another tenant sees nothing");

    let first = m.jobs.jobs("t1", None, 1).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.items.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b]);
    let cursor = first.next_cursor.expect("a second page");
    let second = m.jobs.jobs("t1", Some(&cursor), 1).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.items.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a]);
    assert!(second.next_cursor.is_none());
}

async fn analytics_count_each_status_once_per_message(m: OpsReadModels) {
    let mut log = Log::new();
    let conversation = Uuid::now_v7();
    let day = t("2026-02-03T09:00:00Z");
    let inbound = Uuid::now_v7();
    log.push(
        "t1",
        &ids::message_stream("t1", inbound),
        Event::MessageReceived(MessageReceived {
            referral: None,
            message_id: inbound,
            conversation_id: conversation,
            number_id: "n1".into(),
            wa_id: "c1".into(),
            wamid: "w1".into(),
            kind: "text".into(),
            content: json!({"body": "hi"}),
            context: None,
            sent_at: day,
            received_at: day,
        }),
        day,
    );
    let mut outbound = Vec::new();
    for (i, kind) in ["text", "template", "template"].into_iter().enumerate() {
        let id = Uuid::now_v7();
        let at = day + chrono::Duration::seconds(60 * (i as i64 + 1));
        let content = if kind == "template" { json!({"name": "promo"}) } else { json!({"body": "hello"}) };
        log.push(
            "t1",
            &ids::message_stream("t1", id),
            Event::MessageQueued(MessageQueued {
                message_id: id,
                conversation_id: conversation,
                number_id: "n1".into(),
                wa_id: "c1".into(),
                kind: kind.into(),
                content,
                reply_to: None,
                queued_at: at,
            }),
            at,
        );
        outbound.push(id);
    }
    let later = day + chrono::Duration::hours(1);
    let s0 = ids::message_stream("t1", outbound[0]);
    // Read without delivered, then a late delivered: one delivery, one read.
    log.push("t1", &s0, Event::MessageRead { at: later }, later);
    log.push("t1", &s0, Event::MessageDelivered { at: later, pricing: None }, later);
    log.push(
        "t1",
        &ids::message_stream("t1", outbound[1]),
        Event::MessageDelivered { at: later, pricing: None },
        later,
    );
    let failure = Failure { code: Some(131049), kind: "marketing_cap".into(), title: None, detail: None };
    log.push("t1", &ids::message_stream("t1", outbound[2]), Event::MessageFailed { at: later, failure }, later);
    log.apply(&m).await;

    let date = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap_or_default();
    let rows = m.analytics.daily("t1", date, date, None).await.unwrap_or_else(|e| panic!("{e}"));
    let row = rows.get(&(date, "n1".to_owned())).expect("a row for the day and number");
    assert_eq!((row.inbound, row.outbound, row.delivered, row.read, row.failed), (1, 3, 2, 1, 1));
    assert_eq!(row.failed_by_kind.get("marketing_cap"), Some(&1));
    assert_eq!(row.templates.get("promo"), Some(&2));
    assert_eq!(row.first_response_secs, vec![60], "only the first answer to a waiting customer counts");

    // Statuses that come again, and the whole log delivered again (as a stream
    // consumer may see it), count nothing twice.
    log.push("t1", &s0, Event::MessageDelivered { at: later, pricing: None }, later);
    log.push("t1", &s0, Event::MessageRead { at: later }, later);
    log.apply(&m).await;
    log.apply(&m).await;
    let again = m.analytics.daily("t1", date, date, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, rows, "repeated statuses and redelivered events change no count");
    assert!(m.analytics.daily("t2", date, date, None).await.unwrap_or_default().is_empty());
    assert!(m.analytics.daily("t1", date, date, Some("n2")).await.unwrap_or_default().is_empty());
}

async fn usage_is_metered_once_per_message_and_invoices_follow_payments(m: OpsReadModels) {
    let mut log = Log::new();
    let at = t("2026-02-10T09:00:00Z");
    let priced = |category: &str, billable: bool, kind: &str| {
        Some(Pricing {
            billable: Some(billable),
            pricing_model: Some("PMP".into()),
            category: Some(category.into()),
            pricing_type: Some(kind.into()),
        })
    };
    for (category, billable, kind) in [("marketing", true, "regular"), ("service", false, "free_customer_service")] {
        let stream = ids::message_stream("t1", Uuid::now_v7());
        log.push("t1", &stream, Event::MessageSent { at, pricing: priced(category, billable, kind) }, at);
        log.push("t1", &stream, Event::MessageDelivered { at, pricing: priced(category, billable, kind) }, at);
    }
    let issued = InvoiceIssued {
        invoice_id: Uuid::now_v7(),
        number: "INV-2026-02-t1".into(),
        month: "2026-02".into(),
        plan: "starter".into(),
        currency: "EUR".into(),
        lines: vec![InvoiceLine { description: "fee".into(), quantity: 1, unit_micros: 49_000_000, amount: 4_900 }],
        subtotal: 4_900,
        vat_rate_bp: 0,
        vat: 0,
        total: 4_900,
        tax_id: None,
        bill_to: None,
        pdf: Some("invoices/t1/2026-02.pdf".into()),
        due_at: at,
        at,
    };
    let stream = ids::invoice_stream("t1", "2026-02");
    log.push("t1", &stream, Event::InvoiceIssued(issued.clone()), at);
    log.push("t1", &stream, Event::InvoiceLinked { external_id: "in_1".into(), at }, at);
    log.push("t1", &stream, Event::InvoicePaymentFailed { at, reason: "declined".into() }, at);
    log.apply(&m).await;

    let month = Month { year: 2026, month: 2 };
    let usage = m.billing.usage("t1", month).await.unwrap_or_default();
    assert_eq!(usage.get("marketing").map(|u| (u.billable, u.free)), Some((1, 0)));
    assert_eq!(usage.get("service").map(|u| (u.billable, u.free)), Some((0, 1)));
    assert!(m.billing.usage("t1", month.next()).await.unwrap_or_default().is_empty());
    // A later priced status of an already metered message, in a batch of its own.
    let first = log.events[0].stream_id.clone();
    let later = t("2026-03-01T00:00:00Z");
    log.push("t1", &first, Event::MessageRead { at: later }, later);
    log.push("t1", &first, Event::MessageDelivered { at: later, pricing: priced("marketing", true, "regular") }, later);
    log.apply(&m).await;
    assert_eq!(m.billing.usage("t1", month).await.unwrap_or_default(), usage, "metered once per message");
    assert!(m.billing.usage("t1", month.next()).await.unwrap_or_default().is_empty());
    assert_eq!(m.billing.billed_tenants().await.unwrap_or_default(), vec!["t1".to_owned()]);

    let invoices = m.billing.invoices("t1").await.unwrap_or_default();
    assert_eq!(invoices.len(), 1);
    assert_eq!((invoices[0].status.as_str(), invoices[0].total), ("payment_failed", 4_900));
    assert_eq!(invoices[0].lines, issued.lines);
    assert!(m.billing.invoice("t2", issued.invoice_id).await.ok().flatten().is_none());
    let (tenant, found) = m.billing.invoice_by_external_id("in_1").await.ok().flatten().expect("by external id");
    assert_eq!((tenant.as_str(), found.id), ("t1", issued.invoice_id));
    assert_eq!(m.billing.failed_invoices().await.unwrap_or_default().len(), 1);

    log.push("t1", &stream, Event::InvoicePaid { at, reference: None }, at);
    log.push("t1", &stream, Event::InvoicePaymentFailed { at, reason: "late".into() }, at);
    log.apply(&m).await;
    let paid = m.billing.invoice("t1", issued.invoice_id).await.ok().flatten().expect("invoice");
    assert_eq!(paid.status, "paid", "a paid invoice stays paid");
    assert!(m.billing.failed_invoices().await.unwrap_or_default().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readmodel::ops::SqliteOpsReadModels;
    use crate::sealing::EventSealer;

    #[tokio::test]
    async fn sqlite_ops_read_models_conform() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(parley_vault::LocalVault::open(dir.path()).unwrap());
        let sealer = Arc::new(EventSealer::new(vault));
        let counter = std::sync::atomic::AtomicUsize::new(0);
        run_ops_readmodel_suite(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let db = SqliteOpsReadModels::open(&dir.path().join(format!("ops-{n}.db"))).unwrap();
            let sealer = sealer.clone();
            async move {
                OpsReadModels {
                    projections: db.projections(sealer),
                    jobs: db.clone(),
                    analytics: db.clone(),
                    billing: db,
                }
            }
        })
        .await;
    }
}
