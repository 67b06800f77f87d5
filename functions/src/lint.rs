//! `parley templates lint FILE...`: checks template files offline with the
//! same rules the API applies before it submits a template (SPEC 4.5).
//!
//! A file holds one template (`{"name", "language", "category",
//! "components"}`, the Cloud API's shape) or an array of them.

use std::path::Path;

use parley_domain::template::{lint, TemplateDraft, Violation};
use serde_json::Value;

/// The findings for one file: each template's violations, or why the file
/// could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum FileReport {
    Checked(Vec<(String, Vec<Violation>)>),
    Unreadable(String),
}

impl FileReport {
    pub fn is_clean(&self) -> bool {
        matches!(self, FileReport::Checked(t) if t.iter().all(|(_, v)| v.is_empty()))
    }
}

/// Lints the templates of one file's contents.
pub fn lint_text(text: &str) -> FileReport {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return FileReport::Unreadable(format!("not JSON: {e}")),
    };
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<TemplateDraft>(item) {
            Ok(draft) => {
                let label = format!("{}/{}", draft.name, draft.language);
                out.push((label, lint(&draft)));
            }
            Err(e) => return FileReport::Unreadable(format!("template {i}: {e}")),
        }
    }
    FileReport::Checked(out)
}

/// Lints each file and writes a report; answers whether every template passed.
pub fn lint_files(paths: &[impl AsRef<Path>], out: &mut impl std::io::Write) -> std::io::Result<bool> {
    let mut clean = true;
    for path in paths {
        let path = path.as_ref();
        let report = match std::fs::read_to_string(path) {
            Ok(text) => lint_text(&text),
            Err(e) => FileReport::Unreadable(e.to_string()),
        };
        clean &= report.is_clean();
        match report {
            FileReport::Unreadable(why) => writeln!(out, "{}: error: {why}", path.display())?,
            FileReport::Checked(templates) => {
                for (label, violations) in templates {
                    if violations.is_empty() {
                        writeln!(out, "{}: {label}: ok", path.display())?;
                    }
                    for v in violations {
                        writeln!(out, "{}: {label}: {} at {}: {}", path.display(), v.rule, v.path, v.message)?;
                    }
                }
            }
        }
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_broken_rule_and_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.json");
        std::fs::write(
            &good,
            r#"{"name": "order_update", "language": "en_US", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Order {{1}} ships"}]}"#,
        )
        .expect("write");
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"[{"name": "Bad Name", "language": "en_US", "category": "UTILITY",
                 "components": [{"type": "BODY", "text": "Hi {{2}}"}]}]"#,
        )
        .expect("write");
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{").expect("write");

        let mut out = Vec::new();
        assert!(lint_files(&[&good], &mut out).expect("io"));
        assert!(String::from_utf8_lossy(&out).contains("order_update/en_US: ok"));

        let mut out = Vec::new();
        assert!(!lint_files(&[&good, &bad, &broken], &mut out).expect("io"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("template_name_invalid at /name"), "{text}");
        assert!(text.contains("template_placeholders_not_sequential at /components/0/text"), "{text}");
        assert!(text.contains("broken.json: error: not JSON"), "{text}");
    }
}
