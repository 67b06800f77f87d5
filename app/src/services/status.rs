//! Statuses from WhatsApp's webhook (SPEC 4.4): matched to Parley's message,
//! recorded once per (wamid, status), never moving a message backwards.

use parley_domain::event::{Failure, Pricing};
use parley_domain::message::{self, StatusReport};
use parley_domain::status::DeliveryStatus;
use parley_domain::{ids, wamid};
use parley_whatsapp::{ErrorKind, StatusKind, StatusUpdate};
use uuid::Uuid;

use crate::app::App;
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

/// What became of a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    Recorded,
    AlreadyKnown,
    /// No message is known for the wamid yet; kept until one is.
    Parked,
}

pub fn report_from(update: &StatusUpdate) -> StatusReport {
    let status = match update.status {
        StatusKind::Sent => DeliveryStatus::Sent,
        StatusKind::Delivered => DeliveryStatus::Delivered,
        StatusKind::Read => DeliveryStatus::Read,
        StatusKind::Played => DeliveryStatus::Played,
        StatusKind::Failed => DeliveryStatus::Failed,
    };
    let failure = update.errors.first().map(|e| Failure {
        code: Some(e.code),
        kind: ErrorKind::from_code(e.code).as_str().to_owned(),
        title: e.title.clone().or_else(|| e.message.clone()),
        detail: e.details.clone(),
    });
    let failure = match (status, failure) {
        (DeliveryStatus::Failed, None) => {
            Some(Failure { code: None, kind: ErrorKind::Unknown.as_str().to_owned(), title: None, detail: None })
        }
        (_, f) => f,
    };
    StatusReport {
        wamid: update.wamid.clone(),
        status,
        at: update.timestamp,
        pricing: update.pricing.as_ref().map(|p| Pricing {
            billable: p.billable,
            pricing_model: p.pricing_model.clone(),
            category: p.category.clone(),
            pricing_type: p.pricing_type.clone(),
        }),
        failure,
    }
}

impl App {
    pub async fn apply_status(&self, tenant_id: &str, update: &StatusUpdate) -> Result<StatusOutcome, AppError> {
        let report = report_from(update);
        let meta = Meta::new("whatsapp");
        let message_id = match self.own_message(tenant_id, update).await? {
            Some(id) => id,
            None => match self.link_or_park(tenant_id, &report, &meta).await? {
                Some(id) => id,
                None => return Ok(StatusOutcome::Parked),
            },
        };
        self.record_status(tenant_id, message_id, report, &meta).await
    }

    /// Parley's own sends carry their message id in `biz_opaque_callback_data`.
    async fn own_message(&self, tenant_id: &str, update: &StatusUpdate) -> Result<Option<Uuid>, AppError> {
        let Some(id) = update.biz_opaque_callback_data.as_deref().and_then(|d| d.parse::<Uuid>().ok()) else {
            return Ok(None);
        };
        let state = self.messages.load(&ids::message_stream(tenant_id, id)).await?.state;
        let matches = state.is_outbound() && state.wamid.as_deref().is_none_or(|w| w == update.wamid);
        Ok(matches.then_some(id))
    }

    /// The message a wamid is linked to, or parks the status on the wamid's stream.
    async fn link_or_park(
        &self,
        tenant_id: &str,
        report: &StatusReport,
        meta: &Meta,
    ) -> Result<Option<Uuid>, AppError> {
        let target =
            Target { tenant_id, stream_id: ids::unmatched_status_stream(tenant_id, &report.wamid), wa_id: None };
        let done = self.wamids.execute(&target, meta, |s| Ok::<_, AppError>(wamid::park(s, report))).await?;
        Ok(done.state.message_id)
    }

    pub(crate) async fn record_status(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        report: StatusReport,
        meta: &Meta,
    ) -> Result<StatusOutcome, AppError> {
        let target = Target { tenant_id, stream_id: ids::message_stream(tenant_id, message_id), wa_id: None };
        let wamid = report.wamid.clone();
        let done = self
            .messages
            .execute(&target, meta, |s| Ok::<_, AppError>(message::record_status(s, report.clone())))
            .await?;
        if done.events.iter().any(|e| matches!(e, parley_domain::Event::MessageAccepted { .. })) {
            // Settled by a status rather than by the send's answer: link the wamid too.
            self.link_wamid(tenant_id, message_id, &wamid, meta).await?;
        }
        Ok(if done.events.is_empty() { StatusOutcome::AlreadyKnown } else { StatusOutcome::Recorded })
    }

    /// Links a wamid to its message and applies any statuses parked before.
    pub(crate) async fn link_wamid(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        wamid: &str,
        meta: &Meta,
    ) -> Result<(), AppError> {
        let target = Target { tenant_id, stream_id: ids::unmatched_status_stream(tenant_id, wamid), wa_id: None };
        let done = self.wamids.execute(&target, meta, |s| Ok::<_, AppError>(wamid::assign(s, message_id))).await?;
        if done.events.is_empty() {
            return Ok(());
        }
        for parked in &done.state.parked {
            let target = Target { tenant_id, stream_id: ids::message_stream(tenant_id, message_id), wa_id: None };
            self.messages
                .execute(&target, meta, |s| Ok::<_, AppError>(message::record_status(s, parked.clone())))
                .await?;
        }
        Ok(())
    }
}
