//! Business numbers (SPEC 3.1, 5.6): a tenant's WhatsApp numbers and their
//! credentials. A number belongs to exactly one tenant.

use chrono::{DateTime, Utc};

use crate::event::{Event, NumberRegistered};

/// Default messages per second a number may send (Cloud API default).
pub const DEFAULT_THROUGHPUT: u32 = 80;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Number {
    pub registered: Option<NumberRegistered>,
}

impl Number {
    pub fn evolve(mut self, event: &Event) -> Self {
        if let Event::NumberRegistered(e) = event {
            self.registered = Some(e.clone());
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Number::default(), Number::evolve)
    }

    pub fn tenant_id(&self) -> Option<&str> {
        self.registered.as_ref().map(|r| r.tenant_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    /// SHA-256 (hex) of the webhook verify token: Parley only ever compares it.
    pub verify_token_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: &'static str },
    /// The number is registered already (by this tenant or another one).
    #[error("this phone number is already registered")]
    AlreadyRegistered { same_tenant: bool },
}

pub fn register(state: &Number, cmd: Register, now: DateTime<Utc>) -> Result<Vec<Event>, RegisterError> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&cmd.phone_number_id) {
        return Err(RegisterError::Invalid { field: "phone_number_id", message: "must be digits" });
    }
    if !digits(cmd.display_phone_number.trim_start_matches('+')) {
        return Err(RegisterError::Invalid {
            field: "display_phone_number",
            message: "must be a phone number in digits",
        });
    }
    if !digits(&cmd.waba_id) {
        return Err(RegisterError::Invalid { field: "waba_id", message: "must be digits" });
    }
    for (field, value) in [("access_token", &cmd.access_token), ("app_secret", &cmd.app_secret)] {
        if value.trim().is_empty() || value.len() > 4096 {
            return Err(RegisterError::Invalid { field, message: "is required (at most 4096 characters)" });
        }
    }
    if cmd.verify_token_sha256.len() != 64 || !cmd.verify_token_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegisterError::Invalid { field: "verify_token", message: "is required" });
    }
    if let Some(existing) = &state.registered {
        return Err(RegisterError::AlreadyRegistered { same_tenant: existing.tenant_id == cmd.tenant_id });
    }
    Ok(vec![Event::NumberRegistered(NumberRegistered {
        tenant_id: cmd.tenant_id,
        phone_number_id: cmd.phone_number_id,
        display_phone_number: cmd.display_phone_number,
        waba_id: cmd.waba_id,
        access_token: cmd.access_token,
        app_secret: cmd.app_secret,
        verify_token_sha256: cmd.verify_token_sha256,
        throughput_per_second: DEFAULT_THROUGHPUT,
        at: now,
    })])
}
