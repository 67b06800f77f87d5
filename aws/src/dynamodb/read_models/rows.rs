//! The rows of the read models and how each event changes them: the same
//! rules as the SQLite projections (`parley_app::readmodel::sqlite`), as pure
//! functions from a row and an event to the new row.

use chrono::{DateTime, TimeZone, Utc};
use parley_app::error::AppError;
use parley_app::readmodel::{ContactView, ConversationView, MediaView, MessageView, NumberView, TemplateView};
use parley_domain::status::{DeliveryStatus, ReportedStatuses};
use parley_events::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Which row an event changes, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKey {
    Message { tenant_id: String, id: Uuid },
    Conversation { tenant_id: String, id: Uuid },
    Number { phone_number_id: String },
    Contact { tenant_id: String, wa_id: String },
    Template { tenant_id: String, name: String, language: String },
}

impl RowKey {
    /// The row `event` concerns: messages, conversations and contacts by
    /// their stream, numbers by their registration.
    pub fn of(event: &RecordedEvent) -> Option<RowKey> {
        let entity = || event.stream_id.rsplit('/').next().and_then(|s| s.parse().ok());
        if event.stream_id.contains("/message/") {
            Some(RowKey::Message { tenant_id: event.tenant_id.clone(), id: entity()? })
        } else if event.stream_id.contains("/conversation/") {
            Some(RowKey::Conversation { tenant_id: event.tenant_id.clone(), id: entity()? })
        } else if event.stream_id.contains("/contact/") {
            let wa_id = event.stream_id.rsplit('/').next()?.to_owned();
            Some(RowKey::Contact { tenant_id: event.tenant_id.clone(), wa_id })
        } else if event.stream_id.contains("/template/") {
            // `{tenant}/template/{name}/{language}`
            let mut parts = event.stream_id.rsplitn(3, '/');
            let language = parts.next()?.to_owned();
            let name = parts.next()?.to_owned();
            Some(RowKey::Template { tenant_id: event.tenant_id.clone(), name, language })
        } else {
            let phone_number_id = event.stream_id.strip_prefix("number/")?;
            Some(RowKey::Number { phone_number_id: phone_number_id.to_owned() })
        }
    }
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(m: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(m).single().unwrap_or_default()
}

fn parse_time(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| micros(t.with_timezone(&Utc)))
}

fn text(data: &Value, key: &str) -> String {
    data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn json_text(data: &Value, key: &str) -> String {
    data.get(key).cloned().unwrap_or(Value::Null).to_string()
}

fn parse_json(text: Option<&str>) -> Value {
    text.and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null)
}

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, AppError> {
    text.parse().map_err(|_| AppError::internal(format!("read model {what} {text:?} is not a uuid")))
}

/// A message row. JSON values (possibly sealed) are kept as their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    pub tenant_id: String,
    pub id: String,
    pub conversation_id: String,
    pub number_id: String,
    pub wa_id: String,
    pub direction: String,
    pub kind: String,
    pub status: String,
    pub wamid: Option<String>,
    pub created_at: i64,
    pub content: String,
    pub error: Option<String>,
    pub tags: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub played_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// Deleted by an agent: `content` is `null`.
    #[serde(default)]
    pub deleted: bool,
    /// A template message's rendered text (possibly sealed), as JSON text.
    #[serde(default)]
    pub rendered: Option<String>,
    /// The current reactions by side (emoji possibly sealed), as JSON text.
    #[serde(default)]
    pub reactions: Option<String>,
    #[serde(default)]
    pub accepted_at: Option<i64>,
    /// The number that actually sent it.
    #[serde(default)]
    pub sent_from: Option<String>,
    /// An inbound media message's file state, as JSON text.
    #[serde(default)]
    pub media: Option<String>,
}

impl MessageRow {
    /// The row after `event`; `None` when there is (still) no row.
    pub fn apply(row: Option<Self>, tenant_id: &str, id: Uuid, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        let at_or_recorded = |v: &Value| parse_time(v).unwrap_or_else(|| micros(event.recorded_at));
        match (event.event_type.as_str(), row) {
            (t @ ("MessageReceived" | "MessageQueued"), None) => {
                let (direction, status, at) = if t == "MessageReceived" {
                    ("inbound", "delivered", &d["sent_at"])
                } else {
                    ("outbound", "queued", &d["queued_at"])
                };
                Some(MessageRow {
                    tenant_id: tenant_id.to_owned(),
                    id: id.to_string(),
                    conversation_id: text(d, "conversation_id"),
                    number_id: text(d, "number_id"),
                    wa_id: text(d, "wa_id"),
                    direction: direction.into(),
                    kind: text(d, "kind"),
                    status: status.into(),
                    wamid: d.get("wamid").and_then(Value::as_str).map(str::to_owned),
                    created_at: at_or_recorded(at),
                    content: json_text(d, "content"),
                    error: None,
                    tags: "[]".into(),
                    attempts: 0,
                    sent_at: None,
                    delivered_at: None,
                    read_at: None,
                    played_at: None,
                    failed_at: None,
                    deleted: false,
                    rendered: None,
                    reactions: None,
                    accepted_at: None,
                    sent_from: None,
                    media: MediaView::after(t, d).and_then(|m| serde_json::to_string(&m).ok()),
                })
            }
            (_, None) => None,
            ("MessageAccepted", Some(mut row)) => {
                row.wamid = Some(text(d, "wamid"));
                row.accepted_at.get_or_insert(at_or_recorded(&d["at"]));
                if let Some(from) = d.get("from_number_id").and_then(Value::as_str) {
                    row.sent_from = Some(from.to_owned());
                }
                Some(row)
            }
            ("MessageReactionSet", Some(mut row)) => {
                let mut reactions = parse_json(row.reactions.as_deref());
                if !reactions.is_object() {
                    reactions = Value::Object(Default::default());
                }
                let side = if text(d, "direction") == "outbound" { "outbound" } else { "inbound" };
                reactions[side] = serde_json::json!({
                    "emoji": d.get("emoji").cloned().unwrap_or(Value::Null),
                    "at": d.get("at").cloned().unwrap_or(Value::Null),
                    "message_id": d.get("reaction_message_id").cloned().unwrap_or(Value::Null),
                });
                row.reactions = Some(reactions.to_string());
                Some(row)
            }
            ("MessageDispatchStarted", Some(mut row)) => {
                row.attempts = d["attempt"].as_i64().unwrap_or(0);
                Some(row)
            }
            (
                t @ ("MessageSent" | "MessageDelivered" | "MessageRead" | "MessagePlayed" | "MessageFailed"),
                Some(mut row),
            ) => {
                let at = at_or_recorded(&d["at"]);
                let column = match t {
                    "MessageSent" => &mut row.sent_at,
                    "MessageDelivered" => &mut row.delivered_at,
                    "MessageRead" => &mut row.read_at,
                    "MessagePlayed" => &mut row.played_at,
                    _ => &mut row.failed_at,
                };
                column.get_or_insert(at);
                if t == "MessageFailed" {
                    row.error = Some(json_text(d, "failure"));
                }
                row.status = row.current_status().as_str().to_owned();
                Some(row)
            }
            ("MessageRendered", Some(mut row)) => {
                row.rendered = Some(json_text(d, "text"));
                Some(row)
            }
            ("MessageDeleted", Some(mut row)) => {
                row.content = "null".into();
                row.rendered = None;
                row.deleted = true;
                Some(row)
            }
            (t @ ("MessageMediaStored" | "MessageMediaFetchFailed"), Some(mut row)) => {
                row.media = MediaView::after(t, d).and_then(|m| serde_json::to_string(&m).ok());
                Some(row)
            }
            ("MessageTagged", Some(mut row)) => {
                row.tags = d.get("tags").cloned().unwrap_or(Value::Array(Vec::new())).to_string();
                Some(row)
            }
            (_, row) => row,
        }
    }

    /// The message's tags.
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    /// The status by the domain's rule, so the read model never disagrees with the aggregate.
    fn current_status(&self) -> DeliveryStatus {
        let reported = ReportedStatuses {
            sent: self.sent_at.is_some(),
            delivered: self.delivered_at.is_some(),
            read: self.read_at.is_some(),
            played: self.played_at.is_some(),
            failed: self.failed_at.is_some(),
        };
        match self.direction.as_str() {
            "inbound" if reported.read => DeliveryStatus::Read,
            "inbound" => DeliveryStatus::Delivered,
            _ => reported.current(),
        }
    }

    pub fn view(&self) -> Result<MessageView, AppError> {
        Ok(MessageView {
            id: parse_uuid(&self.id, "message id")?,
            conversation_id: parse_uuid(&self.conversation_id, "conversation id")?,
            number_id: self.number_id.clone(),
            wa_id: self.wa_id.clone(),
            direction: self.direction.clone(),
            kind: self.kind.clone(),
            status: self.status.clone(),
            wamid: self.wamid.clone(),
            created_at: from_micros(self.created_at),
            content: parse_json(Some(&self.content)),
            error: Some(parse_json(self.error.as_deref())).filter(|v| !v.is_null()),
            tags: self.tag_list(),
            sent_at: self.sent_at.map(from_micros),
            delivered_at: self.delivered_at.map(from_micros),
            read_at: self.read_at.map(from_micros),
            failed_at: self.failed_at.map(from_micros),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            deleted: self.deleted,
            rendered: parse_json(self.rendered.as_deref()),
            reactions: parse_json(self.reactions.as_deref()),
            accepted_at: self.accepted_at.map(from_micros),
            sent_from: self.sent_from.clone(),
            media: self.media.as_deref().and_then(|m| serde_json::from_str(m).ok()),
        })
    }
}

/// A conversation row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub tenant_id: String,
    pub id: String,
    pub number_id: String,
    pub wa_id: String,
    pub contact_name: String,
    pub state: String,
    pub window_closes_at: Option<i64>,
    pub window_expired: bool,
    pub unread_count: i64,
    pub last_message: Option<String>,
    pub created_at: i64,
    pub activity_at: i64,
    /// The user handling the conversation.
    #[serde(default)]
    pub assignee: Option<String>,
    /// When the free entry point window of a click-to-WhatsApp ad closes.
    #[serde(default)]
    pub entry_point_closes_at: Option<i64>,
    /// The ad that opened it, as JSON text.
    #[serde(default)]
    pub referral: Option<String>,
}

impl ConversationRow {
    /// The row after `event`; `None` when there is (still) no row.
    pub fn apply(row: Option<Self>, tenant_id: &str, id: Uuid, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        match (event.event_type.as_str(), row) {
            ("ConversationOpened", None) => {
                let at = parse_time(&d["at"]).unwrap_or_else(|| micros(event.recorded_at));
                Some(ConversationRow {
                    tenant_id: tenant_id.to_owned(),
                    id: id.to_string(),
                    number_id: text(d, "number_id"),
                    wa_id: text(d, "wa_id"),
                    contact_name: "null".into(),
                    state: "open".into(),
                    window_closes_at: None,
                    window_expired: false,
                    unread_count: 0,
                    last_message: None,
                    created_at: at,
                    activity_at: at,
                    assignee: None,
                    entry_point_closes_at: None,
                    referral: None,
                })
            }
            (_, None) => None,
            (t @ ("InboundMessageRecorded" | "OutboundMessageRecorded"), Some(mut row)) => {
                let preview = d.get("preview").cloned().unwrap_or(Value::Null);
                let at = parse_time(&preview["at"])
                    .or_else(|| parse_time(&d["at"]))
                    .unwrap_or_else(|| micros(event.recorded_at));
                let inbound = t == "InboundMessageRecorded";
                // The newest message becomes the preview; an inbound one also
                // counts as unread, moves the window (never back) and
                // refreshes the contact's name when it carries one.
                if at >= row.activity_at || row.last_message.is_none() {
                    row.last_message = Some(preview.to_string());
                }
                row.activity_at = row.activity_at.max(at);
                if inbound {
                    row.unread_count += 1;
                    if let Some(closes) = parse_time(&d["window_closes_at"]) {
                        let current = row.window_closes_at.unwrap_or(0);
                        if closes > current {
                            row.window_expired = false;
                        }
                        row.window_closes_at = Some(current.max(closes));
                    }
                    if let Some(name) = d.get("contact_name").filter(|n| !n.is_null()) {
                        row.contact_name = name.to_string();
                    }
                }
                Some(row)
            }
            ("EntryPointWindowOpened", Some(mut row)) => {
                if let Some(closes) = parse_time(&d["closes_at"]) {
                    if closes >= row.entry_point_closes_at.unwrap_or(0) {
                        row.referral = Some(json_text(d, "referral"));
                    }
                    row.entry_point_closes_at = Some(row.entry_point_closes_at.unwrap_or(0).max(closes));
                }
                Some(row)
            }
            ("ConversationWindowExpired", Some(mut row)) => {
                // Only the window it names: a later message may have reopened it.
                if parse_time(&d["closed_at"]).is_some_and(|closed| row.window_closes_at == Some(closed)) {
                    row.window_expired = true;
                }
                Some(row)
            }
            ("ConversationResolved", Some(mut row)) => {
                row.state = "resolved".into();
                Some(row)
            }
            ("ConversationReopened", Some(mut row)) => {
                row.state = "open".into();
                Some(row)
            }
            ("ConversationAssigned", Some(mut row)) => {
                row.assignee = d.get("assignee").and_then(Value::as_str).map(str::to_owned);
                Some(row)
            }
            ("ConversationMarkedRead", Some(mut row)) => {
                row.unread_count = 0;
                Some(row)
            }
            ("ConversationMessageDeleted", Some(mut row)) => {
                // Only the preview of that very message loses its text.
                let message_id = text(d, "message_id");
                let mut preview = parse_json(row.last_message.as_deref());
                if preview.get("message_id").and_then(Value::as_str) == Some(message_id.as_str()) {
                    if let Some(fields) = preview.as_object_mut() {
                        fields.insert("text".into(), Value::Null);
                        row.last_message = Some(preview.to_string());
                    }
                }
                Some(row)
            }
            (_, row) => row,
        }
    }

    /// Whether the window has closed without being marked expired yet.
    pub fn awaits_closing(&self) -> Option<i64> {
        self.window_closes_at.filter(|_| !self.window_expired)
    }

    pub fn view(&self) -> Result<ConversationView, AppError> {
        Ok(ConversationView {
            id: parse_uuid(&self.id, "conversation id")?,
            number_id: self.number_id.clone(),
            wa_id: self.wa_id.clone(),
            contact_name: parse_json(Some(&self.contact_name)),
            state: self.state.clone(),
            window_closes_at: self.window_closes_at.map(from_micros),
            unread_count: u32::try_from(self.unread_count).unwrap_or(u32::MAX),
            last_message: Some(parse_json(self.last_message.as_deref())).filter(|v| !v.is_null()),
            created_at: from_micros(self.created_at),
            activity_at: from_micros(self.activity_at),
            assignee: self.assignee.clone(),
            entry_point_window_closes_at: self.entry_point_closes_at.map(from_micros),
            referral: Some(parse_json(self.referral.as_deref())).filter(|v| !v.is_null()),
        })
    }
}

/// A registered number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberRow {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub verify_token_sha256: String,
    pub throughput_per_second: i64,
    pub registered_at: i64,
    #[serde(default = "unknown_rating")]
    pub quality_rating: String,
    #[serde(default)]
    pub messaging_limit: Option<String>,
    #[serde(default = "connected")]
    pub account_status: String,
    #[serde(default)]
    pub alternate_number_id: Option<String>,
}

fn unknown_rating() -> String {
    "UNKNOWN".into()
}

fn connected() -> String {
    "CONNECTED".into()
}

impl NumberRow {
    /// The row after `event`: the first registration of a number wins; its
    /// health and settings follow their events.
    pub fn apply(row: Option<Self>, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        match (event.event_type.as_str(), row) {
            ("NumberRegistered", None) => Some(NumberRow {
                tenant_id: event.tenant_id.clone(),
                phone_number_id: text(d, "phone_number_id"),
                display_phone_number: text(d, "display_phone_number"),
                waba_id: text(d, "waba_id"),
                verify_token_sha256: text(d, "verify_token_sha256"),
                throughput_per_second: d["throughput_per_second"].as_i64().unwrap_or(80),
                registered_at: parse_time(&d["at"]).unwrap_or_else(|| micros(event.recorded_at)),
                quality_rating: unknown_rating(),
                messaging_limit: None,
                account_status: connected(),
                alternate_number_id: None,
            }),
            (_, None) => None,
            ("NumberQualityUpdated", Some(mut row)) => {
                row.quality_rating = text(d, "quality_rating");
                if let Some(limit) = d.get("messaging_limit").and_then(Value::as_str) {
                    row.messaging_limit = Some(limit.to_owned());
                }
                Some(row)
            }
            ("NumberAccountStatusChanged", Some(mut row)) => {
                row.account_status = text(d, "status");
                Some(row)
            }
            ("NumberSettingsChanged", Some(mut row)) => {
                row.throughput_per_second = d["throughput_per_second"].as_i64().unwrap_or(row.throughput_per_second);
                row.alternate_number_id = d.get("alternate_number_id").and_then(Value::as_str).map(str::to_owned);
                Some(row)
            }
            (_, row) => row,
        }
    }

    pub fn view(&self) -> NumberView {
        NumberView {
            tenant_id: self.tenant_id.clone(),
            phone_number_id: self.phone_number_id.clone(),
            display_phone_number: self.display_phone_number.clone(),
            waba_id: self.waba_id.clone(),
            throughput_per_second: u32::try_from(self.throughput_per_second).unwrap_or(0),
            registered_at: from_micros(self.registered_at),
            quality_rating: self.quality_rating.clone(),
            messaging_limit: self.messaging_limit.clone(),
            account_status: self.account_status.clone(),
            alternate_number_id: self.alternate_number_id.clone(),
        }
    }
}

/// A contact of the directory. JSON values (possibly sealed) are kept as their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRow {
    pub tenant_id: String,
    pub wa_id: String,
    pub name: String,
    pub opted_out: bool,
    pub opt_changed_at: Option<i64>,
    pub opt_source: Option<String>,
    pub tags: Vec<String>,
    pub attributes: String,
    pub created_at: i64,
    /// Erased (GDPR): the row keeps only its key, out of every listing,
    /// until the number becomes a contact again.
    #[serde(default)]
    pub erased: bool,
}

impl ContactRow {
    /// The row after `event`; `None` when there is (still) no row.
    pub fn apply(row: Option<Self>, tenant_id: &str, wa_id: &str, event: &RecordedEvent) -> Option<Self> {
        let d = &event.data;
        let at = parse_time(&d["at"]).unwrap_or_else(|| micros(event.recorded_at));
        match (event.event_type.as_str(), row.filter(|r| !r.erased || event.event_type != "ContactCreated")) {
            ("ContactErased", Some(row)) => Some(ContactRow {
                name: "null".into(),
                opted_out: false,
                opt_changed_at: None,
                opt_source: None,
                tags: Vec::new(),
                attributes: "{}".into(),
                erased: true,
                ..row
            }),
            ("ContactCreated", None) => Some(ContactRow {
                tenant_id: tenant_id.to_owned(),
                wa_id: wa_id.to_owned(),
                name: json_text(d, "name"),
                opted_out: false,
                opt_changed_at: None,
                opt_source: None,
                tags: Vec::new(),
                attributes: "{}".into(),
                created_at: at,
                erased: false,
            }),
            (_, None) => None,
            ("ContactRenamed", Some(mut row)) => {
                row.name = json_text(d, "name");
                Some(row)
            }
            (t @ ("ContactOptedOut" | "ContactOptedIn"), Some(mut row)) => {
                row.opted_out = t == "ContactOptedOut";
                row.opt_changed_at = Some(at);
                row.opt_source = d.get("source").and_then(Value::as_str).map(str::to_owned);
                Some(row)
            }
            ("ContactUpdated", Some(mut row)) => {
                // Absent fields keep their value: an update names what it changes.
                if let Some(tags) = d.get("tags").filter(|t| !t.is_null()) {
                    row.tags = serde_json::from_value(tags.clone()).unwrap_or_default();
                }
                if let Some(attributes) = d.get("attributes").filter(|a| !a.is_null()) {
                    row.attributes = attributes.to_string();
                }
                Some(row)
            }
            (_, row) => row,
        }
    }

    pub fn view(&self) -> ContactView {
        ContactView {
            wa_id: self.wa_id.clone(),
            name: parse_json(Some(&self.name)),
            opted_out: self.opted_out,
            opt_changed_at: self.opt_changed_at.map(from_micros),
            opt_source: self.opt_source.clone(),
            tags: self.tags.clone(),
            attributes: parse_json(Some(&self.attributes)),
            created_at: from_micros(self.created_at),
        }
    }
}

/// A message template of a tenant, per name and language, with its review status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRow {
    pub tenant_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub reason: Option<String>,
    /// JSON text.
    pub components: String,
    pub whatsapp_id: Option<String>,
    pub waba_id: String,
    pub deleted: bool,
    pub updated_at: i64,
}

impl TemplateRow {
    /// The row after `event`: a submission (re)creates it, status changes and deletion update it.
    pub fn apply(
        row: Option<Self>,
        tenant_id: &str,
        name: &str,
        language: &str,
        event: &RecordedEvent,
    ) -> Option<Self> {
        let d = &event.data;
        let at = parse_time(&d["at"]).unwrap_or_else(|| micros(event.recorded_at));
        let optional = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
        match (event.event_type.as_str(), row) {
            ("TemplateSubmitted", _) => Some(TemplateRow {
                tenant_id: tenant_id.to_owned(),
                name: name.to_owned(),
                language: language.to_owned(),
                category: text(d, "category"),
                status: text(d, "status"),
                reason: None,
                components: json_text(d, "components"),
                whatsapp_id: optional("whatsapp_id"),
                waba_id: text(d, "waba_id"),
                deleted: false,
                updated_at: at,
            }),
            ("TemplateStatusChanged", Some(mut row)) => {
                row.status = text(d, "status");
                row.reason = optional("reason");
                if let Some(category) = optional("category") {
                    row.category = category;
                }
                row.updated_at = at;
                Some(row)
            }
            ("TemplateDeleted", Some(mut row)) => {
                row.deleted = true;
                row.updated_at = at;
                Some(row)
            }
            (_, row) => row,
        }
    }

    pub fn view(&self) -> TemplateView {
        TemplateView {
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category.clone(),
            status: self.status.clone(),
            reason: self.reason.clone(),
            components: parse_json(Some(&self.components)),
            whatsapp_id: self.whatsapp_id.clone(),
            waba_id: self.waba_id.clone(),
            updated_at: from_micros(self.updated_at),
        }
    }
}
