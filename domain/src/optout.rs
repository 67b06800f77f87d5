//! Opt-out and opt-in keywords (SPEC 4.2).

use serde::{Deserialize, Serialize};

/// What an inbound text asks for, if it is a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeywordAction {
    OptOut(String),
    OptIn(String),
}

/// A tenant's keyword lists. Matching ignores case, surrounding whitespace and
/// trailing punctuation, and needs the whole message to be the keyword: "stop
/// sending me the invoice" is a sentence, not an opt-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords { opt_out: vec!["STOP".into(), "UNSUBSCRIBE".into(), "CANCEL".into()], opt_in: vec!["START".into()] }
    }
}

impl Keywords {
    pub fn classify(&self, text: &str) -> Option<KeywordAction> {
        let normalized = normalize(text);
        if normalized.is_empty() {
            return None;
        }
        let matches = |list: &[String]| list.iter().find(|k| normalize(k) == normalized).cloned();
        if let Some(k) = matches(&self.opt_out) {
            return Some(KeywordAction::OptOut(k));
        }
        matches(&self.opt_in).map(KeywordAction::OptIn)
    }
}

fn normalize(text: &str) -> String {
    text.trim().trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace()).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_messages_only() {
        let k = Keywords::default();
        assert_eq!(k.classify(" stop "), Some(KeywordAction::OptOut("STOP".into())));
        assert_eq!(k.classify("Unsubscribe!"), Some(KeywordAction::OptOut("UNSUBSCRIBE".into())));
        assert_eq!(k.classify("start"), Some(KeywordAction::OptIn("START".into())));
        assert_eq!(k.classify("stop sending me the invoice"), None);
        assert_eq!(k.classify(""), None);
    }

    #[test]
    fn tenant_keywords_extend_the_lists() {
        let mut k = Keywords::default();
        k.opt_out.push("PARAR".into());
        k.opt_out.push("SAIR".into());
        assert_eq!(k.classify("parar"), Some(KeywordAction::OptOut("PARAR".into())));
        assert_eq!(k.classify("Sair."), Some(KeywordAction::OptOut("SAIR".into())));
    }
}
