//! Webhook fields other than messages and statuses: template review
//! (`message_template_status_update`), marketing preferences
//! (`user_preferences`) and the health of business numbers
//! (`phone_number_quality_update`, `account_update`).

use std::collections::HashMap;

use parley_domain::event::NumberRegistered;
use parley_whatsapp::webhook::{AccountUpdate, NumberQualityUpdate, TemplateStatusUpdate, UserPreference};
use parley_whatsapp::WebhookItem;
use serde_json::Value;

use crate::app::App;
use crate::error::AppError;

impl App {
    /// For items that name only a business account: the first registered
    /// number of each such account, by account id.
    pub(crate) async fn account_numbers(
        &self,
        items: &[WebhookItem],
    ) -> Result<HashMap<String, NumberRegistered>, AppError> {
        let mut out = HashMap::new();
        for item in items {
            if let WebhookItem::Other { phone_number_id: None, waba_id, .. } = item {
                if out.contains_key(waba_id) {
                    continue;
                }
                let Some(first) = self.read_models.numbers_in_waba(waba_id).await?.into_iter().next() else {
                    continue;
                };
                if let Some(n) = self.number(&first.phone_number_id).await? {
                    out.insert(waba_id.clone(), n);
                }
            }
        }
        Ok(out)
    }

    /// Applies one non-message field; answers whether it changed anything
    /// Parley keeps. Unknown fields are acknowledged and ignored.
    pub(crate) async fn apply_field(
        &self,
        number: &NumberRegistered,
        field: &str,
        value: &Value,
    ) -> Result<bool, AppError> {
        let tenant = number.tenant_id.as_str();
        match field {
            "message_template_status_update" => match TemplateStatusUpdate::from_value(value) {
                Ok(update) => self.apply_template_status(tenant, &update).await,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable template status update ignored");
                    Ok(false)
                }
            },
            "user_preferences" => {
                let Ok(preferences) = UserPreference::list_from_value(value) else {
                    tracing::warn!("unreadable user_preferences ignored");
                    return Ok(false);
                };
                let mut changed = false;
                for p in preferences.iter().filter(|p| p.category == "marketing_messages") {
                    let stopped = match p.value.as_str() {
                        "stop" => true,
                        "resume" => false,
                        _ => continue,
                    };
                    changed |= self.record_marketing_preference(tenant, &p.wa_id, stopped, p.timestamp).await?;
                }
                Ok(changed)
            }
            "phone_number_quality_update" => {
                let Ok(update) = NumberQualityUpdate::from_value(value) else {
                    tracing::warn!("unreadable phone_number_quality_update ignored");
                    return Ok(false);
                };
                let report = parley_domain::number::QualityReport {
                    event: update.event.clone(),
                    quality_rating: value.get("quality_rating").and_then(Value::as_str).map(str::to_owned),
                    current_limit: update.current_limit.clone(),
                    at: self.clock.now(),
                };
                let mut changed = false;
                for target in self.account_numbers_named(number, Some(&update.display_phone_number)).await? {
                    changed |= self.record_number_quality(&target, &report).await?;
                }
                Ok(changed)
            }
            "account_update" => {
                let Ok(update) = AccountUpdate::from_value(value) else {
                    tracing::warn!("unreadable account_update ignored");
                    return Ok(false);
                };
                let Some((status, detail)) = update.standing() else { return Ok(false) };
                let reason = format!("account_update:{}", update.event);
                let mut changed = false;
                for target in self.account_numbers_named(number, update.phone_number.as_deref()).await? {
                    changed |=
                        self.record_number_status(&target, status, &reason, detail.clone(), self.clock.now()).await?;
                }
                Ok(changed)
            }
            _ => Ok(false),
        }
    }

    /// The numbers of `number`'s business account and tenant that an update
    /// names by display number, or all of them when it names none. Display
    /// numbers are compared by their digits (`+1 555...` is `1555...`).
    async fn account_numbers_named(
        &self,
        number: &NumberRegistered,
        display: Option<&str>,
    ) -> Result<Vec<String>, AppError> {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let wanted = display.map(digits);
        Ok(self
            .read_models
            .numbers_in_waba(&number.waba_id)
            .await?
            .into_iter()
            .filter(|n| n.tenant_id == number.tenant_id)
            .filter(|n| wanted.as_ref().is_none_or(|w| digits(&n.display_phone_number) == *w))
            .map(|n| n.phone_number_id)
            .collect())
    }
}
