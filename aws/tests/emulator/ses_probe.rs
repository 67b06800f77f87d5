//! Reads the emulator's record of SES sends: moto lists every raw message it
//! accepted under `ses.RawMessage` at `GET /moto-api/data.json`.

use async_trait::async_trait;
use parley_app::mail::{parse_eml, MailError, MailProbe, SentMail};

/// The mail one sender identity sent, oldest first. Each test verifies a
/// sender address of its own, so tests running side by side do not see each
/// other's mail.
pub struct MotoSesProbe {
    pub endpoint: String,
    pub from: String,
}

#[async_trait]
impl MailProbe for MotoSesProbe {
    async fn delivered(&self) -> Result<Vec<SentMail>, MailError> {
        let unavailable = |e: reqwest::Error| MailError::Unavailable(e.to_string());
        let url = format!("{}/moto-api/data.json", self.endpoint.trim_end_matches('/'));
        let data: serde_json::Value =
            reqwest::get(url).await.map_err(unavailable)?.json().await.map_err(unavailable)?;
        let raw = data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default();
        raw.iter()
            .filter(|m| m["source"].as_str() == Some(self.from.as_str()))
            .map(|m| {
                let bytes = m["raw_data"].as_str().unwrap_or_default().as_bytes();
                parse_eml(bytes).ok_or_else(|| MailError::Unavailable(format!("not a mail: {m}")))
            })
            .collect()
    }
}
