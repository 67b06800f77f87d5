//! Mail through Amazon SES (v2 API).
//!
//! [`SesMailer`] sends each mail as raw content: the same RFC 5322 message the
//! local outbox writes (`parley_app::mail::render_message`), multipart/alternative
//! when there is HTML. SES adds its own Message-ID and DKIM signature; the
//! sender is the adapter's configured, verified identity.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;
use parley_app::mail::{render_message, validate, Mail, MailError, Mailer};

/// Error codes meaning this mail (or the sender's setup) is refused; sending
/// it again unchanged cannot succeed.
const REFUSED: &[&str] =
    &["MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException", "NotFoundException"];

/// A [`Mailer`] on SESv2 `SendEmail`.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// Sends as `from` (`Name <address>` or a plain address), which SES must
    /// have verified.
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        SesMailer { client, from: from.into(), configuration_set: None }
    }

    /// Sends through a configuration set (event destinations for bounces and complaints).
    pub fn with_configuration_set(mut self, name: impl Into<String>) -> Self {
        self.configuration_set = Some(name.into());
        self
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        validate(mail)?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let raw = render_message(&self.from, mail, &id)?;
        let message =
            RawMessage::builder().data(Blob::new(raw)).build().map_err(|e| MailError::Invalid(e.to_string()))?;
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().raw(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(service) if service.err().code().is_some_and(|c| REFUSED.contains(&c)) => {
                    MailError::Invalid(DisplayErrorContext(&e).to_string())
                }
                _ => MailError::Unavailable(DisplayErrorContext(&e).to_string()),
            })?;
        out.message_id.ok_or_else(|| MailError::Unavailable("SES returned no message id".into()))
    }
}
