//! The built-in WhatsApp simulator of the local runtime.
//!
//! It speaks the Graph API's wire format, so Parley's own [`GraphClient`]
//! sends through it unchanged: mounted under a prefix such as `/simulator`,
//! `POST {prefix}/{version}/{phone_number_id}/messages` accepts a send,
//! answers like the Cloud API, and shortly after posts `sent`, `delivered`
//! and `read` status webhooks to Parley, signed with the number's app secret,
//! as Meta would. `POST {prefix}/_inbound/{phone_number_id}` plays a customer
//! writing to a business number. Media uploads (`POST
//! {prefix}/{version}/{phone_number_id}/media`), look-ups and downloads work
//! as on the Graph API, from a bounded in-memory store; an inbound media
//! message naming an uploaded id gets that file's type and hash.
//!
//! [`GraphClient`]: crate::client::GraphClient

mod bodies;
mod delivery;
pub mod media;
mod routes;
pub(crate) mod validate;
mod wamid;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::send::SendRequest;
use crate::webhook::{StatusKind, WebhookPayload};

pub use bodies::{pricing_for, InboundSpec};
pub use delivery::RetrySchedule;
pub use routes::router;
pub use validate::SendBody;

use bodies::NumberInfo;
use delivery::WebhookSender;
use wamid::WamidGenerator;

/// How many accepted sends [`Simulator::sent`] remembers.
pub const SENT_LOG_CAPACITY: usize = 1000;

/// Where the simulator finds the numbers it acts for: what Meta would know
/// about each.
#[async_trait]
pub trait NumberDirectory: Send + Sync + 'static {
    /// The credentials Meta would know for a number: (access token, app
    /// secret). None: unknown number.
    async fn lookup(&self, phone_number_id: &str) -> Option<(String, String)>;

    /// How the number appears in webhook bodies. The default knows nothing,
    /// and the simulator then shows the phone_number_id in place of both the
    /// display number and the business account id.
    async fn profile(&self, phone_number_id: &str) -> NumberProfile {
        let _ = phone_number_id;
        NumberProfile::default()
    }
}

/// The public face of a number, as webhooks show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumberProfile {
    /// The number as people dial it (`metadata.display_phone_number`).
    pub display_phone_number: Option<String>,
    /// The WhatsApp Business Account id (`entry[].id`).
    pub waba_id: Option<String>,
}

/// A fixed set of numbers, for tests and for runs without a database.
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    numbers: HashMap<String, StaticNumber>,
}

#[derive(Debug, Clone)]
struct StaticNumber {
    access_token: String,
    app_secret: String,
    profile: NumberProfile,
}

impl StaticDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a number.
    pub fn with_number(
        mut self,
        phone_number_id: impl Into<String>,
        access_token: impl Into<String>,
        app_secret: impl Into<String>,
        profile: NumberProfile,
    ) -> Self {
        self.numbers.insert(
            phone_number_id.into(),
            StaticNumber { access_token: access_token.into(), app_secret: app_secret.into(), profile },
        );
        self
    }
}

#[async_trait]
impl NumberDirectory for StaticDirectory {
    async fn lookup(&self, phone_number_id: &str) -> Option<(String, String)> {
        let number = self.numbers.get(phone_number_id)?;
        Some((number.access_token.clone(), number.app_secret.clone()))
    }

    async fn profile(&self, phone_number_id: &str) -> NumberProfile {
        self.numbers.get(phone_number_id).map(|number| number.profile.clone()).unwrap_or_default()
    }
}

/// How the simulator behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// Where Parley receives WhatsApp webhooks, such as
    /// `http://127.0.0.1:3000/webhooks/whatsapp`.
    pub webhook_url: String,
    /// The wait before `sent`, and between `sent`, `delivered` and `read`.
    pub status_delay: Duration,
    /// Whether customers "read" what they receive.
    pub read_receipts: bool,
}

/// A send the simulator accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRecord {
    /// The sending number.
    pub phone_number_id: String,
    /// The id the simulator gave the message.
    pub wamid: String,
    /// The send as received.
    pub request: SendRequest,
    /// When it was accepted.
    pub accepted_at: DateTime<Utc>,
}

/// Why an inbound message could not be injected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InboundError {
    /// The directory does not know the number.
    #[error("unknown phone_number_id {0:?}")]
    UnknownNumber(String),
    /// The message is not well formed.
    #[error("invalid inbound message: {0}")]
    Invalid(String),
}

/// The simulator's state: the numbers it acts for, the sends it accepted and
/// the webhook sender.
pub struct Simulator {
    config: SimulatorConfig,
    directory: Arc<dyn NumberDirectory>,
    sender: WebhookSender,
    ids: WamidGenerator,
    sent: Mutex<VecDeque<SentRecord>>,
    /// Templates submitted, per business account.
    templates: Mutex<std::collections::HashMap<String, Vec<crate::templates::RemoteTemplate>>>,
    /// Media uploaded by numbers.
    media: Mutex<media::MediaStore>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("config", &self.config).field("sender", &self.sender).finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator posting webhooks to `config.webhook_url`, retrying each
    /// on the default [`RetrySchedule`].
    pub fn new(config: SimulatorConfig, directory: Arc<dyn NumberDirectory>) -> Arc<Self> {
        Self::with_retry_schedule(config, directory, RetrySchedule::default())
    }

    /// Like [`Simulator::new`], with its own webhook retry schedule.
    pub fn with_retry_schedule(
        config: SimulatorConfig,
        directory: Arc<dyn NumberDirectory>,
        schedule: RetrySchedule,
    ) -> Arc<Self> {
        let sender = WebhookSender::new(config.webhook_url.clone(), schedule);
        Arc::new(Simulator {
            config,
            directory,
            sender,
            ids: WamidGenerator::default(),
            sent: Mutex::new(VecDeque::with_capacity(SENT_LOG_CAPACITY)),
            templates: Mutex::default(),
            media: Mutex::default(),
        })
    }

    /// Stores a submitted template; the simulator approves every template
    /// at once (Meta reviews for real). A second submission of the same name
    /// and language is refused, as Meta does.
    pub(crate) fn submit_template(
        &self,
        waba_id: &str,
        t: crate::templates::TemplateSubmission,
    ) -> Option<crate::templates::CreatedTemplate> {
        let mut all = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        let list = all.entry(waba_id.to_owned()).or_default();
        if list.iter().any(|r| r.name == t.name && r.language == t.language) {
            return None;
        }
        let id = format!("{}", 1_000_000_000_000_000u64 + rand::random::<u32>() as u64);
        list.push(crate::templates::RemoteTemplate {
            id: id.clone(),
            name: t.name,
            language: t.language,
            status: "APPROVED".into(),
            category: t.category.clone(),
            components: t.components,
            rejected_reason: Some("NONE".into()),
        });
        Some(crate::templates::CreatedTemplate { id, status: "APPROVED".into(), category: Some(t.category) })
    }

    pub(crate) fn templates_of(&self, waba_id: &str) -> Vec<crate::templates::RemoteTemplate> {
        self.templates.lock().unwrap_or_else(|e| e.into_inner()).get(waba_id).cloned().unwrap_or_default()
    }

    pub(crate) fn delete_templates(&self, waba_id: &str, name: &str) -> bool {
        let mut all = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        let list = all.entry(waba_id.to_owned()).or_default();
        let before = list.len();
        list.retain(|t| t.name != name);
        list.len() != before
    }

    /// Stores an uploaded file; answers its media id.
    pub fn store_media(&self, media: media::StoredMedia) -> String {
        self.media.lock().unwrap_or_else(PoisonError::into_inner).insert(media)
    }

    /// A stored file.
    pub fn media(&self, media_id: &str) -> Option<media::StoredMedia> {
        self.media.lock().unwrap_or_else(PoisonError::into_inner).get(media_id).cloned()
    }

    /// The configuration.
    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// The most recent accepted sends (at most [`SENT_LOG_CAPACITY`]),
    /// oldest first.
    pub fn sent(&self) -> Vec<SentRecord> {
        self.sent_log().iter().cloned().collect()
    }

    /// Plays a customer writing to `phone_number_id`: posts a signed inbound
    /// webhook in the background and returns the new message's `wamid`.
    pub async fn inject_inbound(
        self: &Arc<Self>,
        phone_number_id: &str,
        inbound: InboundSpec,
    ) -> Result<String, InboundError> {
        validate::check_phone(&inbound.from, "from").map_err(InboundError::Invalid)?;
        if inbound.kind.is_empty() {
            return Err(InboundError::Invalid("type must not be empty".to_owned()));
        }
        let Some((_, app_secret)) = self.directory.lookup(phone_number_id).await else {
            return Err(InboundError::UnknownNumber(phone_number_id.to_owned()));
        };
        let number = self.number_info(phone_number_id).await;
        let wamid = self.ids.next_wamid();
        let mut inbound = inbound;
        media::complete_inbound(&self.media.lock().unwrap_or_else(PoisonError::into_inner), &mut inbound.content);
        let payload = bodies::inbound_payload(&number, &wamid, &inbound, Utc::now());
        let simulator = Arc::clone(self);
        tokio::spawn(async move {
            simulator.post(&app_secret, &payload).await;
        });
        Ok(wamid)
    }

    /// Records an accepted send and starts its status lifecycle; returns the
    /// new `wamid`.
    async fn accept(self: &Arc<Self>, phone_number_id: &str, app_secret: String, request: SendRequest) -> String {
        let wamid = self.ids.next_wamid();
        self.record(SentRecord {
            phone_number_id: phone_number_id.to_owned(),
            wamid: wamid.clone(),
            request: request.clone(),
            accepted_at: Utc::now(),
        });
        let number = self.number_info(phone_number_id).await;
        let simulator = Arc::clone(self);
        let message_id = wamid.clone();
        tokio::spawn(async move {
            simulator.run_status_lifecycle(number, app_secret, message_id, request).await;
        });
        wamid
    }

    /// Posts `sent`, `delivered` and (with read receipts) `read`, one after
    /// the other, `status_delay` apart.
    async fn run_status_lifecycle(&self, number: NumberInfo, app_secret: String, wamid: String, request: SendRequest) {
        let mut statuses = vec![StatusKind::Sent, StatusKind::Delivered];
        if self.config.read_receipts {
            statuses.push(StatusKind::Read);
        }
        for status in statuses {
            // The first wait also gives the sender time to store the wamid
            // from the send answer before the first status about it arrives.
            tokio::time::sleep(self.config.status_delay).await;
            let payload = bodies::status_payload(&number, &wamid, &request, status, Utc::now());
            // Each status is awaited before the next so they arrive in order;
            // one that cannot be delivered does not stop the later ones,
            // as with Meta.
            self.post(&app_secret, &payload).await;
        }
    }

    /// Serialises, signs and delivers one webhook body.
    async fn post(&self, app_secret: &str, payload: &WebhookPayload) -> bool {
        match serde_json::to_vec(payload) {
            Ok(body) => self.sender.deliver(app_secret, Bytes::from(body)).await,
            Err(error) => {
                tracing::warn!(%error, "webhook body could not be serialised");
                false
            }
        }
    }

    /// How a number appears in webhooks, falling back to its id.
    async fn number_info(&self, phone_number_id: &str) -> NumberInfo {
        let profile = self.directory.profile(phone_number_id).await;
        NumberInfo {
            phone_number_id: phone_number_id.to_owned(),
            display_phone_number: profile.display_phone_number.unwrap_or_else(|| phone_number_id.to_owned()),
            waba_id: profile.waba_id.unwrap_or_else(|| phone_number_id.to_owned()),
        }
    }

    fn record(&self, record: SentRecord) {
        let mut log = self.sent_log();
        if log.len() == SENT_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(record);
    }

    fn sent_log(&self) -> std::sync::MutexGuard<'_, VecDeque<SentRecord>> {
        // The log is append-only data; a panic elsewhere while it was held
        // cannot leave it inconsistent, so a poisoned lock is still usable.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
