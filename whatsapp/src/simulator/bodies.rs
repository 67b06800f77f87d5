//! The webhook bodies the simulator posts, built from the same wire types
//! Parley parses, so that what it sends is what Meta sends.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::send::{SendRequest, MESSAGING_PRODUCT};
use crate::webhook::{
    Change, ChangeValue, Contact, Entry, MessageObject, MessagesValue, Metadata, Pricing, Profile, StatusKind,
    StatusObject, WebhookPayload, FIELD_MESSAGES, OBJECT_WHATSAPP,
};

/// How a business number appears in webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberInfo {
    /// The Graph API id of the number.
    pub phone_number_id: String,
    /// The number as dialled.
    pub display_phone_number: String,
    /// The business account that owns it.
    pub waba_id: String,
}

/// A customer message as the simulator is asked to deliver it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundSpec {
    /// The customer's WhatsApp id.
    pub from: String,
    /// The customer's profile name.
    pub name: Option<String>,
    /// The message type.
    pub kind: String,
    /// The object under the key named by `kind`.
    pub content: Value,
    /// The business message this one replies to.
    pub context_message_id: Option<String>,
}

/// The `pricing` Meta reports for a send: templates are billed (priced here
/// as utility, the simulator cannot know a template's category), free-form
/// replies inside the service window are free.
pub fn pricing_for(request: &SendRequest) -> Pricing {
    let (billable, category, pricing_type) =
        if request.is_template() { (true, "utility", "regular") } else { (false, "service", "free_customer_service") };
    Pricing {
        billable: Some(billable),
        pricing_model: Some("PMP".to_owned()),
        category: Some(category.to_owned()),
        pricing_type: Some(pricing_type.to_owned()),
    }
}

/// A status webhook for one sent message, like status_sent.json.
pub fn status_payload(
    number: &NumberInfo,
    wamid: &str,
    request: &SendRequest,
    status: StatusKind,
    at: DateTime<Utc>,
) -> WebhookPayload {
    // Meta reports pricing with sent and delivered, not with read.
    let pricing = matches!(status, StatusKind::Sent | StatusKind::Delivered).then(|| pricing_for(request));
    let status = StatusObject {
        id: wamid.to_owned(),
        status: status.as_str().to_owned(),
        timestamp: at,
        recipient_id: recipient_id(&request.to),
        biz_opaque_callback_data: request.biz_opaque_callback_data.clone(),
        pricing,
        conversation: None,
        errors: Vec::new(),
        extra: Map::new(),
    };
    payload(
        number,
        MessagesValue {
            messaging_product: Some(MESSAGING_PRODUCT.to_owned()),
            metadata: metadata(number),
            contacts: Vec::new(),
            messages: Vec::new(),
            statuses: vec![status],
            extra: Map::new(),
        },
    )
}

/// A message webhook for one customer message, like inbound_text.json.
pub fn inbound_payload(number: &NumberInfo, wamid: &str, inbound: &InboundSpec, at: DateTime<Utc>) -> WebhookPayload {
    let mut rest = Map::new();
    rest.insert(inbound.kind.clone(), inbound.content.clone());
    let context = inbound
        .context_message_id
        .as_ref()
        .map(|id| serde_json::json!({ "from": number.display_phone_number, "id": id }));
    let message = MessageObject {
        from: inbound.from.clone(),
        id: wamid.to_owned(),
        timestamp: at,
        kind: inbound.kind.clone(),
        context,
        referral: None,
        errors: Vec::new(),
        rest,
    };
    let contact =
        Contact { profile: inbound.name.clone().map(|name| Profile { name: Some(name) }), wa_id: inbound.from.clone() };
    payload(
        number,
        MessagesValue {
            messaging_product: Some(MESSAGING_PRODUCT.to_owned()),
            metadata: metadata(number),
            contacts: vec![contact],
            messages: vec![message],
            statuses: Vec::new(),
            extra: Map::new(),
        },
    )
}

/// WhatsApp ids are the number's digits without `+`.
fn recipient_id(to: &str) -> String {
    to.trim_start_matches('+').to_owned()
}

fn metadata(number: &NumberInfo) -> Metadata {
    Metadata {
        display_phone_number: number.display_phone_number.clone(),
        phone_number_id: number.phone_number_id.clone(),
    }
}

/// Wraps one `messages` value in the entry and change envelope.
fn payload(number: &NumberInfo, value: MessagesValue) -> WebhookPayload {
    WebhookPayload {
        object: OBJECT_WHATSAPP.to_owned(),
        entry: vec![Entry {
            id: number.waba_id.clone(),
            changes: vec![Change { field: FIELD_MESSAGES.to_owned(), value: ChangeValue::Messages(Box::new(value)) }],
        }],
    }
}
