//! The mail port (SESv2 in AWS) and its local adapter, an outbox folder with
//! one RFC 5322 `.eml` file per mail that any mail client opens.
//!
//! Mail carries verification and reset codes, invitations, job and billing
//! notices. The sender address is the adapter's configuration, not the
//! caller's choice, so application code cannot spoof it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// What a test or an operator can observe of a mail that left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is invalid: {0}")]
    Invalid(String),
    #[error("mail transport unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one mail; returns the transport's message id.
    async fn send(&self, mail: &Mail) -> Result<String, MailError>;
}

/// Reads back what a mailer delivered: the outbox folder, or an emulator's record of SES sends.
#[async_trait]
pub trait MailProbe: Send + Sync + 'static {
    /// Every mail delivered so far, oldest first.
    async fn delivered(&self) -> Result<Vec<SentMail>, MailError>;
}

/// SES's subject limit is far larger; 998 is the RFC 5322 line limit and plenty for ours.
const MAX_SUBJECT: usize = 998;
/// Well under SES's 40 MB message limit; our mails are notices, not newsletters.
const MAX_BODY: usize = 1024 * 1024;

/// Checks what every adapter requires: one syntactically valid recipient, a
/// subject without line breaks (header injection), bounded sizes.
pub fn validate(mail: &Mail) -> Result<(), MailError> {
    let invalid = |why: String| Err(MailError::Invalid(why));
    if mail.to.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';') {
        return invalid(format!("recipient {:?} must be one plain address", mail.to));
    }
    if mail.to.parse::<lettre::Address>().is_err() {
        return invalid(format!("recipient {:?} is not an email address", mail.to));
    }
    if mail.subject.trim().is_empty() || mail.subject.chars().any(char::is_control) {
        return invalid("the subject must be one non-empty line".into());
    }
    if mail.subject.len() > MAX_SUBJECT {
        return invalid(format!("the subject is longer than {MAX_SUBJECT} bytes"));
    }
    let body = mail.text.len() + mail.html.as_ref().map_or(0, String::len);
    if mail.text.trim().is_empty() {
        return invalid("the text body is empty".into());
    }
    if body > MAX_BODY {
        return invalid(format!("the body is larger than {MAX_BODY} bytes"));
    }
    Ok(())
}

/// Writes each mail as `{dir}/{unix_millis}-{id}.eml`.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn open(dir: &Path, from: &str) -> Result<Self, MailError> {
        let from = from.parse::<Mailbox>().map_err(|e| MailError::Invalid(format!("sender {from:?}: {e}")))?;
        std::fs::create_dir_all(dir).map_err(|e| MailError::Unavailable(format!("{}: {e}", dir.display())))?;
        Ok(OutboxMailer { dir: dir.to_path_buf(), from })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn render(&self, mail: &Mail, id: &str) -> Result<Vec<u8>, MailError> {
        render_with(&self.from, mail, id)
    }
}

/// Renders `mail` from `from` as an RFC 5322 message (multipart/alternative
/// when it has HTML) with Message-ID `<{id}@parley.local>`. The outbox writes
/// these bytes; the SES adapter sends the same bytes as raw content, so a mail
/// looks the same whichever way it leaves.
pub fn render_message(from: &str, mail: &Mail, id: &str) -> Result<Vec<u8>, MailError> {
    let from = from.parse::<Mailbox>().map_err(|e| MailError::Invalid(format!("sender {from:?}: {e}")))?;
    render_with(&from, mail, id)
}

fn render_with(from: &Mailbox, mail: &Mail, id: &str) -> Result<Vec<u8>, MailError> {
    let to = mail.to.parse::<Mailbox>().map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
    let builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{id}@parley.local>")));
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone());
    let message = match &mail.html {
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        ),
        None => builder.singlepart(text),
    };
    message.map(|m| m.formatted()).map_err(|e| MailError::Invalid(e.to_string()))
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        validate(mail)?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let bytes = self.render(mail, &id)?;
        let name = format!("{}-{id}.eml", chrono::Utc::now().timestamp_millis());
        // Written under a temporary name first so a reader of the folder never sees half a mail.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let unavailable = |e: std::io::Error| MailError::Unavailable(format!("{}: {e}", self.dir.display()));
        tokio::fs::write(&tmp, bytes).await.map_err(unavailable)?;
        tokio::fs::rename(&tmp, self.dir.join(&name)).await.map_err(unavailable)?;
        Ok(id)
    }
}

/// Mail travels with CRLF line breaks; what was sent is compared with LF ones.
fn normalize_body(body: &str) -> String {
    body.replace("\r\n", "\n").trim_end_matches('\n').to_string()
}

/// Parses one `.eml` file of the outbox back into what was sent.
pub fn parse_eml(bytes: &[u8]) -> Option<SentMail> {
    let message = mail_parser::MessageParser::default().parse(bytes)?;
    let to = message.to()?.first()?.address()?.to_string();
    Some(SentMail {
        to,
        subject: message.subject()?.to_string(),
        text: normalize_body(&message.body_text(0)?),
        // A text-only mail still answers body_html with a rendering of its text; only a real HTML part counts.
        html: message
            .html_part(0)
            .filter(|part| part.is_text_html())
            .and_then(|part| part.text_contents())
            .map(normalize_body),
    })
}

#[async_trait]
impl MailProbe for OutboxMailer {
    async fn delivered(&self) -> Result<Vec<SentMail>, MailError> {
        let unavailable = |e: std::io::Error| MailError::Unavailable(format!("{}: {e}", self.dir.display()));
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(unavailable)?;
        while let Some(entry) = entries.next_entry().await.map_err(unavailable)? {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".eml") && !name.starts_with('.') {
                names.push(name);
            }
        }
        // Names start with the time in milliseconds, then a UUIDv7: sorting them sorts by time.
        names.sort();
        let mut mails = Vec::with_capacity(names.len());
        for name in names {
            let bytes = tokio::fs::read(self.dir.join(&name)).await.map_err(unavailable)?;
            let mail = parse_eml(&bytes).ok_or_else(|| MailError::Unavailable(format!("{name} is not a mail")))?;
            mails.push(mail);
        }
        Ok(mails)
    }
}

/// The one conformance suite every `Mailer` adapter passes; `make` gives a
/// mailer and a probe that sees only that mailer's mail.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use std::future::Future;
    use std::sync::Arc;

    pub async fn run_mailer_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (Arc<dyn Mailer>, Arc<dyn MailProbe>)>,
    {
        let (mailer, probe) = make().await;
        sends_text_and_html(&*mailer, &*probe).await;
        let (mailer, probe) = make().await;
        refuses_bad_mail(&*mailer, &*probe).await;
    }

    async fn sends_text_and_html(mailer: &dyn Mailer, probe: &dyn MailProbe) {
        let plain = Mail {
            to: "ana@example.com".into(),
            subject: "Your verification code".into(),
            text: "Your code is 482913.\nIt expires in 15 minutes.".into(),
            html: None,
        };
        let rich = Mail {
            to: "bo@example.org".into(),
            subject: "Invitación a Parley — équipe".into(),
            text: "Join the team: code 771204".into(),
            html: Some("<p>Join the team: code <b>771204</b></p>".into()),
        };
        let first = mailer.send(&plain).await.unwrap();
        let second = mailer.send(&rich).await.unwrap();
        assert!(!first.is_empty() && first != second, "each mail gets its own id");
        let delivered = probe.delivered().await.unwrap();
        assert_eq!(delivered.len(), 2, "{delivered:?}");
        let find = |to: &str| delivered.iter().find(|m| m.to == to).cloned().expect("delivered");
        let got = find("ana@example.com");
        assert_eq!((got.subject.as_str(), got.text.as_str()), (plain.subject.as_str(), plain.text.as_str()));
        assert_eq!(got.html, None, "a text-only mail has no HTML part");
        let got = find("bo@example.org");
        assert_eq!(got.subject, rich.subject, "non-ASCII subjects survive");
        assert_eq!(got.text, rich.text);
        assert_eq!(got.html, rich.html);
    }

    async fn refuses_bad_mail(mailer: &dyn Mailer, probe: &dyn MailProbe) {
        let good = Mail { to: "ana@example.com".into(), subject: "Hi".into(), text: "Hello".into(), html: None };
        let bad = [
            Mail { to: "not-an-address".into(), ..good.clone() },
            Mail { to: "a@example.com, b@example.com".into(), ..good.clone() },
            Mail { subject: "Hi\r\nBcc: victim@example.com".into(), ..good.clone() },
            Mail { text: " ".into(), ..good.clone() },
        ];
        for mail in bad {
            assert!(matches!(mailer.send(&mail).await, Err(MailError::Invalid(_))), "{mail:?} must be refused");
        }
        assert!(probe.delivered().await.unwrap().is_empty(), "a refused mail never leaves");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn outbox_mailer_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = AtomicU32::new(0);
        conformance::run_mailer_suite(|| {
            let outbox = dir.path().join(n.fetch_add(1, Ordering::SeqCst).to_string());
            async move {
                let mailer = Arc::new(OutboxMailer::open(&outbox, "Parley <no-reply@parley.local>").unwrap());
                (mailer.clone() as Arc<dyn Mailer>, mailer as Arc<dyn MailProbe>)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn outbox_files_are_plain_rfc5322() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = OutboxMailer::open(dir.path(), "Parley <no-reply@parley.local>").unwrap();
        let mail = Mail { to: "ana@example.com".into(), subject: "Code".into(), text: "123456".into(), html: None };
        mailer.send(&mail).await.unwrap();
        let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let raw = std::fs::read_to_string(file).unwrap();
        assert!(raw.contains("From: Parley <no-reply@parley.local>"), "{raw}");
        assert!(raw.contains("To: ana@example.com"), "{raw}");
        assert!(raw.contains("Subject: Code"), "{raw}");
    }
}
