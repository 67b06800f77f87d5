//! `/v1/contacts` (SPEC 5.4) and the tenant's opt-out keywords.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Json, Query, RawBody};
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::ContactFilter;
use crate::services::contacts::{ContactOut, CreateContact, ImportReport, OptKeywords, UpdateContact};
use crate::services::privacy::Erasure;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactPage {
    pub items: Vec<ContactOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListContacts {
    /// `opted_in` or `opted_out`.
    pub opt_in_state: Option<String>,
    pub tag: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// List contacts by `wa_id`.
#[utoipa::path(
    get, path = "/v1/contacts", tag = "contacts", params(ListContacts),
    responses((status = 200, body = ContactPage), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ListContacts>,
) -> Result<axum::Json<ContactPage>, AppError> {
    let opted_out = match q.opt_in_state.as_deref() {
        None => None,
        Some("opted_in") => Some(false),
        Some("opted_out") => Some(true),
        Some(_) => return Err(AppError::validation("opt_in_state", "must be opted_in or opted_out")),
    };
    let tag = match q.tag {
        None => None,
        Some(t) => parley_domain::handling::normalise_tags(&[t])
            .map_err(|_| AppError::validation("tag", "is not a valid tag"))?
            .into_iter()
            .next(),
    };
    let filter = ContactFilter { opted_out, tag };
    let (items, next_cursor) =
        app.list_contacts(&caller, &filter, q.cursor.as_deref(), super::page_limit(q.limit)?).await?;
    Ok(axum::Json(ContactPage { items, next_cursor }))
}

/// Create a contact.
#[utoipa::path(
    post, path = "/v1/contacts", tag = "contacts", request_body = CreateContact,
    responses((status = 201, body = ContactOut), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(body): Json<CreateContact>,
) -> Result<(StatusCode, axum::Json<ContactOut>), AppError> {
    Ok((StatusCode::CREATED, axum::Json(app.create_contact(&caller, body).await?)))
}

/// One contact.
#[utoipa::path(
    get, path = "/v1/contacts/{wa_id}", tag = "contacts", params(("wa_id" = String, Path)),
    responses((status = 200, body = ContactOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<axum::Json<ContactOut>, AppError> {
    Ok(axum::Json(app.contact(&caller, &wa_id).await?))
}

/// Change a contact's name, tags or custom attributes.
#[utoipa::path(
    patch, path = "/v1/contacts/{wa_id}", tag = "contacts", params(("wa_id" = String, Path)),
    request_body = UpdateContact,
    responses((status = 200, body = ContactOut), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
    Json(body): Json<UpdateContact>,
) -> Result<axum::Json<ContactOut>, AppError> {
    Ok(axum::Json(app.update_contact(&caller, &wa_id, body).await?))
}

/// Opt a contact out: sends to them are refused until they opt in again.
#[utoipa::path(
    post, path = "/v1/contacts/{wa_id}/opt-out", tag = "contacts", params(("wa_id" = String, Path)),
    responses((status = 200, body = ContactOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn opt_out(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<axum::Json<ContactOut>, AppError> {
    Ok(axum::Json(app.set_contact_opt(&caller, &wa_id, true).await?))
}

/// Opt a contact back in.
#[utoipa::path(
    post, path = "/v1/contacts/{wa_id}/opt-in", tag = "contacts", params(("wa_id" = String, Path)),
    responses((status = 200, body = ContactOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn opt_in(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<axum::Json<ContactOut>, AppError> {
    Ok(axum::Json(app.set_contact_opt(&caller, &wa_id, false).await?))
}

/// Import contacts from CSV (`text/csv`): a header row with `wa_id` and
/// optionally `name`, `tags` (separated by `;`) and attribute columns.
#[utoipa::path(
    post, path = "/v1/contacts/import", tag = "contacts",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn import(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<ImportReport>, Problem> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim_start().to_ascii_lowercase().starts_with("text/csv") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the file as text/csv",
        ));
    }
    app.import_contacts(&caller, &body).await.map(axum::Json).map_err(|e| Problem::from(&e))
}

/// The tenant's own opt-out and opt-in keywords.
#[utoipa::path(
    get, path = "/v1/settings/opt-keywords", tag = "contacts",
    responses((status = 200, body = OptKeywords)),
    security(("bearer" = []))
)]
pub async fn get_keywords(State(app): State<Arc<App>>, caller: Caller) -> Result<axum::Json<OptKeywords>, AppError> {
    Ok(axum::Json(app.opt_keywords(&caller).await?))
}

/// Set the tenant's own keywords, used on top of STOP, UNSUBSCRIBE, CANCEL and START.
#[utoipa::path(
    put, path = "/v1/settings/opt-keywords", tag = "contacts", request_body = OptKeywords,
    responses((status = 200, body = OptKeywords), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn put_keywords(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(body): Json<OptKeywords>,
) -> Result<axum::Json<OptKeywords>, AppError> {
    Ok(axum::Json(app.configure_opt_keywords(&caller, body).await?))
}

/// Everything held about a contact (GDPR export).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactExport {
    pub exported_at: chrono::DateTime<chrono::Utc>,
    pub contact: ContactOut,
    /// The contact's conversations with each of the tenant's numbers.
    pub conversations: Vec<super::conversations::ConversationOut>,
    /// Their messages, oldest first, with content opened.
    pub messages: Vec<super::messages::MessageOut>,
}

/// Export everything held about a contact (GDPR, owners and admins): the
/// directory entry, the conversations and every message, archived ones
/// included.
#[utoipa::path(
    get, path = "/v1/contacts/{wa_id}/export", tag = "contacts", params(("wa_id" = String, Path)),
    responses((status = 200, body = ContactExport), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn export(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<axum::Json<ContactExport>, AppError> {
    let history = app.contact_history(&caller, &wa_id).await?;
    let contact = app.contact(&caller, &wa_id).await?;
    let now = app.clock.now();
    let mut conversations = Vec::with_capacity(history.conversations.len());
    for c in history.conversations {
        conversations.push(super::conversations::conversation_out(&app, c, now).await?);
    }
    let mut messages = Vec::with_capacity(history.messages.len());
    for m in history.messages {
        messages.push(super::messages::message_out(&app, m).await?);
    }
    Ok(axum::Json(ContactExport { exported_at: now, contact, conversations, messages }))
}

/// Erase a contact (GDPR, owners and admins): its data key is destroyed, so
/// its name, attributes and every message's content read as null from now
/// on; its directory entry, search terms and stored media files are removed.
/// The events stay, unreadable. A later message from the same number starts
/// a new contact. Asking again for an erased contact answers the same way
/// (and finishes a cleanup that was cut short); an unknown one is 404.
#[utoipa::path(
    delete, path = "/v1/contacts/{wa_id}", tag = "contacts", params(("wa_id" = String, Path)),
    responses((status = 200, body = Erasure), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn erase(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(wa_id): Path<String>,
) -> Result<axum::Json<Erasure>, AppError> {
    Ok(axum::Json(app.erase_contact(&caller, &wa_id).await?))
}

/// The OpenAPI description of these routes, merged into the API's document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, update, opt_out, opt_in, import, get_keywords, put_keywords, export, erase))]
pub struct ContactsApi;
