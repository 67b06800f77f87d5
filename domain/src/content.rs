//! Message content: what each message type may carry, checked against the
//! Cloud API's documented limits before anything is queued.

use serde_json::Value;

/// Message types Parley can send.
pub const OUTBOUND_KINDS: &[&str] = &[
    "text",
    "template",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "interactive",
    "reaction",
    "location",
    "contacts",
];

pub const TEXT_MAX_CHARS: usize = 4096;
pub const CAPTION_MAX_CHARS: usize = 1024;
pub const INTERACTIVE_BODY_MAX_CHARS: usize = 1024;
pub const REPLY_BUTTONS_MAX: usize = 3;
pub const BUTTON_TITLE_MAX_CHARS: usize = 20;
pub const LIST_SECTIONS_MAX: usize = 10;
pub const ROW_ID_MAX_CHARS: usize = 200;
pub const ROW_TITLE_MAX_CHARS: usize = 24;
pub const ROW_DESCRIPTION_MAX_CHARS: usize = 72;
pub const PREVIEW_MAX_CHARS: usize = 100;

/// A rule the content breaks: which field and why, for a problem+json answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ContentError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ContentError {
    ContentError { field: field.into(), message: message.into() }
}

/// Whether a message of this kind is a template (allowed outside the window).
pub fn is_template(kind: &str) -> bool {
    kind == "template"
}

/// Checks outbound `content` (the object under the Cloud API's `type` key).
pub fn validate_outbound(kind: &str, content: &Value) -> Result<(), ContentError> {
    let obj = content.as_object().ok_or_else(|| err(kind, "must be an object"))?;
    let allowed: &[&str] = match kind {
        "text" => &["body", "preview_url"],
        "template" => &["name", "language", "components"],
        "image" | "video" => &["id", "link", "blob_id", "caption"],
        "document" => &["id", "link", "blob_id", "caption", "filename"],
        "audio" | "sticker" => &["id", "link", "blob_id"],
        "interactive" => &["type", "header", "body", "footer", "action"],
        "reaction" => &["message_id", "emoji"],
        "location" => &["latitude", "longitude", "name", "address"],
        "contacts" => return validate_contacts(content),
        other => return Err(err("type", format!("unsupported message type `{other}`"))),
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(format!("{kind}.{unknown}"), "unknown field"));
    }
    match kind {
        "text" => {
            let body = required_str(content, kind, "body")?;
            check_len(body, 1, TEXT_MAX_CHARS, "text.body")
        }
        "template" => validate_template(content),
        "image" | "video" | "document" | "audio" | "sticker" => validate_media(kind, content),
        "interactive" => validate_interactive(content),
        "reaction" => {
            required_str(content, kind, "message_id")?;
            match content.get("emoji") {
                Some(Value::String(_)) => Ok(()),
                _ => Err(err("reaction.emoji", "must be a string (empty removes the reaction)")),
            }
        }
        "location" => {
            let lat = content.get("latitude").and_then(Value::as_f64);
            let lon = content.get("longitude").and_then(Value::as_f64);
            match (lat, lon) {
                (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => Ok(()),
                _ => Err(err("location", "latitude (-90..90) and longitude (-180..180) are required numbers")),
            }
        }
        _ => Ok(()),
    }
}

fn required_str<'a>(content: &'a Value, kind: &str, field: &str) -> Result<&'a str, ContentError> {
    content
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{kind}.{field}"), "is required and must be a string"))
}

fn check_len(s: &str, min: usize, max: usize, field: &str) -> Result<(), ContentError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(err(field, format!("must be {min} to {max} characters, got {n}")));
    }
    Ok(())
}

fn validate_template(content: &Value) -> Result<(), ContentError> {
    let name = required_str(content, "template", "name")?;
    if name.is_empty()
        || name.len() > 512
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(err("template.name", "must match ^[a-z0-9_]{1,512}$"));
    }
    let code = content.get("language").and_then(|l| l.get("code")).and_then(Value::as_str);
    if code.is_none_or(str::is_empty) {
        return Err(err("template.language.code", "is required"));
    }
    match content.get("components") {
        None | Some(Value::Array(_)) => Ok(()),
        Some(_) => Err(err("template.components", "must be an array")),
    }
}

/// The Parley blob an outbound media message sends, when it names one.
pub fn media_blob_id(content: &Value) -> Option<uuid::Uuid> {
    content.get("blob_id").and_then(Value::as_str).and_then(|id| id.parse().ok())
}

fn validate_media(kind: &str, content: &Value) -> Result<(), ContentError> {
    let sources = ["id", "link", "blob_id"];
    for source in sources {
        match content.get(source) {
            None => {}
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => return Err(err(format!("{kind}.{source}"), "must be a non-empty string")),
        }
    }
    if sources.iter().filter(|s| content.get(**s).is_some()).count() != 1 {
        return Err(err(kind, "exactly one of `id`, `link` or `blob_id` is required"));
    }
    if let Some(link) = content.get("link").and_then(Value::as_str) {
        if !(link.starts_with("https://") || link.starts_with("http://")) {
            return Err(err(format!("{kind}.link"), "must be an http(s) URL"));
        }
    }
    if content.get("blob_id").is_some() && media_blob_id(content).is_none() {
        return Err(err(format!("{kind}.blob_id"), "must be the id `POST /v1/media` answered"));
    }
    if let Some(caption) = content.get("caption") {
        let caption = caption.as_str().ok_or_else(|| err(format!("{kind}.caption"), "must be a string"))?;
        check_len(caption, 0, CAPTION_MAX_CHARS, &format!("{kind}.caption"))?;
    }
    Ok(())
}

fn validate_interactive(content: &Value) -> Result<(), ContentError> {
    let body = content.get("body").and_then(|b| b.get("text")).and_then(Value::as_str);
    let body = body.ok_or_else(|| err("interactive.body.text", "is required"))?;
    check_len(body, 1, INTERACTIVE_BODY_MAX_CHARS, "interactive.body.text")?;
    let action = content.get("action").ok_or_else(|| err("interactive.action", "is required"))?;
    match content.get("type").and_then(Value::as_str) {
        Some("button") => {
            let buttons = action.get("buttons").and_then(Value::as_array);
            let buttons = buttons.ok_or_else(|| err("interactive.action.buttons", "is required"))?;
            if buttons.is_empty() || buttons.len() > REPLY_BUTTONS_MAX {
                return Err(err("interactive.action.buttons", format!("must hold 1 to {REPLY_BUTTONS_MAX} buttons")));
            }
            for (i, b) in buttons.iter().enumerate() {
                let reply = b.get("reply");
                let title = reply.and_then(|r| r.get("title")).and_then(Value::as_str);
                let id = reply.and_then(|r| r.get("id")).and_then(Value::as_str);
                let field = format!("interactive.action.buttons[{i}].reply");
                let title = title.ok_or_else(|| err(format!("{field}.title"), "is required"))?;
                check_len(title, 1, BUTTON_TITLE_MAX_CHARS, &format!("{field}.title"))?;
                id.ok_or_else(|| err(format!("{field}.id"), "is required"))?;
            }
            Ok(())
        }
        Some("list") => {
            let sections = action.get("sections").and_then(Value::as_array);
            let sections = sections.ok_or_else(|| err("interactive.action.sections", "is required"))?;
            if sections.is_empty() || sections.len() > LIST_SECTIONS_MAX {
                return Err(err("interactive.action.sections", format!("must hold 1 to {LIST_SECTIONS_MAX} sections")));
            }
            action
                .get("button")
                .and_then(Value::as_str)
                .ok_or_else(|| err("interactive.action.button", "is required"))?;
            for (s, section) in sections.iter().enumerate() {
                let rows = section.get("rows").and_then(Value::as_array);
                let rows = rows.ok_or_else(|| err(format!("interactive.action.sections[{s}].rows"), "is required"))?;
                for (r, row) in rows.iter().enumerate() {
                    let field = format!("interactive.action.sections[{s}].rows[{r}]");
                    let id = row
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(format!("{field}.id"), "is required"))?;
                    check_len(id, 1, ROW_ID_MAX_CHARS, &format!("{field}.id"))?;
                    let title = row.get("title").and_then(Value::as_str);
                    let title = title.ok_or_else(|| err(format!("{field}.title"), "is required"))?;
                    check_len(title, 1, ROW_TITLE_MAX_CHARS, &format!("{field}.title"))?;
                    if let Some(d) = row.get("description") {
                        let d = d.as_str().ok_or_else(|| err(format!("{field}.description"), "must be a string"))?;
                        check_len(d, 0, ROW_DESCRIPTION_MAX_CHARS, &format!("{field}.description"))?;
                    }
                }
            }
            Ok(())
        }
        _ => Err(err("interactive.type", "must be `button` or `list`")),
    }
}

fn validate_contacts(content: &Value) -> Result<(), ContentError> {
    match content.as_array() {
        Some(list) if !list.is_empty() && list.iter().all(|c| c.get("name").is_some()) => Ok(()),
        _ => Err(err("contacts", "must be a non-empty array of contacts, each with a name")),
    }
}

/// The text a conversation list shows for a message, cut to a preview length.
/// Inbound and outbound shapes are both understood: an interactive message
/// shows its body, an answer to one the title tapped.
pub fn preview_text(kind: &str, content: &Value) -> Option<String> {
    let str_at = |pointer: &str| content.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty());
    let text = match kind {
        "text" => str_at("/body").map(str::to_owned),
        "image" | "video" | "document" => str_at("/caption").or(str_at("/filename")).map(str::to_owned),
        "interactive" => str_at("/body/text")
            .or(str_at("/button_reply/title"))
            .or(str_at("/list_reply/title"))
            .or(str_at("/nfm_reply/body"))
            .map(str::to_owned),
        "button" => str_at("/text").map(str::to_owned),
        // An empty emoji removes a reaction: nothing to show.
        "reaction" => str_at("/emoji").map(str::to_owned),
        "template" => str_at("/name").map(str::to_owned),
        "location" => str_at("/name").or(str_at("/address")).map(str::to_owned).or_else(|| {
            let lat = content.get("latitude").and_then(Value::as_f64)?;
            let lon = content.get("longitude").and_then(Value::as_f64)?;
            Some(format!("{lat}, {lon}"))
        }),
        "contacts" => {
            let names: Vec<&str> = content
                .as_array()?
                .iter()
                .filter_map(|c| c.pointer("/name/formatted_name").and_then(Value::as_str))
                .collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        _ => None,
    }?;
    Some(text.chars().take(PREVIEW_MAX_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_limits() {
        assert!(validate_outbound("text", &json!({"body": "hi"})).is_ok());
        assert!(validate_outbound("text", &json!({"body": ""})).is_err());
        assert!(validate_outbound("text", &json!({"body": "x".repeat(4097)})).is_err());
        assert!(validate_outbound("text", &json!({"body": "x".repeat(4096)})).is_ok());
        let e = validate_outbound("text", &json!({"body": "hi", "bogus": 1})).unwrap_err();
        assert_eq!(e.field, "text.bogus");
    }

    #[test]
    fn media_needs_exactly_one_source() {
        assert!(validate_outbound("image", &json!({"link": "https://x.test/a.png"})).is_ok());
        assert!(validate_outbound("image", &json!({"id": "1", "link": "https://x.test/a.png"})).is_err());
        assert!(validate_outbound("image", &json!({})).is_err());
        assert!(validate_outbound("document", &json!({"link": "ftp://x"})).is_err());
        let blob = uuid::Uuid::from_u128(7).to_string();
        assert!(validate_outbound("sticker", &json!({"blob_id": blob})).is_ok());
        assert!(validate_outbound("image", &json!({"blob_id": blob, "id": "1"})).is_err());
        assert!(validate_outbound("image", &json!({"blob_id": "not-a-uuid"})).is_err());
        assert!(validate_outbound("audio", &json!({"id": 12})).is_err());
    }

    #[test]
    fn interactive_buttons_and_lists() {
        let ok = json!({"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "Yes"}}]}});
        assert!(validate_outbound("interactive", &ok).is_ok());
        let long_title = json!({"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "x".repeat(21)}}]}});
        assert!(validate_outbound("interactive", &long_title).is_err());
        let four: Vec<_> =
            (0..4).map(|i| json!({"type": "reply", "reply": {"id": i.to_string(), "title": "t"}})).collect();
        assert!(validate_outbound(
            "interactive",
            &json!({"type": "button", "body": {"text": "P"}, "action": {"buttons": four}})
        )
        .is_err());
        let list = json!({"type": "list", "body": {"text": "Menu"}, "action": {"button": "Open", "sections": [
            {"title": "S", "rows": [{"id": "r1", "title": "Row", "description": "d"}]}]}});
        assert!(validate_outbound("interactive", &list).is_ok());
    }

    #[test]
    fn template_and_reaction_shapes() {
        assert!(validate_outbound("template", &json!({"name": "order_update", "language": {"code": "en_US"}})).is_ok());
        assert!(validate_outbound("template", &json!({"name": "Bad-Name", "language": {"code": "en"}})).is_err());
        assert!(validate_outbound("template", &json!({"name": "ok"})).is_err());
        assert!(validate_outbound("reaction", &json!({"message_id": "wamid.X", "emoji": ""})).is_ok());
        assert!(validate_outbound("sms", &json!({})).is_err());
    }

    #[test]
    fn previews_are_cut() {
        let p = preview_text("text", &json!({"body": "y".repeat(500)})).unwrap();
        assert_eq!(p.chars().count(), PREVIEW_MAX_CHARS);
        assert_eq!(preview_text("audio", &json!({"id": "1"})), None);
    }

    #[test]
    fn previews_of_inbound_kinds() {
        let p = |kind: &str, content: Value| preview_text(kind, &content);
        assert_eq!(
            p("interactive", json!({"type": "button_reply", "button_reply": {"id": "a", "title": "Yes"}})).as_deref(),
            Some("Yes")
        );
        assert_eq!(
            p(
                "interactive",
                json!({"type": "list_reply", "list_reply": {"id": "r", "title": "Row", "description": "d"}})
            )
            .as_deref(),
            Some("Row")
        );
        assert_eq!(p("button", json!({"payload": "p", "text": "Stop promotions"})).as_deref(), Some("Stop promotions"));
        assert_eq!(
            p("location", json!({"latitude": 52.5, "longitude": 13.4, "name": "Office"})).as_deref(),
            Some("Office")
        );
        assert_eq!(p("location", json!({"latitude": 52.5, "longitude": 13.4})).as_deref(), Some("52.5, 13.4"));
        assert_eq!(
            p("contacts", json!([{"name": {"formatted_name": "Ann Lee", "first_name": "Ann"}}])).as_deref(),
            Some("Ann Lee")
        );
        assert_eq!(p("reaction", json!({"message_id": "wamid.X", "emoji": ""})), None);
        assert_eq!(p("unsupported", Value::Null), None);
    }
}
