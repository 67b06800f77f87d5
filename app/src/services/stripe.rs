//! Stripe, through its HTTP API: customers and invoices are created with
//! form-encoded POSTs and a secret key, each with an idempotency key derived
//! from Parley's own ids so that a retried run creates nothing twice; and the
//! `Stripe-Signature` header of its webhooks is verified.

use std::time::Duration;

use hmac::{Hmac, Mac};
use parley_domain::billing::InvoiceIssued;
use serde::Deserialize;
use sha2::Sha256;

use crate::error::AppError;
use crate::ops::StripeSettings;

/// How old a signed webhook may be (Stripe's own default tolerance).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: String,
    webhook_secret: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
struct StripeErrorBody {
    error: StripeErrorDetail,
}

#[derive(Debug, Deserialize)]
struct StripeErrorDetail {
    message: Option<String>,
}

impl StripeClient {
    pub fn new(settings: &StripeSettings) -> Result<StripeClient, AppError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().map_err(AppError::internal)?;
        Ok(StripeClient {
            http,
            base: settings.api_base.trim_end_matches('/').to_owned(),
            key: settings.secret_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
        })
    }

    async fn post(&self, path: &str, idempotency_key: &str, form: &[(String, String)]) -> Result<String, AppError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| AppError::Internal(format!("stripe: {e}")))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| AppError::Internal(format!("stripe: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_str::<StripeErrorBody>(&body)
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_else(|| body.chars().take(200).collect());
            return Err(AppError::Internal(format!("stripe {path}: {status}: {message}")));
        }
        let created: Created =
            serde_json::from_str(&body).map_err(|e| AppError::Internal(format!("stripe {path}: {e}")))?;
        Ok(created.id)
    }

    /// Creates the tenant's customer; returns its id (`cus_...`).
    pub async fn create_customer(&self, tenant_id: &str, email: Option<&str>) -> Result<String, AppError> {
        let mut form = vec![("name".to_owned(), tenant_id.to_owned()), ("metadata[tenant_id]".into(), tenant_id.into())];
        if let Some(email) = email {
            form.push(("email".into(), email.into()));
        }
        self.post("/v1/customers", &format!("parley-customer-{tenant_id}"), &form).await
    }

    /// Creates, fills and finalizes the invoice; returns its id (`in_...`).
    pub async fn create_invoice(&self, customer_id: &str, invoice: &InvoiceIssued, due_days: i64) -> Result<String, AppError> {
        let key = |step: &str| format!("parley-invoice-{}-{step}", invoice.invoice_id);
        let currency = invoice.currency.to_lowercase();
        let id = self
            .post(
                "/v1/invoices",
                &key("create"),
                &[
                    ("customer".into(), customer_id.into()),
                    ("currency".into(), currency.clone()),
                    ("collection_method".into(), "send_invoice".into()),
                    ("days_until_due".into(), due_days.max(0).to_string()),
                    ("auto_advance".into(), "false".into()),
                    ("metadata[parley_invoice_id]".into(), invoice.invoice_id.to_string()),
                    ("metadata[parley_number]".into(), invoice.number.clone()),
                ],
            )
            .await?;
        let vat_line = (invoice.vat != 0).then(|| {
            (format!("VAT {}.{:02} %", invoice.vat_rate_bp / 100, invoice.vat_rate_bp % 100), invoice.vat)
        });
        let items = invoice.lines.iter().filter(|l| l.amount != 0).map(|l| (l.description.clone(), l.amount));
        for (i, (description, amount)) in items.chain(vat_line).enumerate() {
            self.post(
                "/v1/invoiceitems",
                &key(&format!("item-{i}")),
                &[
                    ("customer".into(), customer_id.into()),
                    ("invoice".into(), id.clone()),
                    ("amount".into(), amount.to_string()),
                    ("currency".into(), currency.clone()),
                    ("description".into(), description),
                ],
            )
            .await?;
        }
        self.post(&format!("/v1/invoices/{id}/finalize"), &key("finalize"), &[]).await?;
        Ok(id)
    }

    /// Checks a `Stripe-Signature` header (`t=...,v1=...`) against the raw body.
    pub fn verify_signature(&self, header: &str, body: &[u8], now_unix: i64) -> bool {
        verify_signature(&self.webhook_secret, header, body, now_unix)
    }
}

/// Stripe's scheme: HMAC-SHA256 of `"{t}.{body}"` with the endpoint secret,
/// hex in one or more `v1` entries; `t` within the tolerance of now.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now_unix: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now_unix - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return false;
    }
    signatures.into_iter().any(|s| {
        let Ok(expected) = hex::decode(s) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

/// Signs a body the way Stripe does (tests and local tools).
pub fn sign(secret: &str, body: &[u8], now_unix: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(now_unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={now_unix},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_expire() {
        let header = sign("whsec_x", b"{}", 1_000);
        assert!(verify_signature("whsec_x", &header, b"{}", 1_100));
        assert!(!verify_signature("whsec_x", &header, b"{ }", 1_100), "body changed");
        assert!(!verify_signature("whsec_y", &header, b"{}", 1_100), "other secret");
        assert!(!verify_signature("whsec_x", &header, b"{}", 1_000 + SIGNATURE_TOLERANCE_SECS + 1), "too old");
        assert!(!verify_signature("whsec_x", "v1=00", b"{}", 1_000));
    }
}
