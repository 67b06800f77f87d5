//! The checks the simulator applies to a send body before accepting it: the
//! ones the Cloud API itself applies and that a sender most often gets wrong.
//! Each failure is a human-readable reason, answered as error code 100.

use serde::Deserialize;
use serde_json::Value;

use crate::send::{SendRequest, MESSAGING_PRODUCT};

/// The message types the Cloud API accepts on a send.
const SEND_TYPES: [&str; 11] = [
    "text",
    "template",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "reaction",
];

/// Longest text body.
const MAX_TEXT_CHARS: usize = 4096;
/// Longest interactive body text.
const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
/// Reply buttons per message.
const MAX_REPLY_BUTTONS: usize = 3;
/// Longest reply button title.
const MAX_BUTTON_TITLE_CHARS: usize = 20;
/// Sections per list.
const MAX_LIST_SECTIONS: usize = 10;
/// Longest list row id, title and description.
const MAX_ROW_ID_CHARS: usize = 200;
const MAX_ROW_TITLE_CHARS: usize = 24;
const MAX_ROW_DESCRIPTION_CHARS: usize = 72;
/// Longest `biz_opaque_callback_data`.
const MAX_CALLBACK_DATA_CHARS: usize = 512;
/// Longest phone number in digits (E.164).
const MAX_PHONE_DIGITS: usize = 15;

/// What a valid body asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SendBody {
    /// Send a message.
    Message(SendRequest),
    /// Mark an inbound message as read.
    MarkRead {
        /// The inbound message's `wamid`.
        message_id: String,
    },
}

/// Checks a send body the way the Cloud API would.
pub fn send_body(body: &Value) -> Result<SendBody, String> {
    let object = body.as_object().ok_or("the body must be a JSON object")?;
    match object.get("messaging_product").and_then(Value::as_str) {
        Some(MESSAGING_PRODUCT) => {}
        Some(other) => return Err(format!("messaging_product must be whatsapp, not {other:?}")),
        None => return Err("the parameter messaging_product is required".to_owned()),
    }
    if let Some(status) = object.get("status") {
        return mark_read(status, object.get("message_id"));
    }
    if let Some(recipient_type) = object.get("recipient_type") {
        if recipient_type.as_str() != Some("individual") {
            return Err("recipient_type must be individual".to_owned());
        }
    }
    let to = object.get("to").and_then(Value::as_str).ok_or("the parameter to is required")?;
    check_phone(to, "to")?;
    let kind = object.get("type").and_then(Value::as_str).ok_or("the parameter type is required")?;
    if !SEND_TYPES.contains(&kind) {
        return Err(format!("type must be one of {}", SEND_TYPES.join(", ")));
    }
    let content = object.get(kind).ok_or_else(|| format!("the parameter {kind} is required for type {kind}"))?;
    check_content(kind, content)?;
    if let Some(context) = object.get("context") {
        context
            .get("message_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or("context.message_id must be a non-empty string")?;
    }
    if let Some(data) = object.get("biz_opaque_callback_data") {
        let data = data.as_str().ok_or("biz_opaque_callback_data must be a string")?;
        check_length(data, 0, MAX_CALLBACK_DATA_CHARS, "biz_opaque_callback_data")?;
    }
    let request = SendRequest::deserialize(body).map_err(|error| error.to_string())?;
    Ok(SendBody::Message(request))
}

/// A mark-as-read body.
fn mark_read(status: &Value, message_id: Option<&Value>) -> Result<SendBody, String> {
    if status.as_str() != Some("read") {
        return Err("status must be read".to_owned());
    }
    let message_id =
        message_id.and_then(Value::as_str).filter(|id| !id.is_empty()).ok_or("the parameter message_id is required")?;
    Ok(SendBody::MarkRead { message_id: message_id.to_owned() })
}

/// A phone number: digits with an optional leading `+`.
pub fn check_phone(number: &str, name: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits.len() > MAX_PHONE_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("{name} must be a phone number of 1 to {MAX_PHONE_DIGITS} digits"));
    }
    Ok(())
}

/// Per-type checks of the content object.
fn check_content(kind: &str, content: &Value) -> Result<(), String> {
    if kind == "contacts" {
        // The one type whose content is a list of contact cards.
        return match content.as_array() {
            Some(cards) if !cards.is_empty() => Ok(()),
            _ => Err("contacts must be a non-empty array".to_owned()),
        };
    }
    if !content.is_object() {
        return Err(format!("{kind} must be an object"));
    }
    match kind {
        "text" => {
            let body = string_at(content, "body", "text.body")?;
            check_length(body, 1, MAX_TEXT_CHARS, "text.body")
        }
        "template" => {
            let name = string_at(content, "name", "template.name")?;
            check_length(name, 1, 512, "template.name")?;
            let code = content
                .get("language")
                .and_then(|language| language.get("code"))
                .and_then(Value::as_str)
                .ok_or("template.language.code is required")?;
            check_length(code, 1, 15, "template.language.code")
        }
        "image" | "document" | "audio" | "video" | "sticker" => {
            let by_id = content.get("id").and_then(Value::as_str).is_some();
            let by_link = content.get("link").and_then(Value::as_str).is_some();
            if by_id == by_link {
                return Err(format!("{kind} needs exactly one of id or link"));
            }
            Ok(())
        }
        "location" => {
            for field in ["latitude", "longitude"] {
                if !content.get(field).is_some_and(Value::is_number) {
                    return Err(format!("location.{field} must be a number"));
                }
            }
            Ok(())
        }
        "reaction" => {
            let message_id = string_at(content, "message_id", "reaction.message_id")?;
            check_length(message_id, 1, usize::MAX, "reaction.message_id")?;
            // An empty emoji removes the reaction, so only presence is checked.
            string_at(content, "emoji", "reaction.emoji").map(|_| ())
        }
        "interactive" => check_interactive(content),
        _ => Ok(()),
    }
}

/// Interactive messages: reply buttons and lists carry the limits senders
/// hit most; other interactive types only need their type.
fn check_interactive(content: &Value) -> Result<(), String> {
    let kind = string_at(content, "type", "interactive.type")?;
    if !matches!(kind, "button" | "list") {
        return Ok(());
    }
    let body = content
        .get("body")
        .and_then(|body| body.get("text"))
        .and_then(Value::as_str)
        .ok_or("interactive.body.text is required")?;
    check_length(body, 1, MAX_INTERACTIVE_BODY_CHARS, "interactive.body.text")?;
    let action = content.get("action").ok_or("interactive.action is required")?;
    if kind == "button" {
        let buttons = array_at(action, "buttons", "interactive.action.buttons")?;
        if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
            return Err(format!("interactive.action.buttons must hold 1 to {MAX_REPLY_BUTTONS} buttons"));
        }
        for button in buttons {
            let reply = button.get("reply").ok_or("each button needs a reply")?;
            let id = string_at(reply, "id", "button reply.id")?;
            check_length(id, 1, 256, "button reply.id")?;
            let title = string_at(reply, "title", "button reply.title")?;
            check_length(title, 1, MAX_BUTTON_TITLE_CHARS, "button reply.title")?;
        }
        return Ok(());
    }
    string_at(action, "button", "interactive.action.button")?;
    let sections = array_at(action, "sections", "interactive.action.sections")?;
    if sections.is_empty() || sections.len() > MAX_LIST_SECTIONS {
        return Err(format!("interactive.action.sections must hold 1 to {MAX_LIST_SECTIONS} sections"));
    }
    for section in sections {
        for row in array_at(section, "rows", "section.rows")? {
            check_length(string_at(row, "id", "row.id")?, 1, MAX_ROW_ID_CHARS, "row.id")?;
            check_length(string_at(row, "title", "row.title")?, 1, MAX_ROW_TITLE_CHARS, "row.title")?;
            if let Some(description) = row.get("description") {
                let description = description.as_str().ok_or("row.description must be a string")?;
                check_length(description, 0, MAX_ROW_DESCRIPTION_CHARS, "row.description")?;
            }
        }
    }
    Ok(())
}

/// The string at `key`, or a reason naming `name`.
fn string_at<'a>(value: &'a Value, key: &str, name: &str) -> Result<&'a str, String> {
    value.get(key).and_then(Value::as_str).ok_or_else(|| format!("{name} must be a string"))
}

/// The array at `key`, or a reason naming `name`.
fn array_at<'a>(value: &'a Value, key: &str, name: &str) -> Result<&'a Vec<Value>, String> {
    value.get(key).and_then(Value::as_array).ok_or_else(|| format!("{name} must be an array"))
}

/// Length limits count characters, as WhatsApp's do, not bytes.
fn check_length(value: &str, min: usize, max: usize, name: &str) -> Result<(), String> {
    let length = value.chars().count();
    if length < min || length > max {
        return Err(format!("{name} must be {min} to {max} characters, not {length}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(body: &str) -> Value {
        json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {"body": body}})
    }

    #[test]
    fn a_text_send_is_accepted() {
        let Ok(SendBody::Message(request)) = send_body(&text("hello")) else {
            panic!("a valid text send is refused");
        };
        assert_eq!(request.kind, "text");
        assert_eq!(request.content, json!({"body": "hello"}));
    }

    #[test]
    fn text_length_counts_characters() {
        assert!(send_body(&text(&"é".repeat(4096))).is_ok());
        assert!(send_body(&text(&"a".repeat(4097))).is_err());
        assert!(send_body(&text("")).is_err());
    }

    #[test]
    fn envelope_mistakes_are_refused() {
        let mut body = text("x");
        body["messaging_product"] = json!("sms");
        assert!(send_body(&body).is_err());
        let mut body = text("x");
        body["to"] = json!("not-a-number");
        assert!(send_body(&body).is_err());
        let mut body = text("x");
        body["type"] = json!("fax");
        assert!(send_body(&body).is_err());
        let mut body = text("x");
        body["type"] = json!("image");
        assert!(send_body(&body).is_err(), "type without its object");
        let mut body = text("x");
        body["biz_opaque_callback_data"] = json!("x".repeat(513));
        assert!(send_body(&body).is_err());
    }

    #[test]
    fn button_limits_apply() {
        let buttons = |count: usize, title: &str| {
            let buttons: Vec<Value> = (0..count)
                .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": title}}))
                .collect();
            json!({"messaging_product": "whatsapp", "to": "1", "type": "interactive",
                   "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}})
        };
        assert!(send_body(&buttons(3, "Yes")).is_ok());
        assert!(send_body(&buttons(4, "Yes")).is_err());
        assert!(send_body(&buttons(0, "Yes")).is_err());
        assert!(send_body(&buttons(1, &"t".repeat(21))).is_err());
    }

    #[test]
    fn list_row_limits_apply() {
        let list = |title: &str| {
            json!({"messaging_product": "whatsapp", "to": "1", "type": "interactive",
                   "interactive": {"type": "list", "body": {"text": "Pick"},
                                   "action": {"button": "Options", "sections": [{"rows": [{"id": "r1", "title": title}]}]}}})
        };
        assert!(send_body(&list("Row")).is_ok());
        assert!(send_body(&list(&"t".repeat(25))).is_err());
    }

    #[test]
    fn mark_as_read_is_recognised() {
        let body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"});
        assert_eq!(send_body(&body), Ok(SendBody::MarkRead { message_id: "wamid.X".into() }));
    }

    #[test]
    fn media_needs_exactly_one_source() {
        let media =
            |content: Value| json!({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": content});
        assert!(send_body(&media(json!({"id": "123"}))).is_ok());
        assert!(send_body(&media(json!({"link": "https://example.invalid/a.jpg"}))).is_ok());
        assert!(send_body(&media(json!({}))).is_err());
        assert!(send_body(&media(json!({"id": "1", "link": "https://example.invalid/a.jpg"}))).is_err());
    }
}
