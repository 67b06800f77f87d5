//! What message search sees of a message (SPEC 5.2): the words of its
//! readable text, folded so that a query matches however it was typed.
//!
//! A word is a run of letters and digits. Words are lower-cased and their
//! accents dropped ("Café" and "cafe" are one word), and one-character words
//! are left out. The index stores blinded words only; the folding here is the
//! one rule both sides of a search agree on, so indexing and querying must
//! both go through [`words`].

use serde_json::Value;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longer words are cut to this many characters (a pasted link or token
/// still matches on its first part).
pub const MAX_WORD_CHARS: usize = 40;
/// Distinct words indexed per message: a 4,096-character text rarely has
/// more, and the cap bounds the index writes of one message.
pub const MAX_WORDS_PER_MESSAGE: usize = 300;
/// Words in one query: each one narrows the result.
pub const MAX_QUERY_WORDS: usize = 8;
/// Characters in one query.
pub const MAX_QUERY_CHARS: usize = 200;

/// Why a query cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("must hold at least one word of two or more letters or digits")]
    NoWords,
    #[error("must be at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("must have at most {MAX_QUERY_WORDS} words")]
    TooManyWords,
}

/// The distinct folded words of `text`, in order of first appearance, at
/// most `MAX_WORDS_PER_MESSAGE`.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let folded: String = text.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    for word in folded.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().nth(1).is_none() {
            continue;
        }
        let word: String = word.chars().take(MAX_WORD_CHARS).collect();
        if seen.insert(word.clone()) {
            out.push(word);
            if out.len() == MAX_WORDS_PER_MESSAGE {
                break;
            }
        }
    }
    out
}

/// The words a query asks for: every one must be in a message it finds.
pub fn query_words(query: &str) -> Result<Vec<String>, QueryError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let words = words(query);
    match words.len() {
        0 => Err(QueryError::NoWords),
        n if n > MAX_QUERY_WORDS => Err(QueryError::TooManyWords),
        _ => Ok(words),
    }
}

/// Orders a query's words by how rare they likely are, rarest first: an
/// index may read the first word's entries and check the others against
/// them. Words with digits (order numbers, codes) are usually rarer than
/// any plain word; among the others, long words are rarer than short ones.
pub fn likely_rarest_first(words: &mut [String]) {
    words.sort_by_key(|w| std::cmp::Reverse((w.chars().any(char::is_numeric), w.chars().count())));
}

/// The readable texts of a message's content, for its type: what a person
/// typed or reads (bodies, captions, file names, titles of buttons and list
/// rows, place names, shared contacts' names). Identifiers, links and
/// reactions are not searched; a template's text arrives once rendered.
pub fn message_texts(kind: &str, content: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    let mut take = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            texts.push(s.to_owned());
        }
    };
    match kind {
        "text" => take(content.get("body")),
        "image" | "video" | "document" => {
            take(content.get("caption"));
            take(content.get("filename"));
        }
        "button" => take(content.get("text")),
        "location" => {
            take(content.get("name"));
            take(content.get("address"));
        }
        "contacts" => {
            for contact in content.as_array().into_iter().flatten() {
                take(contact.pointer("/name/formatted_name"));
                take(contact.pointer("/org/company"));
            }
        }
        "interactive" => {
            for pointer in [
                "/header/text",
                "/body/text",
                "/footer/text",
                "/button_reply/title",
                "/list_reply/title",
                "/list_reply/description",
                "/nfm_reply/body",
                "/action/button",
            ] {
                take(content.pointer(pointer));
            }
            for button in content.pointer("/action/buttons").and_then(Value::as_array).into_iter().flatten() {
                take(button.pointer("/reply/title"));
            }
            for section in content.pointer("/action/sections").and_then(Value::as_array).into_iter().flatten() {
                take(section.get("title"));
                for row in section.get("rows").and_then(Value::as_array).into_iter().flatten() {
                    take(row.get("title"));
                    take(row.get("description"));
                }
            }
        }
        _ => {}
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn folds_case_and_accents_and_drops_single_characters() {
        assert_eq!(words("Café au LAIT, s'il vous plaît! #42 a"), ["cafe", "au", "lait", "il", "vous", "plait", "42"]);
        assert_eq!(words("Straße ÅNGSTRÖM"), ["straße", "angstrom"]);
        assert_eq!(words("order-1234/ref:AB"), ["order", "1234", "ref", "ab"]);
        assert!(words(" ,.! 🙂 x ").is_empty());
    }

    #[test]
    fn repeats_count_once_and_the_cap_holds() {
        assert_eq!(words("yes Yes YES no"), ["yes", "no"]);
        let many: String = (0..1000).map(|i| format!("w{i} ")).collect();
        assert_eq!(words(&many).len(), MAX_WORDS_PER_MESSAGE);
        assert_eq!(words(&"x".repeat(100))[0].chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn queries_need_words_and_have_limits() {
        assert_eq!(query_words("Refund  order"), Ok(vec!["refund".to_string(), "order".to_string()]));
        assert_eq!(query_words("?! a"), Err(QueryError::NoWords));
        assert_eq!(query_words(&"ab ".repeat(70)), Err(QueryError::TooLong));
        assert_eq!(query_words("a1 b2 c3 d4 e5 f6 g7 h8 i9"), Err(QueryError::TooManyWords));
    }

    #[test]
    fn digits_then_long_words_lead_a_query() {
        let mut words = ["the", "delivery", "4711", "late", "ab12"].map(String::from).to_vec();
        likely_rarest_first(&mut words);
        assert_eq!(words, ["4711", "ab12", "delivery", "late", "the"]);
    }

    #[test]
    fn texts_by_message_type() {
        assert_eq!(message_texts("text", &json!({"body": "hello"})), ["hello"]);
        assert_eq!(
            message_texts("document", &json!({"id": "9", "caption": "your invoice", "filename": "inv-7.pdf"})),
            ["your invoice", "inv-7.pdf"]
        );
        let list = json!({"type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots",
            "sections": [{"title": "Monday", "rows": [{"id": "1", "title": "9:00", "description": "morning"}]}]}});
        assert_eq!(message_texts("interactive", &list), ["Pick a slot", "Slots", "Monday", "9:00", "morning"]);
        let reply = json!({"type": "button_reply", "button_reply": {"id": "y", "title": "Yes please"}});
        assert_eq!(message_texts("interactive", &reply), ["Yes please"]);
        let contacts = json!([{"name": {"formatted_name": "Ana Lima"}, "org": {"company": "Acme"}}]);
        assert_eq!(message_texts("contacts", &contacts), ["Ana Lima", "Acme"]);
        assert!(message_texts("reaction", &json!({"emoji": "👍"})).is_empty());
        assert!(message_texts("image", &json!({"id": "5"})).is_empty());
    }

    proptest! {
        /// Whatever a message says, each of its words, typed back as a
        /// query, asks for exactly that word: folding is idempotent.
        #[test]
        fn every_word_of_a_text_finds_itself(text in "\\PC{0,200}") {
            for word in words(&text) {
                prop_assert_eq!(query_words(&word), Ok(vec![word.clone()]));
            }
        }

        /// Latin words match whatever their case and accents.
        #[test]
        fn case_and_accents_do_not_matter(word in "[a-z]{2,20}") {
            let accented: String = word.chars().map(|c| match c { 'a' => 'á', 'e' => 'È', 'o' => 'ö', c => c }).collect();
            prop_assert_eq!(words(&accented.to_uppercase()), vec![word]);
        }
    }
}
