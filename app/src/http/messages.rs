//! `/v1/messages` (SPEC 5.2).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::extract::{Query, RawBody};
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::idempotency::{Claim, StoredResponse};
use crate::readmodel::MessageView;
use crate::services::send::{Queued, SendMessage};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub direction: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub wamid: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The type-specific content; null once the contact's data was erased.
    #[schema(value_type = Object)]
    pub content: Value,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub tags: Vec<String>,
    pub number_id: String,
    pub wa_id: String,
    pub attempts: u32,
    pub timestamps: StatusTimes,
    /// Deleted: `content` is null, the recorded events stay.
    pub deleted: bool,
    /// For a template message: the text it renders to, parameters substituted.
    pub rendered_text: Option<String>,
    /// The current reaction of each side on this message.
    pub reactions: ReactionsOut,
    /// The business number that actually sent it (an alternate number may
    /// stand in for a blocked one); null until WhatsApp accepted it.
    pub sent_from: Option<String>,
    /// For an inbound media message: its file in Parley, served by
    /// `GET /v1/messages/{id}/media` once `stored`.
    pub media: Option<MediaOut>,
}

/// The current reaction of the customer (`inbound`) and of the business
/// (`outbound`); null for a side that has none or removed it.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ReactionsOut {
    pub inbound: Option<ReactionOut>,
    pub outbound: Option<ReactionOut>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReactionOut {
    pub emoji: String,
    pub at: Option<DateTime<Utc>>,
    /// The reaction message.
    pub message_id: Option<Uuid>,
}

/// Opens the reactions of a message view; a removed (empty) or shredded
/// emoji shows no reaction.
async fn reactions_out(app: &App, reactions: &Value) -> Result<ReactionsOut, AppError> {
    let mut out = ReactionsOut::default();
    for (side, slot) in [("inbound", &mut out.inbound), ("outbound", &mut out.outbound)] {
        let Some(reaction) = reactions.get(side) else { continue };
        let emoji = app.sealer.open_value(&reaction["emoji"]).await?;
        if let Some(emoji) = emoji.as_str().filter(|e| !e.is_empty()) {
            *slot = Some(ReactionOut {
                emoji: emoji.to_owned(),
                at: reaction["at"].as_str().and_then(|s| s.parse().ok()),
                message_id: reaction["message_id"].as_str().and_then(|s| s.parse().ok()),
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MediaOut {
    /// `pending` (not fetched yet), `stored` or `failed`.
    pub state: String,
    pub mime_type: Option<String>,
    /// Hex SHA-256 of the stored file.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Why the file could not be fetched.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusTimes {
    /// When WhatsApp accepted the send.
    pub accepted: Option<DateTime<Utc>>,
    pub sent: Option<DateTime<Utc>>,
    pub delivered: Option<DateTime<Utc>>,
    pub read: Option<DateTime<Utc>>,
    pub failed: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub items: Vec<MessageOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(super) async fn message_out(app: &App, m: MessageView) -> Result<MessageOut, AppError> {
    Ok(MessageOut {
        content: app.sealer.open_value(&m.content).await?,
        id: m.id,
        conversation_id: m.conversation_id,
        direction: m.direction,
        kind: m.kind,
        status: m.status,
        wamid: m.wamid,
        created_at: m.created_at,
        error: m.error,
        tags: m.tags,
        number_id: m.number_id,
        wa_id: m.wa_id,
        attempts: m.attempts,
        timestamps: StatusTimes {
            accepted: m.accepted_at,
            sent: m.sent_at,
            delivered: m.delivered_at,
            read: m.read_at,
            failed: m.failed_at,
        },
        deleted: m.deleted,
        rendered_text: app.sealer.open_value(&m.rendered).await?.as_str().map(str::to_owned),
        reactions: reactions_out(app, &m.reactions).await?,
        sent_from: m.sent_from,
        media: m.media.map(|v| MediaOut {
            state: v.state,
            mime_type: v.mime_type,
            sha256: v.sha256,
            size: v.size,
            error: v.error,
        }),
    })
}

async fn page_out(app: &App, page: crate::readmodel::Page<MessageView>) -> Result<MessagePage, AppError> {
    let mut items = Vec::with_capacity(page.items.len());
    for m in page.items {
        items.push(message_out(app, m).await?);
    }
    Ok(MessagePage { items, next_cursor: page.next_cursor })
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Send a message.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = SendMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key: the same key and body return the first response")),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 404, description = "Unknown number", body = Problem),
        (status = 409, description = "Idempotency key reused with another body", body = Problem),
        (status = 422, description = "Invalid, window_closed or opted_out", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn send(State(app): State<Arc<App>>, caller: Caller, headers: HeaderMap, RawBody(body): RawBody) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, "malformed_json", "Malformed JSON", e.to_string())
                .into_response()
        }
    };
    let key = match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if (1..=255).contains(&k.len()) => Some(k.to_owned()),
        Some(_) => {
            return AppError::validation("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
                .into_response();
        }
    };
    let Some(key) = key else {
        return respond(run_send(&app, &caller, parsed).await);
    };
    // serde_json keeps object keys sorted, so equal bodies give equal fingerprints
    // whatever their spacing or key order.
    let fingerprint = hex::encode(Sha256::digest(parsed.to_string().as_bytes()));
    let now_ms = app.clock.now().timestamp_millis();
    let claim = match app.idempotency.claim(&caller.tenant_id, &key, &fingerprint, now_ms).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match claim {
        Claim::Replay(stored) => {
            let mut r = stored_response(stored);
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Claim::Mismatch => AppError::Conflict {
            code: "idempotency_key_reused",
            detail: "this Idempotency-Key was used with a different request body".into(),
        }
        .into_response(),
        Claim::InProgress => AppError::Conflict {
            code: "idempotency_key_in_progress",
            detail: "a request with this Idempotency-Key is still being processed".into(),
        }
        .into_response(),
        Claim::New => {
            let result = run_send(&app, &caller, parsed).await;
            let bookkeeping = match &result {
                Ok(queued) => {
                    let stored =
                        StoredResponse { status: 202, body: serde_json::to_string(queued).unwrap_or_default() };
                    app.idempotency.complete(&caller.tenant_id, &key, &stored, app.clock.now().timestamp_millis()).await
                }
                Err(_) => app.idempotency.release(&caller.tenant_id, &key).await,
            };
            if let Err(e) = bookkeeping {
                tracing::error!(error = %e, "idempotency record not updated");
            }
            respond(result)
        }
    }
}

async fn run_send(app: &App, caller: &Caller, body: Value) -> Result<Queued, AppError> {
    let cmd: SendMessage = serde_json::from_value(body).map_err(|e| AppError::validation("body", e.to_string()))?;
    app.send_message(caller, cmd).await
}

fn respond(result: Result<Queued, AppError>) -> Response {
    match result {
        Ok(q) => (StatusCode::ACCEPTED, axum::Json(q)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn stored_response(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], stored.body).into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListMessages {
    pub conversation_id: Option<Uuid>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// List messages, newest first.
#[utoipa::path(
    get, path = "/v1/messages", tag = "messages", params(ListMessages),
    responses((status = 200, body = MessagePage), (status = 404, description = "Unknown conversation", body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ListMessages>,
) -> Result<axum::Json<MessagePage>, AppError> {
    if let Some(c) = q.conversation_id {
        app.read_models.conversation(&caller.tenant_id, c).await?.ok_or(AppError::NotFound { what: "conversation" })?;
    }
    let page = app
        .read_models
        .messages(&caller.tenant_id, q.conversation_id, q.cursor.as_deref(), super::page_limit(q.limit)?)
        .await?;
    Ok(axum::Json(page_out(&app, page).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchMessages {
    /// Words to find, all of them (case and accents do not matter; words of
    /// one character are ignored). At most 8 words and 200 characters.
    pub q: String,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// Search the tenant's messages: those whose text holds every word of `q`,
/// newest first. Text, captions, file names, button and list titles and the
/// rendered text of templates are searched; deleted messages are not found.
#[utoipa::path(
    get, path = "/v1/messages/search", tag = "messages", params(SearchMessages),
    responses(
        (status = 200, body = MessagePage),
        (status = 422, description = "No word to search for, or too long a query", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<SearchMessages>,
) -> Result<axum::Json<MessagePage>, AppError> {
    let page = app.search_messages(&caller, &q.q, q.cursor.as_deref(), super::page_limit(q.limit)?).await?;
    Ok(axum::Json(page_out(&app, page).await?))
}

/// The file of a message: the bytes with their Content-Type.
#[utoipa::path(
    get, path = "/v1/messages/{id}/media", tag = "messages", params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "Unknown message, or no file stored for it", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn media(State(app): State<Arc<App>>, caller: Caller, Path(id): Path<String>) -> Result<Response, AppError> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound { what: "message" })?;
    let blob = app.message_media(&caller, id).await?;
    let content_type = HeaderValue::from_str(&blob.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (axum::http::header::CONTENT_TYPE, content_type),
        // The bytes are a customer's: never render them inline as a page of this origin.
        (axum::http::header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment")),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, blob.bytes).into_response())
}

/// One message.
#[utoipa::path(
    get, path = "/v1/messages/{id}", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 200, body = MessageOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<MessageOut>, AppError> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound { what: "message" })?;
    let m = app.read_models.message(&caller.tenant_id, id).await?.ok_or(AppError::NotFound { what: "message" })?;
    Ok(axum::Json(message_out(&app, m).await?))
}
