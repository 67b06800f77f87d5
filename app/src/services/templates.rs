//! Message templates (SPEC 3.5, 4.5, 5.5): checked with the template rules,
//! submitted to WhatsApp for review, followed through status webhooks and
//! sync, and checked on every template send.

use std::collections::BTreeMap;

use parley_domain::template::{self, Accepted, Template, TemplateDraft, TemplateError, TemplateSendError};
use parley_whatsapp::{SendError, TemplateSubmission, WabaCredentials};
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::readmodel::TemplateView;
use crate::repo::Target;
use crate::sealing::Meta;

impl From<TemplateError> for AppError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::Invalid(v) => AppError::TemplateInvalid(v),
            TemplateError::Exists => AppError::Conflict {
                code: "template_exists",
                detail: "a template with this name and language exists already".into(),
            },
            TemplateError::NotFound => AppError::NotFound { what: "template" },
        }
    }
}

fn upstream(e: SendError) -> AppError {
    AppError::Upstream(e.to_string())
}

/// The stream of one template in one language.
pub fn template_stream(tenant_id: &str, name: &str, language: &str) -> String {
    format!("{tenant_id}/template/{name}/{language}")
}

/// What a sync changed.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Templates found at WhatsApp that Parley did not know.
    pub imported: u32,
    /// Known templates whose status or category changed.
    pub updated: u32,
    pub unchanged: u32,
    /// Templates at WhatsApp that Parley's rules cannot read (named with their reason).
    pub skipped: Vec<String>,
}

impl App {
    /// The credentials for a business account of the tenant: `waba_id` when
    /// given, else the tenant's only one.
    async fn waba_credentials(&self, tenant: &str, waba_id: Option<&str>) -> Result<WabaCredentials, AppError> {
        let numbers = self.read_models.numbers(tenant).await?;
        let mut wabas: Vec<&str> = numbers.iter().map(|n| n.waba_id.as_str()).collect();
        wabas.sort_unstable();
        wabas.dedup();
        let waba = match (waba_id, wabas.as_slice()) {
            (Some(w), _) if wabas.contains(&w) => w.to_owned(),
            (Some(_), _) => return Err(AppError::NotFound { what: "business account" }),
            (None, [only]) => (*only).to_owned(),
            (None, []) => {
                return Err(AppError::validation("waba_id", "register a number of the business account first"))
            }
            (None, _) => {
                return Err(AppError::validation("waba_id", "the tenant has several business accounts: name one"))
            }
        };
        let number =
            numbers.iter().find(|n| n.waba_id == waba).ok_or(AppError::NotFound { what: "business account" })?;
        let registered = self.tenant_number(tenant, &number.phone_number_id).await?;
        Ok(WabaCredentials { waba_id: waba, access_token: registered.access_token })
    }

    /// Lints, submits to WhatsApp, then records the template.
    pub async fn create_template(
        &self,
        caller: &Caller,
        draft: TemplateDraft,
        waba_id: Option<&str>,
    ) -> Result<TemplateView, AppError> {
        caller.require(Role::Admin)?;
        let violations = template::lint(&draft);
        if !violations.is_empty() {
            return Err(AppError::TemplateInvalid(violations));
        }
        let tenant = caller.tenant_id.as_str();
        let stream_id = template_stream(tenant, &draft.name, &draft.language);
        if self.templates.load(&stream_id).await?.state.exists() {
            return Err(TemplateError::Exists.into());
        }
        let creds = self.waba_credentials(tenant, waba_id).await?;
        let submission = TemplateSubmission {
            name: draft.name.clone(),
            language: draft.language.clone(),
            category: draft.category.clone(),
            components: draft.components.clone(),
        };
        let created = self.whatsapp.create_template(&creds, &submission).await.map_err(upstream)?;
        let accepted = Accepted { whatsapp_id: Some(created.id), status: created.status, waba_id: creds.waba_id };
        let now = self.clock.now();
        let target = Target { tenant_id: tenant, stream_id, wa_id: None };
        let done = self
            .templates
            .execute(&target, &Meta::new(caller.actor()), |s| template::submit(s, &draft, &accepted, now))
            .await?;
        Ok(view(&done.state, now))
    }

    pub async fn list_templates(&self, caller: &Caller) -> Result<Vec<TemplateView>, AppError> {
        self.read_models.templates(&caller.tenant_id, None).await
    }

    /// Every language of the template `name`.
    pub async fn template_languages(&self, caller: &Caller, name: &str) -> Result<Vec<TemplateView>, AppError> {
        let found = self.read_models.templates(&caller.tenant_id, Some(name)).await?;
        if found.is_empty() {
            return Err(AppError::NotFound { what: "template" });
        }
        Ok(found)
    }

    /// Deletes every language of the template at WhatsApp, then here.
    pub async fn delete_template(&self, caller: &Caller, name: &str) -> Result<(), AppError> {
        caller.require(Role::Admin)?;
        let tenant = caller.tenant_id.as_str();
        let languages = self.template_languages(caller, name).await?;
        let mut by_waba: BTreeMap<&str, ()> = BTreeMap::new();
        for t in &languages {
            by_waba.insert(t.waba_id.as_str(), ());
        }
        for waba in by_waba.keys() {
            let creds = self.waba_credentials(tenant, Some(waba)).await?;
            self.whatsapp.delete_template(&creds, name).await.map_err(upstream)?;
        }
        let now = self.clock.now();
        let meta = Meta::new(caller.actor());
        for t in &languages {
            let target =
                Target { tenant_id: tenant, stream_id: template_stream(tenant, name, &t.language), wa_id: None };
            self.templates
                .execute(&target, &meta, |s| Ok::<_, AppError>(template::delete(s, now).unwrap_or_default()))
                .await?;
        }
        Ok(())
    }

    /// Reads every template of the tenant's business accounts from WhatsApp:
    /// unknown ones are imported, known ones take WhatsApp's status.
    pub async fn sync_templates(&self, caller: &Caller) -> Result<SyncReport, AppError> {
        caller.require(Role::Admin)?;
        self.sync_tenant_templates(&caller.tenant_id, &caller.actor()).await
    }

    /// The sync of one tenant's templates, recorded as done by `actor`
    /// (the API's caller, or the status poller). Idempotent: a template
    /// whose status did not change records nothing.
    pub async fn sync_tenant_templates(&self, tenant: &str, actor: &str) -> Result<SyncReport, AppError> {
        let mut wabas: Vec<String> = self.read_models.numbers(tenant).await?.into_iter().map(|n| n.waba_id).collect();
        wabas.sort();
        wabas.dedup();
        let mut report = SyncReport::default();
        let meta = Meta::new(actor);
        for waba in wabas {
            let creds = self.waba_credentials(tenant, Some(&waba)).await?;
            for remote in self.whatsapp.list_templates(&creds).await.map_err(upstream)? {
                let draft = TemplateDraft {
                    name: remote.name.clone(),
                    language: remote.language.clone(),
                    category: remote.category.clone(),
                    components: remote.components.clone(),
                };
                let accepted = Accepted {
                    whatsapp_id: Some(remote.id.clone()),
                    status: remote.status.clone(),
                    waba_id: waba.clone(),
                };
                let now = self.clock.now();
                let target = Target {
                    tenant_id: tenant,
                    stream_id: template_stream(tenant, &remote.name, &remote.language),
                    wa_id: None,
                };
                let outcome = self
                    .templates
                    .execute(&target, &meta, |s: &Template| {
                        if s.exists() {
                            Ok(template::change_status(
                                s,
                                &remote.status,
                                remote.rejected_reason.as_deref(),
                                Some(&remote.category),
                                now,
                            ))
                        } else {
                            template::submit(s, &draft, &accepted, now)
                        }
                    })
                    .await;
                match outcome {
                    Ok(done) if done.events.is_empty() => report.unchanged += 1,
                    Ok(done) if matches!(done.events[0], parley_domain::Event::TemplateSubmitted { .. }) => {
                        report.imported += 1
                    }
                    Ok(_) => report.updated += 1,
                    Err(crate::repo::ExecuteError::Rejected(e)) => {
                        report.skipped.push(format!("{}/{}: {e}", remote.name, remote.language))
                    }
                    Err(crate::repo::ExecuteError::Failed(e)) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// A `message_template_status_update` from WhatsApp for a tenant.
    pub async fn apply_template_status(
        &self,
        tenant: &str,
        update: &parley_whatsapp::webhook::TemplateStatusUpdate,
    ) -> Result<bool, AppError> {
        let stream_id = template_stream(tenant, &update.message_template_name, &update.message_template_language);
        let now = self.clock.now();
        let target = Target { tenant_id: tenant, stream_id, wa_id: None };
        let done = self
            .templates
            .execute(&target, &Meta::new("whatsapp"), |s| {
                Ok::<_, AppError>(template::change_status(
                    s,
                    &update.event,
                    update.reason.as_deref(),
                    update.message_template_category.as_deref(),
                    now,
                ))
            })
            .await?;
        Ok(!done.events.is_empty())
    }

    /// For a template send: the approved template's checks, and the refusal
    /// of marketing to a contact who stopped it. Answers the rendered text.
    pub async fn check_template_rules(
        &self,
        tenant: &str,
        kind: &str,
        body: &Value,
        contact: &parley_domain::contact::Contact,
    ) -> Result<Option<String>, AppError> {
        if kind != "template" {
            return Ok(None);
        }
        let (text, category) = self.check_template_send(tenant, body).await?;
        if let (Some(since), "MARKETING") = (contact.marketing_stopped, category.as_str()) {
            return Err(AppError::TemplateSend {
                code: "marketing_opted_out",
                detail: format!("the contact stopped marketing messages at {}", since.to_rfc3339()),
            });
        }
        if category == "MARKETING" && !self.may_send_marketing(tenant).await? {
            return Err(AppError::TemplateSend {
                code: "usage_limit_reached",
                detail: "this month's usage reached the plan's limit: marketing templates wait for next month \
                         or a plan with overage"
                    .into(),
            });
        }
        Ok(Some(text))
    }

    /// Whether the tenant may send marketing now; without a back office
    /// (no billing), always.
    async fn may_send_marketing(&self, tenant: &str) -> Result<bool, AppError> {
        match self.marketing_allowance.get().and_then(std::sync::Weak::upgrade) {
            Some(allowance) => allowance.may_send_marketing(tenant).await,
            None => Ok(true),
        }
    }

    /// Records a marketing stop or resume reported by WhatsApp.
    pub async fn record_marketing_preference(
        &self,
        tenant: &str,
        wa_id: &str,
        stopped: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, AppError> {
        if !parley_domain::directory::valid_wa_id(wa_id) {
            return Ok(false);
        }
        let target = Target {
            tenant_id: tenant,
            stream_id: parley_domain::ids::contact_stream(tenant, wa_id),
            wa_id: Some(wa_id),
        };
        let done = self
            .contacts
            .execute(&target, &Meta::new("whatsapp"), |c| {
                Ok::<_, AppError>(parley_domain::contact::marketing_preference(c, wa_id, stopped, at))
            })
            .await?;
        Ok(!done.events.is_empty())
    }

    /// Checks a template send against the approved template and renders its
    /// text; answers the template's category too.
    pub async fn check_template_send(&self, tenant: &str, send: &Value) -> Result<(String, String), AppError> {
        let name = send.get("name").and_then(Value::as_str).unwrap_or_default();
        let language = send.pointer("/language/code").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || language.is_empty() {
            return Err(AppError::validation("template", "needs a name and language.code"));
        }
        let loaded = self.templates.load(&template_stream(tenant, name, language)).await?;
        if !loaded.state.exists() {
            return Err(AppError::TemplateSend {
                code: "template_not_found",
                detail: format!("no template `{name}` in `{language}`; create or sync it first"),
            });
        }
        let text = template::render_send(&loaded.state, send).map_err(|e| match e {
            TemplateSendError::NotApproved { .. } => {
                AppError::TemplateSend { code: "template_not_approved", detail: e.to_string() }
            }
            TemplateSendError::Parameters(m) => AppError::TemplateSend { code: "template_parameters", detail: m },
        })?;
        let category = loaded.state.draft.as_ref().map(|d| d.category.clone()).unwrap_or_default();
        Ok((text, category))
    }
}

fn view(t: &Template, now: chrono::DateTime<chrono::Utc>) -> TemplateView {
    let d = t.draft.clone().unwrap_or(TemplateDraft {
        name: String::new(),
        language: String::new(),
        category: String::new(),
        components: Vec::new(),
    });
    TemplateView {
        name: d.name,
        language: d.language,
        category: d.category,
        status: t.status.clone(),
        reason: t.reason.clone(),
        components: Value::Array(d.components),
        whatsapp_id: t.whatsapp_id.clone(),
        waba_id: t.waba_id.clone(),
        updated_at: now,
    }
}
