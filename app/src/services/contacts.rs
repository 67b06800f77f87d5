//! The contact directory (SPEC 3.2, 5.4, 4.2): contacts created, edited,
//! opted out and in through the API, CSV import with a report per row, and
//! each tenant's own opt-out keywords.

use chrono::{DateTime, Utc};
use parley_domain::contact::{Contact, OptState};
use parley_domain::directory::{self, ContactPatch, DirectoryError, KeywordSettings};
use parley_domain::event::OptSource;
use parley_domain::ids;
use parley_domain::optout::Keywords;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::readmodel::{ContactFilter, ContactView};
use crate::repo::Target;
use crate::sealing::Meta;

/// At most this many data rows in one CSV import.
pub const MAX_IMPORT_ROWS: usize = 10_000;

impl From<DirectoryError> for AppError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound => AppError::NotFound { what: "contact" },
            DirectoryError::Exists => {
                AppError::Conflict { code: "contact_exists", detail: "a contact with this wa_id exists already".into() }
            }
            DirectoryError::Invalid { field, message } => AppError::validation(field, message),
        }
    }
}

/// A contact as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactOut {
    pub wa_id: String,
    /// Null if unknown or erased.
    pub name: Option<String>,
    /// `opted_in` or `opted_out`.
    pub opt_in_state: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    /// Who opted the contact out: `keyword`, `api` or `whats_app`.
    pub opt_out_source: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
}

fn source_name(source: OptSource) -> String {
    serde_json::to_value(source).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl ContactOut {
    fn from_state(c: &Contact) -> Self {
        let (state, at, source) = match &c.opt {
            Some(OptState::OptedOut { at, source }) => ("opted_out", Some(*at), Some(source_name(*source))),
            _ => ("opted_in", None, None),
        };
        ContactOut {
            wa_id: c.wa_id.clone(),
            name: c.name.clone(),
            opt_in_state: state.into(),
            opted_out_at: at,
            opt_out_source: source,
            tags: c.tags.clone(),
            attributes: c.attributes.clone(),
            created_at: c.created_at,
        }
    }
}

/// `POST /v1/contacts`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub wa_id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom attributes: names of a-z, 0-9 and _, values strings, numbers, booleans or null.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// `PATCH /v1/contacts/{wa_id}`: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// A new name, or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// Replaces every custom attribute.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// Tells a field that is present (even as null) from one that is absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What a CSV import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub failed: u32,
    /// One entry per refused row.
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The line of the file, counting the header as line 1.
    pub line: u64,
    pub wa_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// A tenant's own keywords (on top of STOP, UNSUBSCRIBE, CANCEL and START).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptKeywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

fn settings_stream(tenant_id: &str) -> String {
    format!("{tenant_id}/settings/keywords")
}

impl App {
    fn contact_target<'a>(&self, tenant: &'a str, wa_id: &'a str) -> Target<'a> {
        Target { tenant_id: tenant, stream_id: ids::contact_stream(tenant, wa_id), wa_id: Some(wa_id) }
    }

    pub async fn create_contact(&self, caller: &Caller, cmd: CreateContact) -> Result<ContactOut, AppError> {
        caller.require(Role::Agent)?;
        let patch = ContactPatch { name: Some(cmd.name), tags: Some(cmd.tags), attributes: Some(cmd.attributes) };
        let now = self.clock.now();
        if !directory::valid_wa_id(&cmd.wa_id) {
            return Err(AppError::validation("wa_id", "must be the contact's WhatsApp id: 5 to 20 digits"));
        }
        let target = self.contact_target(&caller.tenant_id, &cmd.wa_id);
        let done = self
            .contacts
            .execute(&target, &Meta::new(caller.actor()), |s| directory::create(s, &cmd.wa_id, patch.clone(), now))
            .await?;
        Ok(ContactOut::from_state(&done.state))
    }

    pub async fn contact(&self, caller: &Caller, wa_id: &str) -> Result<ContactOut, AppError> {
        if !directory::valid_wa_id(wa_id) {
            return Err(AppError::NotFound { what: "contact" });
        }
        let loaded = self.contacts.load(&ids::contact_stream(&caller.tenant_id, wa_id)).await?;
        if !loaded.state.exists {
            return Err(AppError::NotFound { what: "contact" });
        }
        Ok(ContactOut::from_state(&loaded.state))
    }

    pub async fn update_contact(
        &self,
        caller: &Caller,
        wa_id: &str,
        cmd: UpdateContact,
    ) -> Result<ContactOut, AppError> {
        caller.require(Role::Agent)?;
        if !directory::valid_wa_id(wa_id) {
            return Err(AppError::NotFound { what: "contact" });
        }
        let patch = ContactPatch { name: cmd.name, tags: cmd.tags, attributes: cmd.attributes };
        let now = self.clock.now();
        let target = self.contact_target(&caller.tenant_id, wa_id);
        let done = self
            .contacts
            .execute(&target, &Meta::new(caller.actor()), |s| directory::update(s, patch.clone(), now))
            .await?;
        Ok(ContactOut::from_state(&done.state))
    }

    /// Opts a contact out (`out`) or back in, on an agent's word.
    pub async fn set_contact_opt(&self, caller: &Caller, wa_id: &str, out: bool) -> Result<ContactOut, AppError> {
        caller.require(Role::Agent)?;
        if !directory::valid_wa_id(wa_id) {
            return Err(AppError::NotFound { what: "contact" });
        }
        let now = self.clock.now();
        let target = self.contact_target(&caller.tenant_id, wa_id);
        let done = self
            .contacts
            .execute(&target, &Meta::new(caller.actor()), |s| {
                if out {
                    directory::opt_out(s, OptSource::Api, now)
                } else {
                    directory::opt_in(s, OptSource::Api, now)
                }
            })
            .await?;
        Ok(ContactOut::from_state(&done.state))
    }

    /// A page of the tenant's contacts, by `wa_id`.
    pub async fn list_contacts(
        &self,
        caller: &Caller,
        filter: &ContactFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ContactOut>, Option<String>), AppError> {
        let page = self.read_models.contacts(&caller.tenant_id, filter, cursor, limit).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for c in page.items {
            items.push(self.contact_view_out(c).await?);
        }
        Ok((items, page.next_cursor))
    }

    async fn contact_view_out(&self, c: ContactView) -> Result<ContactOut, AppError> {
        let name = self.sealer.open_value(&c.name).await?;
        let attributes = self.sealer.open_value(&c.attributes).await?;
        Ok(ContactOut {
            wa_id: c.wa_id,
            name: name.as_str().map(str::to_owned),
            opt_in_state: if c.opted_out { "opted_out" } else { "opted_in" }.into(),
            opted_out_at: c.opt_changed_at.filter(|_| c.opted_out),
            opt_out_source: c.opt_source.filter(|_| c.opted_out),
            tags: c.tags,
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            created_at: Some(c.created_at),
        })
    }

    /// Imports contacts from CSV: a header row naming `wa_id` and optionally
    /// `name`, `tags` (separated by `;`) and custom attribute columns. New
    /// contacts are created, known ones updated (attributes merged); each
    /// refused row is reported and changes nothing.
    pub async fn import_contacts(&self, caller: &Caller, csv_bytes: &[u8]) -> Result<ImportReport, AppError> {
        caller.require(Role::Agent)?;
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(csv_bytes);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| AppError::validation("csv", format!("the header row cannot be read: {e}")))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
            .collect();
        let Some(wa_col) = headers.iter().position(|h| h == "wa_id") else {
            return Err(AppError::validation("csv", "the header row must name a `wa_id` column"));
        };
        let mut seen = std::collections::HashSet::new();
        for h in &headers {
            if !seen.insert(h) {
                return Err(AppError::validation("csv", format!("the column `{h}` appears twice")));
            }
        }
        let mut report = ImportReport::default();
        let meta = Meta::new(caller.actor());
        for (index, record) in reader.records().enumerate() {
            if index >= MAX_IMPORT_ROWS {
                return Err(AppError::validation("csv", format!("at most {MAX_IMPORT_ROWS} rows per import")));
            }
            let line = index as u64 + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    report.failed += 1;
                    report.errors.push(RowError { line, wa_id: None, field: "csv".into(), message: e.to_string() });
                    continue;
                }
            };
            let wa_id = record.get(wa_col).unwrap_or_default().to_owned();
            let mut patch = ContactPatch::default();
            let mut attributes = Map::new();
            for (h, value) in headers.iter().zip(record.iter()) {
                match h.as_str() {
                    "wa_id" => {}
                    "name" if !value.is_empty() => patch.name = Some(Some(value.to_owned())),
                    "tags" if !value.is_empty() => {
                        patch.tags =
                            Some(value.split(';').map(str::to_owned).filter(|t| !t.trim().is_empty()).collect())
                    }
                    "name" | "tags" => {}
                    other if !value.is_empty() => {
                        attributes.insert(other.to_owned(), Value::String(value.to_owned()));
                    }
                    _ => {}
                }
            }
            let now = self.clock.now();
            let target = self.contact_target(&caller.tenant_id, &wa_id);
            let outcome = if directory::valid_wa_id(&wa_id) {
                self.contacts
                    .execute(&target, &meta, |s| {
                        let mut row = patch.clone();
                        if !attributes.is_empty() {
                            let mut merged = s.attributes.clone();
                            merged.extend(attributes.clone());
                            row.attributes = Some(merged);
                        }
                        directory::upsert(s, &wa_id, row, now)
                    })
                    .await
                    .map(|done| (done.events, done.version))
            } else {
                Err(crate::repo::ExecuteError::Rejected(DirectoryError::Invalid {
                    field: "wa_id",
                    message: "must be the contact's WhatsApp id: 5 to 20 digits".into(),
                }))
            };
            match outcome {
                Ok((events, _)) if events.is_empty() => report.unchanged += 1,
                Ok((events, _)) if matches!(events[0], parley_domain::Event::ContactCreated { .. }) => {
                    report.created += 1
                }
                Ok(_) => report.updated += 1,
                Err(crate::repo::ExecuteError::Rejected(e)) => {
                    let (field, message) = match e {
                        DirectoryError::Invalid { field, message } => (field.to_owned(), message),
                        other => ("row".to_owned(), other.to_string()),
                    };
                    report.failed += 1;
                    report.errors.push(RowError { line, wa_id: Some(wa_id).filter(|w| !w.is_empty()), field, message });
                }
                Err(crate::repo::ExecuteError::Failed(e)) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The keywords in force for a tenant: the defaults and configured
    /// extras of this deployment, plus the tenant's own.
    pub async fn tenant_keywords(&self, tenant_id: &str) -> Result<Keywords, AppError> {
        let settings = self.keyword_settings.load(&settings_stream(tenant_id)).await?;
        Ok(settings.state.effective(&self.settings.keywords))
    }

    /// The tenant's own keywords.
    pub async fn opt_keywords(&self, caller: &Caller) -> Result<OptKeywords, AppError> {
        let s = self.keyword_settings.load(&settings_stream(&caller.tenant_id)).await?;
        Ok(OptKeywords { opt_out: s.state.opt_out.clone(), opt_in: s.state.opt_in.clone() })
    }

    /// Sets the tenant's own keywords.
    pub async fn configure_opt_keywords(&self, caller: &Caller, cmd: OptKeywords) -> Result<OptKeywords, AppError> {
        caller.require(Role::Admin)?;
        let now = self.clock.now();
        let target =
            Target { tenant_id: &caller.tenant_id, stream_id: settings_stream(&caller.tenant_id), wa_id: None };
        let done = self
            .keyword_settings
            .execute(&target, &Meta::new(caller.actor()), |s: &KeywordSettings| {
                directory::configure_keywords(s, &cmd.opt_out, &cmd.opt_in, now)
            })
            .await?;
        Ok(OptKeywords { opt_out: done.state.opt_out.clone(), opt_in: done.state.opt_in.clone() })
    }
}
