//! Registering business numbers (SPEC 5.6) and finding them again for
//! webhooks and sends.

use std::sync::Arc;

use async_trait::async_trait;
use parley_domain::event::NumberRegistered;
use parley_domain::ids;
use parley_domain::number::{self, Number, RegisterError, SettingsError};
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

/// `PATCH /v1/numbers/{id}`: fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNumber {
    /// Messages per second the number may send, 1 to 1000.
    pub throughput_per_second: Option<u32>,
    /// Another number of the tenant that sends this number's queued messages
    /// while it is flagged, restricted or disabled; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub alternate_number_id: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl From<SettingsError> for AppError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid { field, message } => AppError::validation(field, message),
            SettingsError::UnknownNumber => AppError::NotFound { what: "number" },
        }
    }
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

/// How long a registration waits for the numbers read model to list the
/// number before it answers.
const REGISTRATION_VISIBLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

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
        let registered =
            done.state.registered.clone().ok_or_else(|| AppError::internal("registration recorded no number"))?;
        self.await_listed(&caller.tenant_id, &registered.phone_number_id).await?;
        Ok(registered)
    }

    /// Waits (a bounded time) until the numbers read model lists the number,
    /// so that what the caller does next (creating templates, which find the
    /// business account there) sees it. Projections follow the log within
    /// milliseconds locally and within a second or so on AWS; past the bound
    /// the registration still stands and the caller is answered anyway.
    async fn await_listed(&self, tenant_id: &str, phone_number_id: &str) -> Result<(), AppError> {
        let deadline = tokio::time::Instant::now() + REGISTRATION_VISIBLE_WITHIN;
        loop {
            if self.read_models.numbers(tenant_id).await?.iter().any(|n| n.phone_number_id == phone_number_id) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(tenant_id, phone_number_id, "registered number not yet in the numbers read model");
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
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

    /// The number's current state (standing, settings), read from the store:
    /// unlike its registration, these change.
    pub async fn number_state(&self, phone_number_id: &str) -> Result<Arc<Number>, AppError> {
        Ok(self.numbers.load(&ids::number_stream(phone_number_id)).await?.state)
    }

    /// Changes a number's throughput or alternate number.
    pub async fn update_number(
        &self,
        caller: &Caller,
        phone_number_id: &str,
        cmd: UpdateNumber,
    ) -> Result<Arc<Number>, AppError> {
        caller.require(Role::Admin)?;
        self.tenant_number(&caller.tenant_id, phone_number_id).await?;
        let change = number::ChangeSettings {
            throughput_per_second: cmd.throughput_per_second,
            alternate_number_id: cmd.alternate_number_id.clone(),
        };
        let alternate_owner = match &cmd.alternate_number_id {
            Some(Some(id)) => self.number(id).await?.map(|n| n.tenant_id),
            _ => None,
        };
        let target =
            Target { tenant_id: &caller.tenant_id, stream_id: ids::number_stream(phone_number_id), wa_id: None };
        let now = self.clock.now();
        let actor = caller.actor();
        let done = self
            .numbers
            .execute(&target, &Meta::new(actor.clone()), |s| {
                number::change_settings(s, &caller.tenant_id, &change, alternate_owner.as_deref(), &actor, now)
            })
            .await?;
        Ok(done.state)
    }

    /// Records a quality update of a registered number; whether it changed anything.
    pub(crate) async fn record_number_quality(
        &self,
        phone_number_id: &str,
        report: &number::QualityReport,
    ) -> Result<bool, AppError> {
        let Some(registered) = self.number(phone_number_id).await? else { return Ok(false) };
        let target =
            Target { tenant_id: &registered.tenant_id, stream_id: ids::number_stream(phone_number_id), wa_id: None };
        let done = self
            .numbers
            .execute(&target, &Meta::new("whatsapp"), |s| Ok::<_, AppError>(number::record_quality(s, report)))
            .await?;
        Ok(!done.events.is_empty())
    }

    /// Records a change of a registered number's standing; whether it changed anything.
    pub(crate) async fn record_number_status(
        &self,
        phone_number_id: &str,
        status: &str,
        reason: &str,
        detail: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, AppError> {
        let Some(registered) = self.number(phone_number_id).await? else { return Ok(false) };
        let target =
            Target { tenant_id: &registered.tenant_id, stream_id: ids::number_stream(phone_number_id), wa_id: None };
        let done = self
            .numbers
            .execute(&target, &Meta::new("whatsapp"), |s| {
                Ok::<_, AppError>(number::record_status(s, status, reason, detail.clone(), at))
            })
            .await?;
        Ok(!done.events.is_empty())
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
