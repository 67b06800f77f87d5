//! Registering business numbers (SPEC 5.6) and finding them again for
//! webhooks and sends.

use std::sync::Arc;

use async_trait::async_trait;
use parley_domain::event::NumberRegistered;
use parley_domain::ids;
use parley_domain::number::{self, RegisterError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNumber {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    /// Graph API access token for this number. Stored encrypted, never read back.
    pub access_token: String,
    /// The Meta app secret that signs this number's webhooks. Stored encrypted, never read back.
    pub app_secret: String,
    /// The token Meta echoes in the webhook verification handshake.
    pub verify_token: String,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl From<RegisterError> for AppError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Invalid { field, message } => AppError::validation(field, message),
            RegisterError::AlreadyRegistered { .. } => AppError::Conflict {
                code: "number_already_registered",
                detail: "this phone number is already registered".into(),
            },
        }
    }
}

impl App {
    pub async fn register_number(&self, caller: &Caller, cmd: RegisterNumber) -> Result<NumberRegistered, AppError> {
        caller.require(Role::Admin)?;
        if cmd.verify_token.trim().is_empty() || cmd.verify_token.len() > 4096 {
            return Err(AppError::validation("verify_token", "is required (at most 4096 characters)"));
        }
        let register = number::Register {
            tenant_id: caller.tenant_id.clone(),
            phone_number_id: cmd.phone_number_id,
            display_phone_number: cmd.display_phone_number,
            waba_id: cmd.waba_id,
            access_token: cmd.access_token,
            app_secret: cmd.app_secret,
            verify_token_sha256: sha256_hex(&cmd.verify_token),
        };
        let target = Target {
            tenant_id: &caller.tenant_id,
            stream_id: ids::number_stream(&register.phone_number_id),
            wa_id: None,
        };
        let now = self.clock.now();
        let done = self
            .numbers
            .execute(&target, &Meta::new(caller.actor()), |s| number::register(s, register.clone(), now))
            .await?;
        done.state.registered.clone().ok_or_else(|| AppError::internal("registration recorded no number"))
    }

    /// A registered number with its credentials, whichever tenant owns it.
    pub async fn number(&self, phone_number_id: &str) -> Result<Option<NumberRegistered>, AppError> {
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        // A registered number stays registered: once seen, no need to ask the store again.
        let stream = ids::number_stream(phone_number_id);
        Ok(self.numbers.load_settled(&stream, |n| n.registered.is_some()).await?.state.registered.clone())
    }

    /// A number of the caller's tenant; another tenant's number is not found.
    pub async fn tenant_number(&self, tenant_id: &str, phone_number_id: &str) -> Result<NumberRegistered, AppError> {
        match self.number(phone_number_id).await? {
            Some(n) if n.tenant_id == tenant_id => Ok(n),
            _ => Err(AppError::NotFound { what: "number" }),
        }
    }

    /// The webhook verification handshake: echoes the challenge when the
    /// token belongs to a registered number.
    pub async fn verify_subscription(
        &self,
        mode: &str,
        verify_token: &str,
        challenge: &str,
    ) -> Result<String, AppError> {
        if mode != "subscribe" {
            return Err(AppError::Forbidden("hub.mode must be subscribe".into()));
        }
        let known = self.read_models.numbers_with_verify_token(&sha256_hex(verify_token)).await?;
        if known.is_empty() {
            return Err(AppError::Forbidden("the verify token matches no registered number".into()));
        }
        Ok(challenge.to_owned())
    }
}

/// Lets the built-in simulator know the credentials Meta would know.
pub struct AppNumberDirectory(pub Arc<App>);

#[async_trait]
impl parley_whatsapp::simulator::NumberDirectory for AppNumberDirectory {
    async fn lookup(&self, phone_number_id: &str) -> Option<(String, String)> {
        match self.0.number(phone_number_id).await {
            Ok(Some(n)) => Some((n.access_token, n.app_secret)),
            _ => None,
        }
    }

    async fn profile(&self, phone_number_id: &str) -> parley_whatsapp::simulator::NumberProfile {
        match self.0.number(phone_number_id).await {
            Ok(Some(n)) => parley_whatsapp::simulator::NumberProfile {
                display_phone_number: Some(n.display_phone_number),
                waba_id: Some(n.waba_id),
            },
            _ => Default::default(),
        }
    }
}
