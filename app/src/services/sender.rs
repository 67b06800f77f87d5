//! The outbound sender (SPEC 6.1, 4.6): queued messages go to WhatsApp.
//!
//! Each queue message names one outbound message. The sender claims a
//! dispatch attempt on the message's stream *before* calling the API, so an
//! attempt is sent at most once; how the call ended is recorded after it.
//! Retryable errors schedule the next attempt with exponential backoff and
//! full jitter; permanent ones fail the message with its kind; an unknown
//! outcome waits for WhatsApp's statuses to settle it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use parley_domain::event::{Direction, Failure, MessageQueued};
use parley_domain::message::{self, DispatchSkip};
use parley_domain::number::Number;
use parley_domain::{ids, Event};
use parley_whatsapp::{Credentials, ErrorKind, RetryPolicy, SendError, SendRequest};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::App;
use crate::error::AppError;
use crate::queue::Delivery;
use crate::ratelimit::Acquire;
use crate::repo::{ExecuteError, Target};
use crate::sealing::Meta;

/// A job on the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum OutboundJob {
    /// Send the message (or its next attempt).
    Dispatch { tenant_id: String, message_id: Uuid },
    /// Fail an unconfirmed send that no status settled in time.
    Settle { tenant_id: String, message_id: Uuid },
    /// Fetch an inbound media message's file into the blob store.
    FetchMedia {
        tenant_id: String,
        message_id: Uuid,
        /// 1 for the first attempt.
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
}

fn first_attempt() -> u32 {
    1
}

impl OutboundJob {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How a queue delivery was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done with, and removed from the queue.
    Acked,
    /// Still on the queue, out of sight until its backoff passes. An SQS
    /// event source must report it as a batch item failure, or Lambda would
    /// delete it.
    RetryLater,
}

/// What should happen to the job next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done,
    Again(OutboundJob, StdDuration),
}

/// WhatsApp's error for a customer who stopped marketing messages.
const MARKETING_STOPPED: i64 = 131050;

/// First retry delay; doubled per attempt up to `BACKOFF_CAP`.
const BACKOFF_BASE: Duration = Duration::seconds(2);
const BACKOFF_CAP: Duration = Duration::minutes(5);
/// Visibility of a job being worked on: longer than one API call can take.
pub const JOB_VISIBILITY: StdDuration = StdDuration::from_secs(60);

/// Exponential backoff with full jitter: a random delay in [base, base * 2^(attempt-1)], capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.num_milliseconds().saturating_mul(1i64 << attempt.saturating_sub(1).min(20));
    let ceiling = ceiling.min(BACKOFF_CAP.num_milliseconds());
    let floor = BACKOFF_BASE.num_milliseconds().min(ceiling);
    Duration::milliseconds(rand::thread_rng().gen_range(floor..=ceiling))
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> StdDuration {
    (at - now).to_std().unwrap_or(StdDuration::ZERO)
}

impl App {
    /// Runs one job and says what comes next.
    pub async fn run_outbound_job(&self, job: &OutboundJob) -> Result<Next, AppError> {
        match job {
            OutboundJob::Dispatch { tenant_id, message_id } => self.dispatch(tenant_id, *message_id).await,
            OutboundJob::Settle { tenant_id, message_id } => self.settle(tenant_id, *message_id).await,
            OutboundJob::FetchMedia { tenant_id, message_id, attempt } => {
                self.fetch_inbound_media(tenant_id, *message_id, *attempt).await
            }
        }
    }

    /// Handles one queue delivery: acknowledges it when done, schedules the
    /// follow-up job, and on an error leaves it to come back (and, after
    /// enough receives, to the dead-letter queue).
    pub async fn handle_outbound_delivery(&self, delivery: &Delivery) -> Result<Handled, AppError> {
        let queue = &self.outbound_queue;
        let Ok(job) = serde_json::from_str::<OutboundJob>(&delivery.body) else {
            tracing::error!(body = %delivery.body, "unreadable outbound job dropped");
            queue.ack(&delivery.receipt).await.map_err(AppError::internal)?;
            return Ok(Handled::Acked);
        };
        match self.run_outbound_job(&job).await {
            Ok(Next::Done) => {
                queue.ack(&delivery.receipt).await.map_err(AppError::internal)?;
                Ok(Handled::Acked)
            }
            Ok(Next::Again(next, delay)) => {
                queue.send(&next.to_body(), delay).await.map_err(AppError::internal)?;
                queue.ack(&delivery.receipt).await.map_err(AppError::internal)?;
                Ok(Handled::Acked)
            }
            Err(e) => {
                let delay = backoff(delivery.receive_count).to_std().unwrap_or(StdDuration::from_secs(2));
                tracing::warn!(error = %e, ?job, receive_count = delivery.receive_count, "outbound job failed; will retry");
                queue.retry_later(&delivery.receipt, delay).await.map_err(AppError::internal)?;
                Ok(Handled::RetryLater)
            }
        }
    }

    async fn dispatch(&self, tenant_id: &str, message_id: Uuid) -> Result<Next, AppError> {
        let stream_id = ids::message_stream(tenant_id, message_id);
        let target = Target { tenant_id, stream_id: stream_id.clone(), wa_id: None };
        let meta = Meta::new("sender");
        let again = |delay| Next::Again(OutboundJob::Dispatch { tenant_id: tenant_id.to_owned(), message_id }, delay);
        let settle_later =
            |delay| Next::Again(OutboundJob::Settle { tenant_id: tenant_id.to_owned(), message_id }, delay);
        let grace = self.settings.unconfirmed_grace.to_std().unwrap_or(StdDuration::from_secs(600));

        let Some(queued) = self.queued_message(&stream_id).await? else {
            return Ok(Next::Done);
        };
        // The number that sends this attempt: the message's own, or its
        // alternate while the own one is blocked.
        let refused = self.messages.load(&stream_id).await?.state.last_retry_kind.clone();
        let sender = self.sending_number(&queued.number_id, refused.as_deref()).await?;
        // Pace before claiming: a send held back is simply tried again later.
        if let Some(wait) = self.pace(tenant_id, &sender, &queued).await? {
            return Ok(again(wait));
        }
        // The contact may have opted out since the message was queued.
        let contact = self.contacts.load(&ids::contact_stream(tenant_id, &queued.wa_id)).await?.state;
        let now = self.clock.now();
        // An erased contact's key is gone: the content no longer opens, and
        // nothing may go out to them from before the erasure.
        let erased = queued.content.is_null();
        let claim = self.messages.execute(&target, &meta, |m| {
            let unsent = m.exists() && m.attempts() == 0 && m.wamid.is_none();
            let refusal = match (contact.is_opted_out(), erased) {
                _ if !unsent => None,
                (_, true) => Some(("contact_erased", "The contact was erased before the message went out")),
                (true, false) => Some(("opted_out", "The contact opted out before the message went out")),
                (false, false) => None,
            };
            if let Some((kind, title)) = refusal {
                return Ok(vec![Event::MessageFailed {
                    at: now,
                    failure: Failure { code: None, kind: kind.into(), title: Some(title.into()), detail: None },
                }]);
            }
            message::start_dispatch(m, now)
        });
        let claimed = match claim.await {
            Ok(done) => done,
            Err(ExecuteError::Rejected(DispatchSkip::NotSendable | DispatchSkip::Settled)) => return Ok(Next::Done),
            Err(ExecuteError::Rejected(DispatchSkip::NotDue { retry_at })) => return Ok(again(until(retry_at, now))),
            Err(ExecuteError::Rejected(DispatchSkip::OutcomeUnknown { attempt })) => {
                // Found in flight: the process that claimed it stopped before it
                // recorded the answer. Sending again could deliver it twice.
                self.messages
                    .execute(&target, &meta, |m| {
                        Ok::<_, AppError>(message::record_unconfirmed(m, attempt, "the attempt was interrupted", now))
                    })
                    .await?;
                return Ok(settle_later(grace));
            }
            Err(ExecuteError::Failed(e)) => return Err(e),
        };
        let Some(Event::MessageDispatchStarted { attempt, .. }) = claimed.events.first() else {
            return Ok(Next::Done);
        };
        let attempt = *attempt;

        let number = sender.registered.clone().ok_or(AppError::NotFound { what: "number" })?;
        let credentials =
            Credentials { phone_number_id: number.phone_number_id.clone(), access_token: number.access_token };
        // A file sent by Parley blob goes to WhatsApp's media store first.
        let result = match self.content_to_send(tenant_id, message_id, &credentials, &queued.content).await {
            Ok(content) => {
                let request = SendRequest {
                    to: queued.wa_id.clone(),
                    kind: queued.kind.clone(),
                    content,
                    context_message_id: queued.reply_to.clone(),
                    biz_opaque_callback_data: Some(message_id.to_string()),
                };
                self.whatsapp.send(&credentials, &request).await
            }
            Err(error) => Err(error),
        };
        let now = self.clock.now();
        match result {
            Ok(accepted) => {
                let from = number.phone_number_id.as_str();
                self.messages
                    .execute(&target, &meta, |m| {
                        Ok::<_, AppError>(message::record_accepted(m, &accepted.wamid, from, now))
                    })
                    .await?;
                self.link_wamid(tenant_id, message_id, &accepted.wamid, &meta).await?;
                if queued.kind == "reaction" {
                    self.apply_outbound_reaction(tenant_id, message_id, &queued, now, &meta).await?;
                }
                Ok(Next::Done)
            }
            Err(SendError::Ambiguous(detail)) => {
                self.messages
                    .execute(&target, &meta, |m| {
                        Ok::<_, AppError>(message::record_unconfirmed(m, attempt, &detail, now))
                    })
                    .await?;
                Ok(settle_later(grace))
            }
            Err(error) => {
                if let SendError::Api { code: MARKETING_STOPPED, .. } = error {
                    self.record_marketing_preference(tenant_id, &queued.wa_id, true, now).await?;
                }
                let (failure, mut retry_at) = self.failure_and_retry(&error, attempt, now);
                if let SendError::Api { code, kind, .. } = &error {
                    if kind.blocks_the_number() {
                        // The number itself may not send: record it, so that this
                        // and every other queued message goes out from the
                        // alternate number at once, where there is one.
                        let status = if *kind == ErrorKind::SpamRateLimit { "FLAGGED" } else { "RESTRICTED" };
                        let reason = format!("send_error:{code}");
                        self.record_number_status(&number.phone_number_id, status, &reason, None, now).await?;
                        if number.phone_number_id == queued.number_id
                            && self.usable_alternate(&queued.number_id).await?.is_some()
                        {
                            retry_at = Some(now);
                        }
                    }
                }
                let max = self.settings.send_max_attempts;
                let done = self
                    .messages
                    .execute(&target, &meta, |m| {
                        Ok::<_, AppError>(message::record_dispatch_failure(
                            m,
                            attempt,
                            failure.clone(),
                            retry_at,
                            max,
                            now,
                        ))
                    })
                    .await?;
                match done.events.first() {
                    Some(Event::MessageDispatchFailed { retry_at, .. }) => Ok(again(until(*retry_at, now))),
                    _ => Ok(Next::Done),
                }
            }
        }
    }

    /// The number that sends a message of `number_id` now: that number, or
    /// its alternate while it is blocked (flagged, restricted, disabled, or
    /// it refused the last attempt for a reason that blocks the number).
    async fn sending_number(&self, number_id: &str, last_refusal: Option<&str>) -> Result<Arc<Number>, AppError> {
        let primary = self.number_state(number_id).await?;
        let refused = last_refusal.and_then(|k| k.parse::<ErrorKind>().ok()).is_some_and(|k| k.blocks_the_number());
        if primary.is_blocked() || refused {
            if let Some(alternate) = self.usable_alternate(number_id).await? {
                return Ok(alternate);
            }
        }
        Ok(primary)
    }

    /// The alternate of `number_id`, when it has one of the same tenant
    /// that is not blocked itself.
    async fn usable_alternate(&self, number_id: &str) -> Result<Option<Arc<Number>>, AppError> {
        let primary = self.number_state(number_id).await?;
        let (Some(alternate_id), Some(tenant)) = (&primary.alternate_number_id, primary.tenant_id()) else {
            return Ok(None);
        };
        let alternate = self.number_state(alternate_id).await?;
        Ok((alternate.tenant_id() == Some(tenant) && !alternate.is_blocked()).then_some(alternate))
    }

    /// The business's reaction went out: it is set on the message it names.
    async fn apply_outbound_reaction(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        queued: &MessageQueued,
        now: DateTime<Utc>,
        meta: &Meta,
    ) -> Result<(), AppError> {
        let (Some(wamid), Some(emoji)) = (
            queued.content.get("message_id").and_then(serde_json::Value::as_str),
            queued.content.get("emoji").and_then(serde_json::Value::as_str),
        ) else {
            return Ok(());
        };
        let Some(target) = self.message_by_wamid(tenant_id, wamid).await? else { return Ok(()) };
        self.set_reaction(tenant_id, target, &queued.wa_id, Direction::Outbound, emoji, message_id, now, meta).await
    }

    /// Holds a send back when the sending number's throughput or the
    /// customer's pair limit is used up: answers how long to wait.
    async fn pace(
        &self,
        tenant_id: &str,
        sender: &Number,
        queued: &MessageQueued,
    ) -> Result<Option<StdDuration>, AppError> {
        let number = sender.registered.as_ref().ok_or(AppError::NotFound { what: "number" })?;
        let now_ms = self.clock.now().timestamp_millis();
        let number_limit = parley_domain::ratelimit::Limit::per_second(sender.throughput());
        let number_key = format!("number/{}", number.phone_number_id);
        if let Acquire::Wait(d) = self.rate_limiter.acquire(&number_key, number_limit, now_ms).await? {
            return Ok(Some(d));
        }
        let pair_key = format!("{tenant_id}/pair/{}/{}", number.phone_number_id, queued.wa_id);
        match self.rate_limiter.acquire(&pair_key, self.settings.pair_limit, now_ms).await? {
            Acquire::Wait(d) => Ok(Some(d)),
            Acquire::Granted => Ok(None),
        }
    }

    /// The failure to record and, for errors worth retrying, when to retry.
    fn failure_and_retry(
        &self,
        error: &SendError,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> (Failure, Option<DateTime<Utc>>) {
        let (code, kind, title) = match error {
            SendError::Api { code, kind, message, .. } => (Some(*code), *kind, Some(message.clone())),
            SendError::NotSent(detail) => (None, ErrorKind::Transient, Some(detail.clone())),
            SendError::Protocol { http_status, detail } => {
                (None, parley_whatsapp::classify(*http_status, None), Some(detail.clone()))
            }
            SendError::Ambiguous(detail) => (None, ErrorKind::Unknown, Some(detail.clone())),
        };
        let retry_at = match error.retry_policy() {
            RetryPolicy::Backoff => Some(now + backoff(attempt)),
            RetryPolicy::AfterSeconds(s) => {
                Some(now + Duration::seconds(s as i64) + Duration::milliseconds(rand::thread_rng().gen_range(0..1000)))
            }
            // The credentials may have been rotated since they were read: once more, then give up.
            RetryPolicy::RefreshCredentialsOnce if attempt == 1 => Some(now + Duration::seconds(1)),
            RetryPolicy::RefreshCredentialsOnce | RetryPolicy::Never => None,
        };
        (Failure { code, kind: kind.as_str().to_owned(), title, detail: None }, retry_at)
    }

    async fn settle(&self, tenant_id: &str, message_id: Uuid) -> Result<Next, AppError> {
        let target = Target { tenant_id, stream_id: ids::message_stream(tenant_id, message_id), wa_id: None };
        let grace = self.settings.unconfirmed_grace;
        let now = self.clock.now();
        let done = self
            .messages
            .execute(&target, &Meta::new("sender"), |m| Ok::<_, AppError>(message::settle_unconfirmed(m, grace, now)))
            .await?;
        match done.state.dispatch {
            message::Dispatch::Unconfirmed { since, .. } if done.events.is_empty() => Ok(Next::Again(
                OutboundJob::Settle { tenant_id: tenant_id.to_owned(), message_id },
                until(since + grace, now).max(StdDuration::from_secs(1)),
            )),
            _ => Ok(Next::Done),
        }
    }

    /// The queued message's content, from the first event of its stream.
    async fn queued_message(&self, stream_id: &str) -> Result<Option<MessageQueued>, AppError> {
        let first = self.store.read_stream(stream_id, 0).await?;
        let Some(first) = first.first() else { return Ok(None) };
        match self.sealer.decode(first).await? {
            Event::MessageQueued(q) => Ok(Some(q)),
            _ => Ok(None),
        }
    }
}

/// The worker loop: receives jobs in small batches and runs them
/// concurrently until `shutdown` resolves.
pub async fn run_sender(app: Arc<App>, shutdown: impl std::future::Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    loop {
        let receive = app.outbound_queue.receive(16, JOB_VISIBILITY, StdDuration::from_secs(1));
        let deliveries = tokio::select! {
            _ = &mut shutdown => return,
            got = receive => got,
        };
        match deliveries {
            Ok(deliveries) => {
                let jobs = deliveries.iter().map(|d| app.handle_outbound_delivery(d));
                for result in futures::future::join_all(jobs).await {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "outbound queue bookkeeping failed");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "outbound queue unavailable");
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
        }
    }
}
