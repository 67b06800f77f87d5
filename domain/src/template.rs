//! Message templates (SPEC 3.5, 4.5): the rules a template must follow to be
//! submitted, the aggregate that follows its review by WhatsApp, and the
//! check that a template send supplies every parameter, with the text it
//! renders to.
//!
//! Components use the Cloud API's own shape (`{"type": "BODY", "text": ...}`),
//! so a template file written for Meta lints here unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Event;

pub const MAX_NAME_CHARS: usize = 512;
pub const MAX_BODY_CHARS: usize = 1024;
pub const MAX_HEADER_TEXT_CHARS: usize = 60;
pub const MAX_FOOTER_CHARS: usize = 60;
pub const MAX_BUTTONS: usize = 10;
pub const MAX_BUTTON_TEXT_CHARS: usize = 25;

/// A template as written: what is submitted to WhatsApp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDraft {
    pub name: String,
    /// A language code such as `en_US` or `pt_BR`.
    pub language: String,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: String,
    /// HEADER, BODY, FOOTER and BUTTONS components in the Cloud API's shape.
    pub components: Vec<Value>,
}

/// One broken rule: a stable code, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    /// A JSON pointer into the template, e.g. `/components/1/text`.
    pub path: String,
    pub message: String,
}

fn violation(rule: &str, path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation { rule: rule.to_owned(), path: path.into(), message: message.into() }
}

/// The placeholders `{{n}}` of a text, in order of appearance; `Err` names a
/// malformed one such as `{{name}}` or `{{ 1 }}`.
pub fn placeholders(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("`{{` without a closing `}}`".to_owned());
        };
        let inner = &after[..end];
        match inner.parse::<usize>() {
            Ok(n) if n >= 1 && inner.bytes().all(|b| b.is_ascii_digit()) => out.push(n),
            _ => return Err(format!("`{{{{{inner}}}}}` is not a numbered placeholder like {{{{1}}}}")),
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Placeholders must be numbered 1..n without gaps (each may repeat).
fn check_sequence(found: &[usize]) -> Result<usize, String> {
    let mut distinct: Vec<usize> = found.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    for (i, n) in distinct.iter().enumerate() {
        if *n != i + 1 {
            return Err(format!(
                "placeholders must be numbered from {{{{1}}}} without gaps; {{{{{}}}}} is missing",
                i + 1
            ));
        }
    }
    Ok(distinct.len())
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn component_type(c: &Value) -> String {
    c.get("type").and_then(Value::as_str).unwrap_or_default().to_uppercase()
}

/// Every rule the template breaks; empty when it may be submitted.
pub fn lint(t: &TemplateDraft) -> Vec<Violation> {
    let mut v = Vec::new();
    let name_ok = (1..=MAX_NAME_CHARS).contains(&t.name.len())
        && t.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        v.push(violation("template_name_invalid", "/name", "names have 1 to 512 of a-z, 0-9 and _"));
    }
    let lang = t.language.as_bytes();
    let lang_ok = match t.language.split_once('_') {
        None => (2..=3).contains(&lang.len()) && lang.iter().all(u8::is_ascii_lowercase),
        Some((l, r)) => {
            (2..=3).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_lowercase())
                && r.len() == 2
                && r.bytes().all(|b| b.is_ascii_uppercase())
        }
    };
    if !lang_ok {
        v.push(violation("template_language_invalid", "/language", "use a language code such as en or en_US"));
    }
    if !matches!(t.category.as_str(), "MARKETING" | "UTILITY" | "AUTHENTICATION") {
        v.push(violation("template_category_invalid", "/category", "must be MARKETING, UTILITY or AUTHENTICATION"));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, c) in t.components.iter().enumerate() {
        let path = format!("/components/{i}");
        let kind = component_type(c);
        if seen.contains(&kind) {
            v.push(violation("template_component_repeated", &path, format!("only one {kind} component is allowed")));
            continue;
        }
        seen.push(kind.clone());
        match kind.as_str() {
            "HEADER" => lint_header(c, &path, &mut v),
            "BODY" => lint_body(c, &path, &mut v),
            "FOOTER" => lint_footer(c, &path, &mut v),
            "BUTTONS" => lint_buttons(c, &path, &mut v),
            other => v.push(violation(
                "template_component_unknown",
                format!("{path}/type"),
                format!("`{other}` is not HEADER, BODY, FOOTER or BUTTONS"),
            )),
        }
    }
    if !seen.iter().any(|k| k == "BODY") {
        v.push(violation("template_body_missing", "/components", "a template needs a BODY component"));
    }
    v
}

fn text_of(c: &Value) -> Option<&str> {
    c.get("text").and_then(Value::as_str)
}

fn lint_header(c: &Value, path: &str, v: &mut Vec<Violation>) {
    let format = c.get("format").and_then(Value::as_str).unwrap_or("TEXT").to_uppercase();
    match format.as_str() {
        "TEXT" => match text_of(c) {
            None | Some("") => {
                v.push(violation("template_header_text_missing", format!("{path}/text"), "a TEXT header needs text"))
            }
            Some(text) => {
                if chars(text) > MAX_HEADER_TEXT_CHARS {
                    v.push(violation(
                        "template_header_too_long",
                        format!("{path}/text"),
                        format!("header text has at most {MAX_HEADER_TEXT_CHARS} characters"),
                    ));
                }
                match placeholders(text) {
                    Err(e) => v.push(violation("template_placeholder_malformed", format!("{path}/text"), e)),
                    Ok(p) if p.len() > 1 || p.iter().any(|n| *n != 1) => v.push(violation(
                        "template_header_placeholders",
                        format!("{path}/text"),
                        "a header may hold one placeholder, {{1}}",
                    )),
                    Ok(_) => {}
                }
            }
        },
        "IMAGE" | "VIDEO" | "DOCUMENT" | "LOCATION" => {}
        other => v.push(violation(
            "template_header_format_invalid",
            format!("{path}/format"),
            format!("`{other}` is not TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION"),
        )),
    }
}

fn lint_body(c: &Value, path: &str, v: &mut Vec<Violation>) {
    let Some(text) = text_of(c).filter(|t| !t.trim().is_empty()) else {
        v.push(violation("template_body_missing", format!("{path}/text"), "the BODY needs text"));
        return;
    };
    if chars(text) > MAX_BODY_CHARS {
        v.push(violation(
            "template_body_too_long",
            format!("{path}/text"),
            format!("the body has at most {MAX_BODY_CHARS} characters"),
        ));
    }
    match placeholders(text) {
        Err(e) => v.push(violation("template_placeholder_malformed", format!("{path}/text"), e)),
        Ok(p) => {
            if let Err(e) = check_sequence(&p) {
                v.push(violation("template_placeholders_not_sequential", format!("{path}/text"), e));
            }
        }
    }
}

fn lint_footer(c: &Value, path: &str, v: &mut Vec<Violation>) {
    let text = text_of(c).unwrap_or_default();
    if text.is_empty() {
        v.push(violation("template_footer_empty", format!("{path}/text"), "a FOOTER needs text"));
    }
    if chars(text) > MAX_FOOTER_CHARS {
        v.push(violation(
            "template_footer_too_long",
            format!("{path}/text"),
            format!("the footer has at most {MAX_FOOTER_CHARS} characters"),
        ));
    }
    if text.contains("{{") {
        v.push(violation("template_footer_placeholder", format!("{path}/text"), "a footer cannot hold placeholders"));
    }
}

fn lint_buttons(c: &Value, path: &str, v: &mut Vec<Violation>) {
    let buttons = c.get("buttons").and_then(Value::as_array).cloned().unwrap_or_default();
    if buttons.is_empty() {
        v.push(violation("template_buttons_empty", format!("{path}/buttons"), "a BUTTONS component needs buttons"));
    }
    if buttons.len() > MAX_BUTTONS {
        v.push(violation(
            "template_too_many_buttons",
            format!("{path}/buttons"),
            format!("at most {MAX_BUTTONS} buttons"),
        ));
    }
    for (i, b) in buttons.iter().enumerate() {
        let bp = format!("{path}/buttons/{i}");
        let kind = component_type(b);
        let text = text_of(b).unwrap_or_default();
        if text.is_empty() || chars(text) > MAX_BUTTON_TEXT_CHARS {
            v.push(violation(
                "template_button_text_invalid",
                format!("{bp}/text"),
                format!("button text has 1 to {MAX_BUTTON_TEXT_CHARS} characters"),
            ));
        }
        match kind.as_str() {
            "QUICK_REPLY" | "COPY_CODE" | "OTP" => {}
            "URL" => match b.get("url").and_then(Value::as_str) {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    if let Ok(p) = placeholders(u) {
                        if p.len() > 1 || p.iter().any(|n| *n != 1) || (p.len() == 1 && !u.ends_with("{{1}}")) {
                            v.push(violation(
                                "template_button_url_invalid",
                                format!("{bp}/url"),
                                "a URL may end with one placeholder, {{1}}",
                            ));
                        }
                    }
                }
                _ => v.push(violation(
                    "template_button_url_invalid",
                    format!("{bp}/url"),
                    "a URL button needs an http(s) url",
                )),
            },
            "PHONE_NUMBER" => {
                if b.get("phone_number").and_then(Value::as_str).is_none_or(str::is_empty) {
                    v.push(violation(
                        "template_button_phone_missing",
                        format!("{bp}/phone_number"),
                        "a PHONE_NUMBER button needs a phone_number",
                    ));
                }
            }
            other => v.push(violation(
                "template_button_type_invalid",
                format!("{bp}/type"),
                format!("`{other}` is not QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE or OTP"),
            )),
        }
    }
}

/// A template's review status at WhatsApp (fixtures README lists them all).
pub fn is_known_status(s: &str) -> bool {
    matches!(
        s,
        "APPROVED"
            | "PENDING"
            | "REJECTED"
            | "PAUSED"
            | "DISABLED"
            | "IN_APPEAL"
            | "FLAGGED"
            | "REINSTATED"
            | "PENDING_DELETION"
            | "DELETED"
            | "ARCHIVED"
            | "UNARCHIVED"
            | "LIMIT_EXCEEDED"
            | "LOCKED"
    )
}

/// One template in one language, as Parley follows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub draft: Option<TemplateDraft>,
    pub waba_id: String,
    pub whatsapp_id: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub deleted: bool,
}

impl Template {
    pub fn exists(&self) -> bool {
        self.draft.is_some() && !self.deleted
    }

    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::TemplateSubmitted { name, language, category, components, whatsapp_id, status, waba_id, .. } => {
                self.draft = Some(TemplateDraft {
                    name: name.clone(),
                    language: language.clone(),
                    category: category.clone(),
                    components: components.clone(),
                });
                self.whatsapp_id = whatsapp_id.clone();
                self.status = status.clone();
                self.waba_id = waba_id.clone();
                self.reason = None;
                self.deleted = false;
            }
            Event::TemplateStatusChanged { status, reason, category, .. } => {
                self.status = status.clone();
                self.reason = reason.clone();
                if let (Some(d), Some(c)) = (self.draft.as_mut(), category) {
                    d.category = c.clone();
                }
            }
            Event::TemplateDeleted { .. } => self.deleted = true,
            _ => {}
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template breaks {} rule(s)", .0.len())]
    Invalid(Vec<Violation>),
    #[error("a template with this name and language exists already")]
    Exists,
    #[error("no such template")]
    NotFound,
}

/// What WhatsApp answered to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub whatsapp_id: Option<String>,
    pub status: String,
    pub waba_id: String,
}

/// Records a submitted template (after WhatsApp accepted it for review, or
/// found at WhatsApp by a sync).
pub fn submit(
    state: &Template,
    draft: &TemplateDraft,
    accepted: &Accepted,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, TemplateError> {
    let violations = lint(draft);
    if !violations.is_empty() {
        return Err(TemplateError::Invalid(violations));
    }
    if state.exists() {
        return Err(TemplateError::Exists);
    }
    Ok(vec![Event::TemplateSubmitted {
        name: draft.name.clone(),
        language: draft.language.clone(),
        category: draft.category.clone(),
        components: draft.components.clone(),
        whatsapp_id: accepted.whatsapp_id.clone(),
        status: accepted.status.clone(),
        waba_id: accepted.waba_id.clone(),
        at: now,
    }])
}

/// Follows a status change reported by WhatsApp (webhook or sync); nothing
/// when the status is already known.
pub fn change_status(
    state: &Template,
    status: &str,
    reason: Option<&str>,
    category: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let reason = reason.filter(|r| !r.is_empty() && *r != "NONE").map(str::to_owned);
    let category = category.filter(|c| state.draft.as_ref().is_some_and(|d| d.category != *c)).map(str::to_owned);
    if state.draft.is_none() || (state.status == status && state.reason == reason && category.is_none()) {
        return Vec::new();
    }
    vec![Event::TemplateStatusChanged { status: status.to_owned(), reason, category, at: now }]
}

pub fn delete(state: &Template, now: DateTime<Utc>) -> Result<Vec<Event>, TemplateError> {
    if !state.exists() {
        return Err(TemplateError::NotFound);
    }
    Ok(vec![Event::TemplateDeleted { at: now }])
}

/// Why a template send is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateSendError {
    #[error("template `{name}` in `{language}` is {status}, not APPROVED")]
    NotApproved { name: String, language: String, status: String },
    #[error("{0}")]
    Parameters(String),
}

fn params_of<'a>(components: &'a [Value], kind: &str) -> Vec<&'a Value> {
    components
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(kind)))
        .flat_map(|c| c.get("parameters").and_then(Value::as_array).into_iter().flatten())
        .collect()
}

/// The text a parameter stands for in the rendered message.
fn param_text(p: &Value) -> Option<String> {
    match p.get("type").and_then(Value::as_str)? {
        "text" => p.get("text").and_then(Value::as_str).map(str::to_owned),
        "currency" => p.pointer("/currency/fallback_value").and_then(Value::as_str).map(str::to_owned),
        "date_time" => p.pointer("/date_time/fallback_value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn substitute(text: &str, values: &[String]) -> String {
    let mut out = text.to_owned();
    for (i, v) in values.iter().enumerate().rev() {
        out = out.replace(&format!("{{{{{}}}}}", i + 1), v);
    }
    out
}

/// Checks a template send (the `template` object of a Cloud API send)
/// against an approved template: every body and header placeholder has a
/// parameter, a media header has its media, each URL button with a
/// placeholder has its parameter. Answers the rendered text (header, body
/// and footer, one per line).
pub fn render_send(t: &Template, send: &Value) -> Result<String, TemplateSendError> {
    let Some(draft) = t.draft.as_ref().filter(|_| !t.deleted) else {
        return Err(TemplateSendError::Parameters("unknown template".into()));
    };
    if t.status != "APPROVED" {
        return Err(TemplateSendError::NotApproved {
            name: draft.name.clone(),
            language: draft.language.clone(),
            status: t.status.clone(),
        });
    }
    let components: Vec<Value> = send.get("components").and_then(Value::as_array).cloned().unwrap_or_default();
    let missing = |what: String| Err(TemplateSendError::Parameters(what));
    let mut lines = Vec::new();
    for c in &draft.components {
        let text = text_of(c).unwrap_or_default();
        match component_type(c).as_str() {
            "HEADER" => {
                let format = c.get("format").and_then(Value::as_str).unwrap_or("TEXT").to_uppercase();
                let given = params_of(&components, "header");
                if format == "TEXT" {
                    let need = placeholders(text).map(|p| p.len()).unwrap_or(0);
                    let values: Vec<String> = given.iter().filter_map(|p| param_text(p)).collect();
                    if values.len() < need {
                        return missing("the header needs its text parameter".into());
                    }
                    lines.push(substitute(text, &values));
                } else {
                    let media = format.to_lowercase();
                    let ok = given.iter().any(|p| {
                        p.get("type").and_then(Value::as_str) == Some(media.as_str())
                            && p.get(&media).is_some_and(|m| m.get("id").is_some() || m.get("link").is_some())
                    });
                    if !ok {
                        return missing(format!("the header needs a `{media}` parameter with an id or link"));
                    }
                }
            }
            "BODY" => {
                let need = placeholders(text).ok().and_then(|p| check_sequence(&p).ok()).unwrap_or(0);
                let given = params_of(&components, "body");
                let values: Vec<String> = given.iter().filter_map(|p| param_text(p)).collect();
                if values.len() != given.len() {
                    return missing("body parameters must be text, currency or date_time with a value".into());
                }
                if values.len() != need {
                    return missing(format!("the body takes {need} parameter(s), {} given", values.len()));
                }
                lines.push(substitute(text, &values));
            }
            "FOOTER" => lines.push(text.to_owned()),
            "BUTTONS" => {
                let buttons = c.get("buttons").and_then(Value::as_array).cloned().unwrap_or_default();
                for (i, b) in buttons.iter().enumerate() {
                    let url = b.get("url").and_then(Value::as_str).unwrap_or_default();
                    if component_type(b) == "URL" && url.contains("{{1}}") {
                        let supplied = components.iter().any(|s| {
                            component_type(s) == "BUTTON"
                                && s.get("index").and_then(|x| x.as_u64().or_else(|| x.as_str()?.parse().ok()))
                                    == Some(i as u64)
                                && s.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty())
                        });
                        if !supplied {
                            return missing(format!("button {i} needs its URL parameter"));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn draft(components: Value) -> TemplateDraft {
        TemplateDraft {
            name: "order_update".into(),
            language: "en_US".into(),
            category: "UTILITY".into(),
            components: components.as_array().cloned().unwrap(),
        }
    }

    fn rules(d: &TemplateDraft) -> Vec<String> {
        lint(d).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_good_template_passes() {
        let d = draft(json!([
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}. Thanks {{1}}!"},
            {"type": "FOOTER", "text": "Acme"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://acme.test/t/{{1}}"},
                                            {"type": "QUICK_REPLY", "text": "Stop"}]}
        ]));
        assert_eq!(lint(&d), vec![]);
    }

    #[test]
    fn each_rule_has_its_code() {
        let mut d = draft(json!([{"type": "BODY", "text": "ok"}]));
        d.name = "Order-Update".into();
        d.language = "english".into();
        d.category = "PROMO".into();
        assert_eq!(rules(&d), ["template_name_invalid", "template_language_invalid", "template_category_invalid"]);
        assert_eq!(rules(&draft(json!([{"type": "FOOTER", "text": "x"}]))), ["template_body_missing"]);
        assert_eq!(rules(&draft(json!([{"type": "BODY", "text": "x".repeat(1025)}]))), ["template_body_too_long"]);
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "Hi {{1}} {{3}}"}]))),
            ["template_placeholders_not_sequential"]
        );
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "Hi {{2}}"}]))),
            ["template_placeholders_not_sequential"]
        );
        assert_eq!(rules(&draft(json!([{"type": "BODY", "text": "Hi {{name}}"}]))), ["template_placeholder_malformed"]);
        assert_eq!(
            rules(&draft(
                json!([{"type": "HEADER", "format": "TEXT", "text": "x".repeat(61)}, {"type": "BODY", "text": "b"}])
            )),
            ["template_header_too_long"]
        );
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "b"}, {"type": "FOOTER", "text": "y".repeat(61)}]))),
            ["template_footer_too_long"]
        );
        let eleven: Vec<Value> = (0..11).map(|i| json!({"type": "QUICK_REPLY", "text": format!("b{i}")})).collect();
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "b"}, {"type": "BUTTONS", "buttons": eleven}]))),
            ["template_too_many_buttons"]
        );
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "b"}, {"type": "BODY", "text": "c"}]))),
            ["template_component_repeated"]
        );
        assert_eq!(
            rules(&draft(json!([{"type": "BODY", "text": "b"}, {"type": "CAROUSEL"}]))),
            ["template_component_unknown"]
        );
    }

    fn approved() -> Template {
        let d = draft(json!([
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} is ready."},
            {"type": "FOOTER", "text": "Acme"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://acme.test/t/{{1}}"}]}
        ]));
        let accepted = Accepted { whatsapp_id: Some("1".into()), status: "PENDING".into(), waba_id: "w".into() };
        let s = submit(&Template::default(), &d, &accepted, t(0))
            .unwrap()
            .iter()
            .fold(Template::default(), Template::evolve);
        assert_eq!(submit(&s, &d, &accepted, t(0)), Err(TemplateError::Exists));
        change_status(&s, "APPROVED", Some("NONE"), None, t(1)).iter().fold(s, Template::evolve)
    }

    #[test]
    fn sends_need_every_parameter_and_render_the_text() {
        let tpl = approved();
        let full = json!({"name": "order_update", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://acme.test/a.png"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "42"}]}
        ]});
        assert_eq!(render_send(&tpl, &full).unwrap(), "Hi Ana, order #42 is ready.\nAcme");

        let mut no_header = full.clone();
        no_header["components"].as_array_mut().unwrap().remove(0);
        assert!(matches!(render_send(&tpl, &no_header), Err(TemplateSendError::Parameters(m)) if m.contains("image")));
        let mut one_param = full.clone();
        one_param["components"][1]["parameters"].as_array_mut().unwrap().pop();
        assert!(
            matches!(render_send(&tpl, &one_param), Err(TemplateSendError::Parameters(m)) if m.contains("2 parameter"))
        );
        let mut no_button = full.clone();
        no_button["components"].as_array_mut().unwrap().pop();
        assert!(
            matches!(render_send(&tpl, &no_button), Err(TemplateSendError::Parameters(m)) if m.contains("button 0"))
        );

        let paused = change_status(&tpl, "PAUSED", Some("low quality"), None, t(2)).iter().fold(tpl, Template::evolve);
        assert_eq!(paused.reason.as_deref(), Some("low quality"));
        assert!(matches!(render_send(&paused, &full), Err(TemplateSendError::NotApproved { .. })));
        assert!(change_status(&paused, "PAUSED", Some("low quality"), None, t(3)).is_empty());
    }
}
