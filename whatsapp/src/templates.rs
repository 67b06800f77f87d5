//! Template management on the Graph API: `POST /{version}/{waba_id}/message_templates`
//! submits a template for review, `GET` lists a business account's templates
//! with their review status, `DELETE ?name=` removes every language of one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What template calls need to act for one WhatsApp Business Account.
#[derive(Clone, PartialEq, Eq)]
pub struct WabaCredentials {
    pub waba_id: String,
    pub access_token: String,
}

impl fmt::Debug for WabaCredentials {
    // The token is a secret: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WabaCredentials").field("waba_id", &self.waba_id).field("access_token", &"<redacted>").finish()
    }
}

/// The body of a template submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateSubmission {
    pub name: String,
    pub language: String,
    pub category: String,
    pub components: Vec<Value>,
}

/// WhatsApp's answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTemplate {
    pub id: String,
    /// Usually PENDING; some templates are APPROVED at once.
    pub status: String,
    pub category: Option<String>,
}

/// One template as WhatsApp lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteTemplate {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    #[serde(default)]
    pub components: Vec<Value>,
    /// Why it was rejected; `NONE` otherwise.
    #[serde(default)]
    pub rejected_reason: Option<String>,
}

/// One page of `GET /{waba_id}/message_templates`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TemplatePage {
    pub data: Vec<RemoteTemplate>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub next: Option<String>,
}
