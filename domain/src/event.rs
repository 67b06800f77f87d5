//! Every domain event, named in the past tense (SPEC 3.8).
//!
//! One enum for all aggregates keeps the codec and the projections simple:
//! each aggregate's `evolve` reads the variants that concern it. Fields that
//! hold personal data (message content, previews, contact names) and secrets
//! are plain values here; the application seals them with the vault before
//! they are stored, so the stored schema never changes when a key is destroyed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::DeliveryStatus;
use crate::tenant::Role;
use crate::user::{PasswordChange, RevokeReason};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    // ---- business numbers ----
    NumberRegistered(NumberRegistered),
    /// WhatsApp's `phone_number_quality_update`: the number's quality or
    /// messaging limit changed.
    NumberQualityUpdated {
        /// WhatsApp's event: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ...
        event: String,
        /// GREEN, YELLOW, RED or UNKNOWN after the update.
        quality_rating: String,
        /// The messaging limit (tier), e.g. `TIER_1K`, when WhatsApp names it.
        messaging_limit: Option<String>,
        at: DateTime<Utc>,
    },
    /// WhatsApp's `account_update` (or a send refused because the number is
    /// blocked): the number's standing changed.
    NumberAccountStatusChanged {
        /// CONNECTED, FLAGGED, RESTRICTED or DISABLED.
        status: String,
        /// What reported it: the webhook's event (ACCOUNT_RESTRICTION, ...)
        /// or `send_error:<code>`.
        reason: String,
        /// Details WhatsApp gave (restriction types, ban state, violation).
        detail: Option<String>,
        at: DateTime<Utc>,
    },
    /// The tenant changed how the number sends.
    NumberSettingsChanged {
        throughput_per_second: u32,
        /// Another number of the tenant that sends in this one's place while
        /// it is blocked.
        alternate_number_id: Option<String>,
        at: DateTime<Utc>,
        by: String,
    },

    // ---- contacts ----
    ContactCreated {
        wa_id: String,
        name: Option<String>,
        at: DateTime<Utc>,
    },
    ContactRenamed {
        name: Option<String>,
        at: DateTime<Utc>,
    },
    ContactOptedOut {
        at: DateTime<Utc>,
        source: OptSource,
        keyword: Option<String>,
        message_id: Option<Uuid>,
    },
    ContactOptedIn {
        at: DateTime<Utc>,
        source: OptSource,
        keyword: Option<String>,
        message_id: Option<Uuid>,
    },
    /// The contact stopped (or resumed) marketing messages: WhatsApp's
    /// `user_preferences` webhook, or error 131050 on a send.
    ContactMarketingPreferenceChanged {
        stopped: bool,
        at: DateTime<Utc>,
        source: OptSource,
    },
    /// Tags and custom attributes set through the API; a `None` field is unchanged.
    ContactUpdated {
        tags: Option<Vec<String>>,
        attributes: Option<serde_json::Map<String, serde_json::Value>>,
        at: DateTime<Utc>,
    },
    /// GDPR erasure (SPEC 6.4): the contact's data key is destroyed, so every
    /// personal field sealed with it, in every event, reads as null. This
    /// event is the record that it happened (and who asked for it).
    ContactErased {
        at: DateTime<Utc>,
        by: String,
    },

    // ---- templates ----
    TemplateSubmitted {
        name: String,
        language: String,
        category: String,
        components: Vec<serde_json::Value>,
        /// WhatsApp's id of the template, once it has one.
        whatsapp_id: Option<String>,
        status: String,
        waba_id: String,
        at: DateTime<Utc>,
    },
    TemplateStatusChanged {
        status: String,
        reason: Option<String>,
        /// WhatsApp may move a template to another category on review.
        category: Option<String>,
        at: DateTime<Utc>,
    },
    TemplateDeleted {
        at: DateTime<Utc>,
    },
    /// The text a template message renders to, recorded when it is queued.
    MessageRendered {
        text: String,
    },

    // ---- tenant settings ----
    /// The tenant's own opt-out and opt-in keywords, used on top of the defaults.
    OptKeywordsConfigured {
        opt_out: Vec<String>,
        opt_in: Vec<String>,
        at: DateTime<Utc>,
    },

    // ---- conversations ----
    ConversationOpened {
        conversation_id: Uuid,
        number_id: String,
        wa_id: String,
        origin: Direction,
        at: DateTime<Utc>,
    },
    InboundMessageRecorded {
        message_id: Uuid,
        at: DateTime<Utc>,
        window_closes_at: DateTime<Utc>,
        preview: Preview,
        contact_name: Option<String>,
    },
    /// The customer came from a click-to-WhatsApp ad: a 72h free entry
    /// point window opens (pricing; free-form sends still follow the 24h
    /// customer-service window).
    EntryPointWindowOpened {
        message_id: Uuid,
        at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
        referral: Referral,
    },
    OutboundMessageRecorded {
        message_id: Uuid,
        at: DateTime<Utc>,
        preview: Preview,
    },
    ConversationWindowExpired {
        closed_at: DateTime<Utc>,
    },
    ConversationResolved {
        at: DateTime<Utc>,
        by: String,
    },
    ConversationReopened {
        at: DateTime<Utc>,
    },
    ConversationAssigned {
        /// The user id now handling the conversation; `None` unassigns it.
        assignee: Option<String>,
        at: DateTime<Utc>,
        by: String,
    },
    ConversationMarkedRead {
        at: DateTime<Utc>,
        by: String,
        /// The newest inbound wamid reported read to WhatsApp, if any.
        wamid: Option<String>,
    },
    /// A message of this conversation was deleted: its preview is redacted.
    ConversationMessageDeleted {
        message_id: Uuid,
        at: DateTime<Utc>,
    },

    // ---- messages ----
    MessageReceived(MessageReceived),
    MessageQueued(MessageQueued),
    MessageDispatchStarted {
        attempt: u32,
        at: DateTime<Utc>,
    },
    MessageAccepted {
        wamid: String,
        at: DateTime<Utc>,
        /// The business number that actually sent it, when the sender
        /// recorded it (an alternate number may stand in for a blocked one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_number_id: Option<String>,
    },
    MessageDispatchFailed {
        attempt: u32,
        at: DateTime<Utc>,
        failure: Failure,
        retry_at: DateTime<Utc>,
    },
    MessageDispatchUnconfirmed {
        attempt: u32,
        at: DateTime<Utc>,
        detail: String,
    },
    MessageSent {
        at: DateTime<Utc>,
        pricing: Option<Pricing>,
    },
    MessageDelivered {
        at: DateTime<Utc>,
        pricing: Option<Pricing>,
    },
    MessageRead {
        at: DateTime<Utc>,
    },
    MessagePlayed {
        at: DateTime<Utc>,
    },
    MessageFailed {
        at: DateTime<Utc>,
        failure: Failure,
    },
    /// The message's content is redacted from every read model; its events stay.
    MessageDeleted {
        at: DateTime<Utc>,
        by: String,
    },
    /// A reaction on this message was set, changed or (empty emoji) removed.
    MessageReactionSet {
        /// Who reacted: the customer (inbound) or the business (outbound).
        direction: Direction,
        /// The emoji; empty when the reaction was removed.
        emoji: String,
        /// The reaction message itself.
        reaction_message_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The message's tags are now exactly these.
    MessageTagged {
        tags: Vec<String>,
        at: DateTime<Utc>,
        by: String,
    },
    /// An inbound message's file was fetched from WhatsApp, matched the hash
    /// WhatsApp gave, and is kept in the blob store under `blob_key`.
    MessageMediaStored {
        blob_key: String,
        mime_type: String,
        /// Hex SHA-256 of the stored bytes.
        sha256: String,
        size: u64,
        at: DateTime<Utc>,
    },
    /// An inbound message's file could not be fetched, for good.
    MessageMediaFetchFailed {
        reason: String,
        at: DateTime<Utc>,
    },
    /// An outbound message's file was uploaded to WhatsApp, which gave it this id.
    MessageMediaUploaded {
        media_id: String,
        at: DateTime<Utc>,
    },

    // ---- media uploaded for sending ----
    MediaUploaded(crate::media::MediaUploaded),

    // ---- wamid links ----
    WamidAssigned {
        message_id: Uuid,
    },
    StatusParked {
        report: ParkedStatus,
    },

    // ---- tenants and members ----
    TenantCreated {
        tenant_id: String,
        name: String,
        at: DateTime<Utc>,
    },
    MemberInvited {
        email: String,
        role: Role,
        invited_by: String,
        at: DateTime<Utc>,
    },
    InvitationRevoked {
        email: String,
        by: String,
        at: DateTime<Utc>,
    },
    MemberJoined {
        user_id: String,
        email: String,
        role: Role,
        at: DateTime<Utc>,
    },
    RoleChanged {
        user_id: String,
        from: Role,
        to: Role,
        by: String,
        at: DateTime<Utc>,
    },
    MemberRemoved {
        user_id: String,
        by: String,
        at: DateTime<Utc>,
    },
    /// How long the tenant's records stay in the hot store before the
    /// archiver moves them to blob storage.
    RetentionChanged {
        days: u32,
        by: String,
        at: DateTime<Utc>,
    },

    // ---- users (credentials never appear in events) ----
    UserSignedUp {
        user_id: String,
        tenant_id: String,
        email: String,
        at: DateTime<Utc>,
    },
    EmailVerified {
        email: String,
        at: DateTime<Utc>,
    },
    PasswordChanged {
        reason: PasswordChange,
        at: DateTime<Utc>,
    },
    SessionRevoked {
        reason: RevokeReason,
        at: DateTime<Utc>,
    },

    // ---- jobs ----
    JobQueued(crate::job::JobQueued),
    JobStarted {
        attempt: u32,
        at: DateTime<Utc>,
    },
    JobProgressed {
        progress: u8,
        at: DateTime<Utc>,
    },
    JobSucceeded {
        artifact: Option<String>,
        at: DateTime<Utc>,
    },
    JobFailed {
        attempt: u32,
        error: String,
        /// Whether the job goes back to the queue for another attempt.
        retrying: bool,
        at: DateTime<Utc>,
    },

    // ---- billing ----
    PlanChanged(crate::billing::PlanChanged),
    BillingProfileSet(crate::billing::BillingProfile),
    /// The tenant was told its usage reached a level of the plan's limit.
    UsageLimitNotified {
        month: String,
        level: crate::billing::LimitState,
        at: DateTime<Utc>,
    },
    /// The tenant's customer record at the payment provider.
    PaymentCustomerLinked {
        customer_id: String,
        at: DateTime<Utc>,
    },
    InvoiceIssued(crate::billing::InvoiceIssued),
    InvoiceLinked {
        external_id: String,
        at: DateTime<Utc>,
    },
    InvoicePaid {
        at: DateTime<Utc>,
        reference: Option<String>,
    },
    InvoicePaymentFailed {
        at: DateTime<Utc>,
        reason: String,
    },
    DunningMailSent {
        step: u32,
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The event's type name as stored in the envelope.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::NumberRegistered(_) => "NumberRegistered",
            Event::NumberQualityUpdated { .. } => "NumberQualityUpdated",
            Event::NumberAccountStatusChanged { .. } => "NumberAccountStatusChanged",
            Event::NumberSettingsChanged { .. } => "NumberSettingsChanged",
            Event::ContactCreated { .. } => "ContactCreated",
            Event::ContactRenamed { .. } => "ContactRenamed",
            Event::ContactOptedOut { .. } => "ContactOptedOut",
            Event::ContactOptedIn { .. } => "ContactOptedIn",
            Event::ContactUpdated { .. } => "ContactUpdated",
            Event::ContactErased { .. } => "ContactErased",
            Event::ContactMarketingPreferenceChanged { .. } => "ContactMarketingPreferenceChanged",
            Event::OptKeywordsConfigured { .. } => "OptKeywordsConfigured",
            Event::TemplateSubmitted { .. } => "TemplateSubmitted",
            Event::TemplateStatusChanged { .. } => "TemplateStatusChanged",
            Event::TemplateDeleted { .. } => "TemplateDeleted",
            Event::MessageRendered { .. } => "MessageRendered",
            Event::ConversationOpened { .. } => "ConversationOpened",
            Event::InboundMessageRecorded { .. } => "InboundMessageRecorded",
            Event::EntryPointWindowOpened { .. } => "EntryPointWindowOpened",
            Event::OutboundMessageRecorded { .. } => "OutboundMessageRecorded",
            Event::ConversationWindowExpired { .. } => "ConversationWindowExpired",
            Event::ConversationResolved { .. } => "ConversationResolved",
            Event::ConversationReopened { .. } => "ConversationReopened",
            Event::ConversationAssigned { .. } => "ConversationAssigned",
            Event::ConversationMarkedRead { .. } => "ConversationMarkedRead",
            Event::ConversationMessageDeleted { .. } => "ConversationMessageDeleted",
            Event::MessageReceived(_) => "MessageReceived",
            Event::MessageQueued(_) => "MessageQueued",
            Event::MessageDispatchStarted { .. } => "MessageDispatchStarted",
            Event::MessageAccepted { .. } => "MessageAccepted",
            Event::MessageDispatchFailed { .. } => "MessageDispatchFailed",
            Event::MessageDispatchUnconfirmed { .. } => "MessageDispatchUnconfirmed",
            Event::MessageSent { .. } => "MessageSent",
            Event::MessageDelivered { .. } => "MessageDelivered",
            Event::MessageRead { .. } => "MessageRead",
            Event::MessagePlayed { .. } => "MessagePlayed",
            Event::MessageFailed { .. } => "MessageFailed",
            Event::MessageDeleted { .. } => "MessageDeleted",
            Event::MessageTagged { .. } => "MessageTagged",
            Event::MessageReactionSet { .. } => "MessageReactionSet",
            Event::MessageMediaStored { .. } => "MessageMediaStored",
            Event::MessageMediaFetchFailed { .. } => "MessageMediaFetchFailed",
            Event::MessageMediaUploaded { .. } => "MessageMediaUploaded",
            Event::MediaUploaded(_) => "MediaUploaded",
            Event::WamidAssigned { .. } => "WamidAssigned",
            Event::StatusParked { .. } => "StatusParked",
            Event::TenantCreated { .. } => "TenantCreated",
            Event::MemberInvited { .. } => "MemberInvited",
            Event::InvitationRevoked { .. } => "InvitationRevoked",
            Event::MemberJoined { .. } => "MemberJoined",
            Event::RoleChanged { .. } => "RoleChanged",
            Event::MemberRemoved { .. } => "MemberRemoved",
            Event::RetentionChanged { .. } => "RetentionChanged",
            Event::UserSignedUp { .. } => "UserSignedUp",
            Event::EmailVerified { .. } => "EmailVerified",
            Event::PasswordChanged { .. } => "PasswordChanged",
            Event::SessionRevoked { .. } => "SessionRevoked",
            Event::JobQueued(_) => "JobQueued",
            Event::JobStarted { .. } => "JobStarted",
            Event::JobProgressed { .. } => "JobProgressed",
            Event::JobSucceeded { .. } => "JobSucceeded",
            Event::JobFailed { .. } => "JobFailed",
            Event::PlanChanged(_) => "PlanChanged",
            Event::BillingProfileSet(_) => "BillingProfileSet",
            Event::PaymentCustomerLinked { .. } => "PaymentCustomerLinked",
            Event::UsageLimitNotified { .. } => "UsageLimitNotified",
            Event::InvoiceIssued(_) => "InvoiceIssued",
            Event::InvoiceLinked { .. } => "InvoiceLinked",
            Event::InvoicePaid { .. } => "InvoicePaid",
            Event::InvoicePaymentFailed { .. } => "InvoicePaymentFailed",
            Event::DunningMailSent { .. } => "DunningMailSent",
        }
    }

    /// For a status event, the status it reports and when.
    pub fn reported_status(&self) -> Option<(DeliveryStatus, DateTime<Utc>)> {
        match self {
            Event::MessageSent { at, .. } => Some((DeliveryStatus::Sent, *at)),
            Event::MessageDelivered { at, .. } => Some((DeliveryStatus::Delivered, *at)),
            Event::MessageRead { at } => Some((DeliveryStatus::Read, *at)),
            Event::MessagePlayed { at } => Some((DeliveryStatus::Played, *at)),
            Event::MessageFailed { at, .. } => Some((DeliveryStatus::Failed, *at)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Who or what changed a contact's opt-in state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptSource {
    /// The contact sent a keyword.
    Keyword,
    /// An agent or system changed it through the API.
    Api,
    /// WhatsApp reported it (error 131050, user_preferences).
    WhatsApp,
}

/// What a conversation list shows of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub message_id: Uuid,
    pub direction: Direction,
    pub kind: String,
    /// The first characters of the text, when the message has text.
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

/// The ad a click-to-WhatsApp customer came from (the message's `referral`).
/// `headline`, `body` and `ctwa_clid` are sealed with the contact's key: the
/// click id ties the person to the ad click.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Referral {
    pub source_url: Option<String>,
    pub source_id: Option<String>,
    /// `ad` or `post`.
    pub source_type: Option<String>,
    pub headline: Option<String>,
    pub body: Option<String>,
    pub media_type: Option<String>,
    pub ctwa_clid: Option<String>,
}

impl Referral {
    /// Reads WhatsApp's `referral` object; unknown fields are left out.
    pub fn from_webhook(value: &serde_json::Value) -> Referral {
        let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
        Referral {
            source_url: text("source_url"),
            source_id: text("source_id"),
            source_type: text("source_type"),
            headline: text("headline"),
            body: text("body"),
            media_type: text("media_type"),
            ctwa_clid: text("ctwa_clid"),
        }
    }
}

/// The `pricing` object of WhatsApp's status webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub billable: Option<bool>,
    pub pricing_model: Option<String>,
    pub category: Option<String>,
    pub pricing_type: Option<String>,
}

/// Why a send failed: WhatsApp's code where there is one, and Parley's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: Option<i64>,
    /// Stable internal kind, e.g. `throughput_limit`, `window_closed`.
    pub kind: String,
    pub title: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberRegistered {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token_sha256: String,
    pub throughput_per_second: u32,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReceived {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub wamid: String,
    pub kind: String,
    /// The type-specific object of the webhook message, e.g. `{"body": "..."}`.
    pub content: serde_json::Value,
    pub context: Option<serde_json::Value>,
    /// The click-to-WhatsApp ad that brought the contact, as WhatsApp sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<serde_json::Value>,
    /// WhatsApp's timestamp: when the contact sent it.
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageQueued {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub number_id: String,
    pub wa_id: String,
    pub kind: String,
    /// The type-specific object of the Cloud API send body.
    pub content: serde_json::Value,
    pub reply_to: Option<String>,
    pub queued_at: DateTime<Utc>,
}

/// A status that arrived before Parley could match its wamid to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkedStatus {
    pub wamid: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub pricing: Option<Pricing>,
    pub failure: Option<Failure>,
}

impl From<crate::message::StatusReport> for ParkedStatus {
    fn from(r: crate::message::StatusReport) -> Self {
        ParkedStatus { wamid: r.wamid, status: r.status, at: r.at, pricing: r.pricing, failure: r.failure }
    }
}

impl From<ParkedStatus> for crate::message::StatusReport {
    fn from(p: ParkedStatus) -> Self {
        crate::message::StatusReport {
            wamid: p.wamid,
            status: p.status,
            at: p.at,
            pricing: p.pricing,
            failure: p.failure,
        }
    }
}
