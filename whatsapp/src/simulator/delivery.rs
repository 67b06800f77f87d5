//! Posting signed webhooks to Parley the way Meta does: one JSON body, an
//! `X-Hub-Signature-256` header, and retries with backoff while the receiver
//! is down or answers with an error.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;

use crate::signature::{sign, SIGNATURE_HEADER};

/// How hard delivery tries before giving up on one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub first_delay: Duration,
    /// Limit on one attempt.
    pub timeout: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        // Meta retries for days; a local runtime that is restarting needs
        // seconds, and an abandoned one should not keep the simulator busy.
        RetrySchedule { attempts: 5, first_delay: Duration::from_millis(200), timeout: Duration::from_secs(10) }
    }
}

/// Posts webhooks to one URL.
#[derive(Debug)]
pub struct WebhookSender {
    url: String,
    schedule: RetrySchedule,
    // Kept as a result so that a failure to set up HTTP (no TLS backend)
    // shows up as failed deliveries, not as a panic at start-up.
    http: Result<reqwest::Client, String>,
}

impl WebhookSender {
    /// A sender to `url`.
    pub fn new(url: String, schedule: RetrySchedule) -> Self {
        let http = reqwest::Client::builder().timeout(schedule.timeout).build().map_err(|error| error.to_string());
        WebhookSender { url, schedule, http }
    }

    /// Signs `body` with `app_secret` and posts it until the receiver answers
    /// 2xx or the attempts run out. Returns whether it was delivered.
    pub async fn deliver(&self, app_secret: &str, body: Bytes) -> bool {
        let http = match &self.http {
            Ok(http) => http,
            Err(error) => {
                tracing::warn!(%error, "webhook not delivered: no HTTP client");
                return false;
            }
        };
        let signature = sign(app_secret.as_bytes(), &body);
        let mut delay = self.schedule.first_delay;
        for attempt in 1..=self.schedule.attempts {
            let outcome = http
                .post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            match outcome {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => tracing::debug!(
                    attempt,
                    status = response.status().as_u16(),
                    url = %self.url,
                    "webhook refused"
                ),
                Err(error) => tracing::debug!(attempt, %error, url = %self.url, "webhook not delivered"),
            }
            if attempt < self.schedule.attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        tracing::warn!(
            url = %self.url,
            attempts = self.schedule.attempts,
            "giving up on a webhook"
        );
        false
    }
}
