//! The contact directory (SPEC 3.2, 5.4): contacts created and edited through
//! the API, opt-outs and opt-ins by an agent, and a tenant's own keywords.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::contact::Contact;
use crate::event::{Event, OptSource};
use crate::handling::normalise_tags;
use crate::optout::Keywords;

/// At most this many custom attributes per contact.
pub const MAX_ATTRIBUTES: usize = 50;
/// At most this many characters in a contact name or a string attribute.
pub const MAX_VALUE_CHARS: usize = 1024;
/// At most this many keywords of each kind per tenant.
pub const MAX_KEYWORDS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("no such contact")]
    NotFound,
    #[error("the contact exists already")]
    Exists,
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

fn invalid(field: &'static str, message: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid { field, message: message.into() }
}

/// A WhatsApp id: 5 to 20 digits.
pub fn valid_wa_id(s: &str) -> bool {
    (5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// What may change on a contact; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// Replaces all attributes.
    pub attributes: Option<Map<String, Value>>,
}

impl ContactPatch {
    /// Checks and normalises the patch.
    pub fn validated(mut self) -> Result<Self, DirectoryError> {
        if let Some(Some(name)) = &self.name {
            let trimmed = name.trim();
            if trimmed.is_empty() || trimmed.chars().count() > MAX_VALUE_CHARS {
                return Err(invalid("name", format!("must have 1 to {MAX_VALUE_CHARS} characters")));
            }
            self.name = Some(Some(trimmed.to_owned()));
        }
        if let Some(tags) = &self.tags {
            self.tags = Some(normalise_tags(tags).map_err(|e| invalid("tags", e.to_string()))?);
        }
        if let Some(attributes) = &self.attributes {
            check_attributes(attributes)?;
        }
        Ok(self)
    }
}

fn check_attributes(attributes: &Map<String, Value>) -> Result<(), DirectoryError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid("attributes", format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    for (key, value) in attributes {
        let key_ok = (1..=64).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(invalid("attributes", format!("`{key}`: names have 1 to 64 of a-z, 0-9 and _")));
        }
        match value {
            Value::String(s) if s.chars().count() <= MAX_VALUE_CHARS => {}
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
            _ => {
                return Err(invalid(
                    "attributes",
                    format!(
                        "`{key}`: values are strings (up to {MAX_VALUE_CHARS} characters), numbers, booleans or null"
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn patch_events(state: &Contact, patch: &ContactPatch, now: DateTime<Utc>) -> Vec<Event> {
    let mut events = Vec::new();
    if let Some(name) = &patch.name {
        if *name != state.name {
            events.push(Event::ContactRenamed { name: name.clone(), at: now });
        }
    }
    let tags = patch.tags.clone().filter(|t| *t != state.tags);
    let attributes = patch.attributes.clone().filter(|a| *a != state.attributes);
    if tags.is_some() || attributes.is_some() {
        events.push(Event::ContactUpdated { tags, attributes, at: now });
    }
    events
}

/// Creates a contact through the API.
pub fn create(
    state: &Contact,
    wa_id: &str,
    patch: ContactPatch,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DirectoryError> {
    if !valid_wa_id(wa_id) {
        return Err(invalid("wa_id", "must be the contact's WhatsApp id: 5 to 20 digits"));
    }
    if state.exists {
        return Err(DirectoryError::Exists);
    }
    let patch = patch.validated()?;
    let name = patch.name.clone().flatten();
    let created =
        Contact::default().evolve(&Event::ContactCreated { wa_id: wa_id.to_owned(), name: name.clone(), at: now });
    let mut events = vec![Event::ContactCreated { wa_id: wa_id.to_owned(), name, at: now }];
    events.extend(patch_events(&created, &ContactPatch { name: None, ..patch }, now));
    Ok(events)
}

/// Changes an existing contact; nothing when the patch changes nothing.
pub fn update(state: &Contact, patch: ContactPatch, now: DateTime<Utc>) -> Result<Vec<Event>, DirectoryError> {
    if !state.exists {
        return Err(DirectoryError::NotFound);
    }
    Ok(patch_events(state, &patch.validated()?, now))
}

/// Creates the contact when it is new, otherwise applies the patch: one row
/// of a CSV import.
pub fn upsert(
    state: &Contact,
    wa_id: &str,
    patch: ContactPatch,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DirectoryError> {
    if state.exists {
        update(state, patch, now)
    } else {
        create(state, wa_id, patch, now)
    }
}

/// GDPR erasure of an existing contact, asked for by `by`. Erasing an
/// erased contact again records nothing (and lets a cleanup that was cut
/// short run again).
pub fn erase(state: &Contact, by: &str, now: DateTime<Utc>) -> Result<Vec<Event>, DirectoryError> {
    if !state.exists {
        return match state.erased_at {
            Some(_) => Ok(Vec::new()),
            None => Err(DirectoryError::NotFound),
        };
    }
    Ok(vec![Event::ContactErased { at: now, by: by.to_owned() }])
}

/// An agent or system opts the contact out (`source` says which).
pub fn opt_out(state: &Contact, source: OptSource, now: DateTime<Utc>) -> Result<Vec<Event>, DirectoryError> {
    if !state.exists {
        return Err(DirectoryError::NotFound);
    }
    if state.is_opted_out() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ContactOptedOut { at: now, source, keyword: None, message_id: None }])
}

/// An agent or system opts the contact back in.
pub fn opt_in(state: &Contact, source: OptSource, now: DateTime<Utc>) -> Result<Vec<Event>, DirectoryError> {
    if !state.exists {
        return Err(DirectoryError::NotFound);
    }
    if !state.is_opted_out() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ContactOptedIn { at: now, source, keyword: None, message_id: None }])
}

/// A tenant's keyword settings: its own keywords, used on top of the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeywordSettings {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

impl KeywordSettings {
    pub fn evolve(mut self, event: &Event) -> Self {
        if let Event::OptKeywordsConfigured { opt_out, opt_in, .. } = event {
            self.opt_out = opt_out.clone();
            self.opt_in = opt_in.clone();
        }
        self
    }

    /// The keywords in force: `base` (the defaults) plus the tenant's own.
    pub fn effective(&self, base: &Keywords) -> Keywords {
        let mut k = base.clone();
        for (list, extra) in [(&mut k.opt_out, &self.opt_out), (&mut k.opt_in, &self.opt_in)] {
            for word in extra {
                if !list.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    list.push(word.clone());
                }
            }
        }
        k
    }
}

fn clean_keywords(field: &'static str, words: &[String]) -> Result<Vec<String>, DirectoryError> {
    if words.len() > MAX_KEYWORDS {
        return Err(invalid(field, format!("at most {MAX_KEYWORDS} keywords")));
    }
    let mut out: Vec<String> = Vec::new();
    for w in words {
        let w = w.trim().to_uppercase();
        if w.is_empty() || w.chars().count() > 32 || w.chars().any(|c| c.is_control()) {
            return Err(invalid(field, "each keyword has 1 to 32 characters"));
        }
        if !out.contains(&w) {
            out.push(w);
        }
    }
    Ok(out)
}

/// Sets the tenant's own keywords. A word may not both stop and resume.
pub fn configure_keywords(
    state: &KeywordSettings,
    opt_out: &[String],
    opt_in: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DirectoryError> {
    let opt_out = clean_keywords("opt_out", opt_out)?;
    let opt_in = clean_keywords("opt_in", opt_in)?;
    let defaults = Keywords::default();
    let stops = |w: &String| opt_out.contains(w) || defaults.opt_out.contains(w);
    let resumes = |w: &String| opt_in.contains(w) || defaults.opt_in.contains(w);
    if let Some(both) = opt_out.iter().chain(&opt_in).find(|w| stops(w) && resumes(w)) {
        return Err(invalid("opt_in", format!("`{both}` cannot both opt out and opt in")));
    }
    if opt_out == state.opt_out && opt_in == state.opt_in {
        return Ok(Vec::new());
    }
    Ok(vec![Event::OptKeywordsConfigured { opt_out, opt_in, at: now }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn fold(events: &[Event]) -> Contact {
        Contact::fold(events)
    }

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn create_validates_and_refuses_a_second_time() {
        let patch = ContactPatch {
            name: Some(Some(" Ana ".into())),
            tags: Some(vec!["VIP".into()]),
            attributes: Some(attrs(json!({"city": "Lisbon"}))),
        };
        let ev = create(&Contact::default(), "351912345678", patch.clone(), t(0)).unwrap();
        let c = fold(&ev);
        assert_eq!(c.name.as_deref(), Some("Ana"));
        assert_eq!(c.tags, vec!["vip"]);
        assert_eq!(c.attributes["city"], "Lisbon");
        assert_eq!(create(&c, "351912345678", patch, t(1)), Err(DirectoryError::Exists));
        assert!(matches!(
            create(&Contact::default(), "12ab", ContactPatch::default(), t(0)),
            Err(DirectoryError::Invalid { field: "wa_id", .. })
        ));
        let bad = ContactPatch { attributes: Some(attrs(json!({"Bad Key": 1}))), ..Default::default() };
        assert!(matches!(
            create(&Contact::default(), "351912345678", bad, t(0)),
            Err(DirectoryError::Invalid { field: "attributes", .. })
        ));
        let nested = ContactPatch { attributes: Some(attrs(json!({"k": {"x": 1}}))), ..Default::default() };
        assert!(create(&Contact::default(), "351912345678", nested, t(0)).is_err());
    }

    #[test]
    fn erasure_forgets_the_contact_and_a_new_one_can_start() {
        let patch =
            ContactPatch { name: Some(Some("Ana".into())), tags: Some(vec!["vip".into()]), ..Default::default() };
        let mut events = create(&Contact::default(), "351912345678", patch, t(0)).unwrap();
        events.extend(opt_out(&fold(&events), OptSource::Api, t(1)).unwrap());
        let erased = erase(&fold(&events), "admin-1", t(2)).unwrap();
        assert_eq!(erased, vec![Event::ContactErased { at: t(2), by: "admin-1".into() }]);
        events.extend(erased);
        let gone = fold(&events);
        let mut expected = Contact::default();
        expected.erased_at = Some(t(2));
        assert_eq!(gone, expected, "nothing of the contact remains");
        assert_eq!(erase(&gone, "admin-1", t(3)), Ok(vec![]), "erased once; asking again records nothing");
        assert_eq!(erase(&Contact::default(), "admin-1", t(3)), Err(DirectoryError::NotFound));
        events.extend(create(&gone, "351912345678", ContactPatch::default(), t(4)).unwrap());
        assert!(fold(&events).exists, "the same number may become a contact again");
    }

    #[test]
    fn update_changes_only_what_differs() {
        let c = fold(&create(&Contact::default(), "351912345678", ContactPatch::default(), t(0)).unwrap());
        assert_eq!(update(&Contact::default(), ContactPatch::default(), t(1)), Err(DirectoryError::NotFound));
        assert!(update(&c, ContactPatch { tags: Some(vec![]), ..Default::default() }, t(1)).unwrap().is_empty());
        let ev = update(&c, ContactPatch { name: Some(Some("Rui".into())), ..Default::default() }, t(1)).unwrap();
        assert!(matches!(&ev[..], [Event::ContactRenamed { .. }]));
    }

    #[test]
    fn api_opt_out_and_in_are_idempotent() {
        let c = fold(&create(&Contact::default(), "351912345678", ContactPatch::default(), t(0)).unwrap());
        let ev = opt_out(&c, OptSource::Api, t(1)).unwrap();
        let c = ev.iter().fold(c, Contact::evolve);
        assert!(c.is_opted_out());
        assert!(opt_out(&c, OptSource::Api, t(2)).unwrap().is_empty());
        let c = opt_in(&c, OptSource::Api, t(3)).unwrap().iter().fold(c, Contact::evolve);
        assert!(!c.is_opted_out());
        assert_eq!(opt_in(&Contact::default(), OptSource::Api, t(0)), Err(DirectoryError::NotFound));
    }

    #[test]
    fn tenant_keywords_add_to_the_defaults() {
        let s = KeywordSettings::default();
        let ev = configure_keywords(&s, &["parar".into(), "Sair".into()], &["voltar".into()], t(0)).unwrap();
        let s = ev.iter().fold(s, KeywordSettings::evolve);
        let k = s.effective(&Keywords::default());
        assert!(k.classify("PARAR").is_some() && k.classify("sair").is_some() && k.classify("stop").is_some());
        assert_eq!(k.classify("voltar"), Some(crate::optout::KeywordAction::OptIn("VOLTAR".into())));
        assert!(configure_keywords(&s, &["PARAR".into(), "SAIR".into()], &["VOLTAR".into()], t(1)).unwrap().is_empty());
        assert!(configure_keywords(&s, &["START".into()], &[], t(1)).is_err(), "START resumes already");
        assert!(configure_keywords(&s, &["".into()], &[], t(1)).is_err());
    }
}
