//! `/v1/conversations` (SPEC 5.3).

use std::sync::Arc;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use uuid::Uuid;

use super::extract::Query;
use super::problem::Problem;
use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::{AssigneeFilter, ConversationFilter, ConversationView, WindowFilter};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactRef {
    pub wa_id: String,
    /// The WhatsApp profile name; null if unknown or erased.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastMessage {
    pub id: Uuid,
    pub direction: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationOut {
    pub id: Uuid,
    pub contact: ContactRef,
    pub number_id: String,
    pub state: String,
    pub window_closes_at: Option<DateTime<Utc>>,
    pub window_open: bool,
    pub unread_count: u32,
    pub last_message: Option<LastMessage>,
    pub created_at: DateTime<Utc>,
    /// The user handling the conversation.
    pub assignee: Option<String>,
    /// When the 72h free entry point window of a click-to-WhatsApp ad closes
    /// (pricing only: free-form sends follow the 24h window).
    pub entry_point_window_closes_at: Option<DateTime<Utc>>,
    /// The ad the contact came from.
    pub referral: Option<ReferralOut>,
}

/// A click-to-WhatsApp ad, as WhatsApp described it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralOut {
    pub source_url: Option<String>,
    pub source_id: Option<String>,
    /// `ad` or `post`.
    pub source_type: Option<String>,
    pub headline: Option<String>,
    pub body: Option<String>,
    pub media_type: Option<String>,
}

async fn referral_out(app: &App, referral: &Value) -> Result<ReferralOut, AppError> {
    let plain = |k: &str| referral.get(k).and_then(Value::as_str).map(str::to_owned);
    let open = |k: &'static str| async move {
        Ok::<_, AppError>(app.sealer.open_value(&referral[k]).await?.as_str().map(str::to_owned))
    };
    Ok(ReferralOut {
        source_url: plain("source_url"),
        source_id: plain("source_id"),
        source_type: plain("source_type"),
        headline: open("headline").await?,
        body: open("body").await?,
        media_type: plain("media_type"),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationOut>,
    pub next_cursor: Option<String>,
}

pub(super) async fn conversation_out(
    app: &App,
    c: ConversationView,
    now: DateTime<Utc>,
) -> Result<ConversationOut, AppError> {
    let name = app.sealer.open_value(&c.contact_name).await?;
    let last_message = match c.last_message {
        Some(mut preview) => {
            if let Some(text) = preview.get("text").cloned() {
                preview["text"] = app.sealer.open_value(&text).await?;
            }
            Some(LastMessage {
                id: preview["message_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
                direction: preview["direction"].as_str().unwrap_or_default().to_owned(),
                kind: preview["kind"].as_str().unwrap_or_default().to_owned(),
                text: preview["text"].as_str().map(str::to_owned),
                at: preview["at"].as_str().and_then(|s| s.parse().ok()).unwrap_or(c.activity_at),
            })
        }
        None => None,
    };
    Ok(ConversationOut {
        id: c.id,
        contact: ContactRef { wa_id: c.wa_id, name: name.as_str().map(str::to_owned) },
        number_id: c.number_id,
        state: c.state,
        window_open: parley_domain::window::is_open(c.window_closes_at, now),
        window_closes_at: c.window_closes_at,
        unread_count: c.unread_count,
        last_message,
        created_at: c.created_at,
        assignee: c.assignee,
        entry_point_window_closes_at: c.entry_point_window_closes_at,
        referral: match &c.referral {
            Some(referral) => Some(referral_out(app, referral).await?),
            None => None,
        },
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListConversations {
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// `open` or `closed`: whether the 24h window is open now.
    pub window: Option<String>,
    pub number_id: Option<String>,
    /// Conversations with a message carrying this tag.
    pub tag: Option<String>,
    /// A user id, or `none` for unassigned conversations.
    pub assignee: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
}

/// List conversations, most recently active first.
#[utoipa::path(
    get, path = "/v1/conversations", tag = "conversations", params(ListConversations),
    responses((status = 200, body = ConversationPage), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ListConversations>,
) -> Result<axum::Json<ConversationPage>, AppError> {
    let state = match q.state.as_deref() {
        None => None,
        Some(s @ ("open" | "resolved")) => Some(s.to_owned()),
        Some(_) => return Err(AppError::validation("state", "must be open or resolved")),
    };
    let window = match q.window.as_deref() {
        None => None,
        Some("open") => Some(WindowFilter::Open),
        Some("closed") => Some(WindowFilter::Closed),
        Some(_) => return Err(AppError::validation("window", "must be open or closed")),
    };
    let tag = match q.tag.as_deref() {
        None => None,
        Some(t) => parley_domain::handling::normalise_tags(&[t.to_owned()])
            .map_err(|_| AppError::validation("tag", "is not a valid tag"))?
            .into_iter()
            .next(),
    };
    let assignee = match q.assignee {
        None => None,
        Some(a) if a == "none" => Some(AssigneeFilter::Unassigned),
        Some(a) if !a.is_empty() => Some(AssigneeFilter::User(a)),
        Some(_) => return Err(AppError::validation("assignee", "must be a user id or `none`")),
    };
    let filter = ConversationFilter { state, window, number_id: q.number_id, tag, assignee };
    let now = app.clock.now();
    let page = app
        .read_models
        .conversations(&caller.tenant_id, &filter, now, q.cursor.as_deref(), super::page_limit(q.limit)?)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        items.push(conversation_out(&app, c, now).await?);
    }
    Ok(axum::Json(ConversationPage { items, next_cursor: page.next_cursor }))
}

/// One conversation.
#[utoipa::path(
    get, path = "/v1/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationOut), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationOut>, AppError> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound { what: "conversation" })?;
    let c = app
        .read_models
        .conversation(&caller.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound { what: "conversation" })?;
    Ok(axum::Json(conversation_out(&app, c, app.clock.now()).await?))
}
