//! Key scopes and the key ids derived from them.

use std::fmt::Write as _;

/// Whose data a key protects: a tenant and a subject within it (`"contact:<wa_id>"`,
/// `"numbers"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// The tenant that owns the data.
    pub tenant_id: String,
    /// What the data is about inside the tenant.
    pub subject: String,
}

impl KeyScope {
    /// A scope for `subject` inside `tenant_id`.
    pub fn new(tenant_id: impl Into<String>, subject: impl Into<String>) -> Self {
        Self { tenant_id: tenant_id.into(), subject: subject.into() }
    }

    /// The scope of one contact's personal data: subject `contact:<wa_id>`.
    pub fn contact(tenant_id: impl Into<String>, wa_id: &str) -> Self {
        Self::new(tenant_id, format!("contact:{wa_id}"))
    }

    /// The key id of this scope's data key of the given generation:
    /// `<tenant>/<subject>/<generation>`, for example `t1/contact:16505551234/1`.
    ///
    /// `%` and `/` inside the tenant id or subject are percent-encoded so that two different
    /// scopes can never produce the same key id.
    pub fn key_id(&self, generation: u64) -> String {
        let mut id = String::with_capacity(self.tenant_id.len() + self.subject.len() + 8);
        escape_into(&mut id, &self.tenant_id);
        id.push('/');
        escape_into(&mut id, &self.subject);
        // Writing to a String cannot fail.
        let _ = write!(id, "/{generation}");
        id
    }

    /// Splits a key id made by [`KeyScope::key_id`] back into its scope and generation.
    /// Returns `None` for anything that is not such a key id.
    pub fn parse_key_id(key_id: &str) -> Option<(KeyScope, u64)> {
        let mut parts = key_id.split('/');
        let tenant = unescape(parts.next()?)?;
        let subject = unescape(parts.next()?)?;
        let generation_text = parts.next()?;
        if parts.next().is_some() || !generation_text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let generation = generation_text.parse().ok()?;
        Some((KeyScope::new(tenant, subject), generation))
    }
}

fn escape_into(out: &mut String, part: &str) {
    for ch in part.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            other => out.push(other),
        }
    }
}

fn unescape(part: &str) -> Option<String> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        match code {
            "25" => out.push('%'),
            "2F" => out.push('/'),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_names_tenant_subject_and_generation() {
        let scope = KeyScope::contact("t1", "16505551234");
        assert_eq!(scope.key_id(1), "t1/contact:16505551234/1");
        assert_eq!(KeyScope::parse_key_id("t1/contact:16505551234/7"), Some((scope, 7)));
    }

    #[test]
    fn slashes_cannot_make_two_scopes_collide() {
        let a = KeyScope::new("a/b", "c");
        let b = KeyScope::new("a", "b/c");
        assert_ne!(a.key_id(1), b.key_id(1));
        for scope in [a, b, KeyScope::new("50%", "%2F/"), KeyScope::new("", "")] {
            let id = scope.key_id(3);
            assert_eq!(KeyScope::parse_key_id(&id), Some((scope, 3)), "{id}");
        }
    }

    #[test]
    fn malformed_key_ids_do_not_parse() {
        for bad in ["", "t1", "t1/s", "t1/s/x", "t1/s/1/2", "t1/s/-1", "t%zz/s/1", "t%2/s/1"] {
            assert_eq!(KeyScope::parse_key_id(bad), None, "{bad}");
        }
    }
}
