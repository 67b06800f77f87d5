//! Webhook fields other than messages and statuses: template review
//! (`message_template_status_update`) and marketing preferences
//! (`user_preferences`).

use std::collections::HashMap;

use parley_domain::event::NumberRegistered;
use parley_whatsapp::webhook::{TemplateStatusUpdate, UserPreference};
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
            _ => Ok(false),
        }
    }
}
