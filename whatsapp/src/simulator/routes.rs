//! The simulator's HTTP surface: Graph API sends and the inbound injector.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, OriginalUri, Path, State};
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::media::{read_upload, StoredMedia};
use super::validate::{self, SendBody};
use super::{InboundError, InboundSpec, Simulator};
use crate::graph_error::{GraphError, GraphErrorBody};
use crate::send::{SendResponse, SendResponseContact, SendResponseMessage, MESSAGING_PRODUCT};
use crate::webhook::tokens_match;

/// Graph's code for an invalid or expired access token.
const CODE_AUTH: i64 = 190;
/// Graph's code for an invalid parameter.
const CODE_INVALID_PARAMETER: i64 = 100;
/// Graph's subcode for an object that does not exist or is not accessible.
const SUBCODE_UNKNOWN_OBJECT: i64 = 33;
/// Graph's code for a path it does not know.
const CODE_UNKNOWN_PATH: i64 = 2500;

/// The simulator's routes, relative to wherever the application mounts them:
/// `POST /{version}/{phone_number_id}/messages` and
/// `POST /_inbound/{phone_number_id}`.
pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        // One name for the Graph object id in every route: the router needs
        // the same parameter name at the same position.
        .route("/{version}/{object_id}/messages", post(send_message))
        .route("/_inbound/{phone_number_id}", post(inbound))
        .route(
            "/{version}/{object_id}/message_templates",
            post(create_template).get(list_templates).delete(delete_template),
        )
        .route("/{version}/{object_id}/media", post(upload_media))
        .route("/{version}/{object_id}", get(media_info))
        .route("/_media/{media_id}", get(download_media))
        // WhatsApp's largest media cap is 100 MB.
        .layer(DefaultBodyLimit::max(110 * 1024 * 1024))
        .with_state(sim)
}

/// `POST /{version}/{phone_number_id}/messages`.
async fn send_message(
    State(sim): State<Arc<Simulator>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_api_version(&version) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            GraphError::new(
                CODE_UNKNOWN_PATH,
                format!("Unknown path components: /{version}/{phone_number_id}/messages"),
                None,
            ),
        );
    }
    let Some(token) = bearer_token(&headers) else {
        return invalid_token("An access token is required to request this resource.");
    };
    let Some((expected_token, app_secret)) = sim.directory.lookup(&phone_number_id).await else {
        let mut error = GraphError::new(
            CODE_INVALID_PARAMETER,
            format!(
                "Unsupported post request. Object with ID '{phone_number_id}' does not exist, \
                 cannot be loaded due to missing permissions, or does not support this operation."
            ),
            None,
        );
        error.error_subcode = Some(SUBCODE_UNKNOWN_OBJECT);
        return graph_error(StatusCode::BAD_REQUEST, error);
    };
    if !tokens_match(token, &expected_token) {
        return invalid_token("Invalid OAuth access token - Cannot parse access token");
    }
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|error| format!("the body is not valid JSON: {error}"))
        .and_then(|value| validate::send_body(&value));
    match parsed {
        Ok(SendBody::Message(request)) => {
            let to = request.to.clone();
            let wamid = sim.accept(&phone_number_id, app_secret, request).await;
            let response = SendResponse {
                messaging_product: MESSAGING_PRODUCT.to_owned(),
                contacts: vec![SendResponseContact { wa_id: to.trim_start_matches('+').to_owned(), input: to }],
                messages: vec![SendResponseMessage { id: wamid, message_status: Some("accepted".to_owned()) }],
            };
            (StatusCode::OK, Json(response)).into_response()
        }
        Ok(SendBody::MarkRead { .. }) => (StatusCode::OK, Json(json!({ "success": true }))).into_response(),
        Err(reason) => invalid_parameter(reason),
    }
}

/// Checks the version and the bearer token of a call on a number's behalf;
/// answers the refusal, if any.
async fn check_number_call(
    sim: &Simulator,
    version: &str,
    phone_number_id: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if !is_api_version(version) {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            GraphError::new(CODE_UNKNOWN_PATH, format!("Unknown path components: /{version}/{phone_number_id}"), None),
        ));
    }
    let Some(token) = bearer_token(headers) else {
        return Some(invalid_token("An access token is required to request this resource."));
    };
    let Some((expected, _)) = sim.directory.lookup(phone_number_id).await else {
        return Some(unknown_object(phone_number_id));
    };
    (!tokens_match(token, &expected)).then(|| invalid_token("Invalid OAuth access token - Cannot parse access token"))
}

fn unknown_object(id: &str) -> Response {
    let mut error = GraphError::new(
        CODE_INVALID_PARAMETER,
        format!(
            "Unsupported request. Object with ID '{id}' does not exist, cannot be loaded due to missing \
             permissions, or does not support this operation."
        ),
        None,
    );
    error.error_subcode = Some(SUBCODE_UNKNOWN_OBJECT);
    graph_error(StatusCode::BAD_REQUEST, error)
}

/// `POST /{version}/{phone_number_id}/media`: multipart upload.
async fn upload_media(
    State(sim): State<Arc<Simulator>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Some(refusal) = check_number_call(&sim, &version, &phone_number_id, &headers).await {
        return refusal;
    }
    let upload = match form {
        Ok(form) => read_upload(form).await,
        Err(rejection) => Err(format!("the body is not multipart/form-data: {rejection}")),
    };
    match upload {
        Ok(upload) => {
            let id = sim.store_media(StoredMedia { phone_number_id, mime_type: upload.kind, bytes: upload.bytes });
            (StatusCode::OK, Json(json!({ "id": id }))).into_response()
        }
        Err(reason) => invalid_parameter(reason),
    }
}

/// The stored media `media_id`, when the bearer token is its number's.
async fn owned_media(sim: &Simulator, media_id: &str, headers: &HeaderMap) -> Result<StoredMedia, Response> {
    let media = sim.media(media_id).ok_or_else(|| unknown_object(media_id))?;
    let token = bearer_token(headers).ok_or_else(|| invalid_token("An access token is required."))?;
    match sim.directory.lookup(&media.phone_number_id).await {
        Some((expected, _)) if tokens_match(token, &expected) => Ok(media),
        // Another number's media is as good as missing.
        _ => Err(unknown_object(media_id)),
    }
}

/// `GET /{version}/{media_id}`: the media's download URL, type, hash and size.
async fn media_info(
    State(sim): State<Arc<Simulator>>,
    Path((version, media_id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if !is_api_version(&version) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            GraphError::new(CODE_UNKNOWN_PATH, format!("Unknown path components: /{version}/{media_id}"), None),
        );
    }
    let media = match owned_media(&sim, &media_id, &headers).await {
        Ok(media) => media,
        Err(refusal) => return refusal,
    };
    // Wherever the simulator is mounted, the download route sits beside this one.
    let suffix = format!("/{version}/{media_id}");
    let prefix = uri.path().strip_suffix(&suffix).unwrap_or_default();
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let body = json!({
        "messaging_product": MESSAGING_PRODUCT,
        "url": format!("http://{host}{prefix}/_media/{media_id}"),
        "mime_type": media.mime_type,
        "sha256": hex::encode(crate::media::sha256(&media.bytes)),
        "file_size": media.bytes.len(),
        "id": media_id,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /_media/{media_id}`: the file, for its number's token only.
async fn download_media(
    State(sim): State<Arc<Simulator>>,
    Path(media_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match owned_media(&sim, &media_id, &headers).await {
        Ok(media) => ([(axum::http::header::CONTENT_TYPE, media.mime_type)], media.bytes).into_response(),
        Err(refusal) => refusal,
    }
}

/// Checks the version and that a bearer token is present: the simulator
/// does not know which token belongs to which business account. Answers the
/// refusal, if any.
fn check_waba_call(version: &str, waba_id: &str, headers: &HeaderMap) -> Option<Response> {
    if !is_api_version(version) || waba_id.is_empty() || !waba_id.bytes().all(|b| b.is_ascii_digit()) {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            GraphError::new(CODE_UNKNOWN_PATH, format!("Unknown path components: /{version}/{waba_id}"), None),
        ));
    }
    if bearer_token(headers).is_none() {
        return Some(invalid_token("An access token is required to request this resource."));
    }
    None
}

/// `POST /{version}/{waba_id}/message_templates`.
async fn create_template(
    State(sim): State<Arc<Simulator>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_waba_call(&version, &waba_id, &headers) {
        return r;
    }
    let submission = match serde_json::from_slice::<crate::templates::TemplateSubmission>(&body) {
        Ok(s) if !s.name.is_empty() && !s.language.is_empty() && !s.components.is_empty() => s,
        Ok(_) => return invalid_parameter("name, language and components are required".to_owned()),
        Err(e) => return invalid_parameter(format!("the body is not a template: {e}")),
    };
    match sim.submit_template(&waba_id, submission) {
        Some(created) => (StatusCode::OK, Json(created)).into_response(),
        None => invalid_parameter("a template with this name and language exists already".to_owned()),
    }
}

/// `GET /{version}/{waba_id}/message_templates`.
async fn list_templates(
    State(sim): State<Arc<Simulator>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_waba_call(&version, &waba_id, &headers) {
        return r;
    }
    (StatusCode::OK, Json(json!({ "data": sim.templates_of(&waba_id) }))).into_response()
}

#[derive(Deserialize)]
struct DeleteTemplate {
    name: String,
}

/// `DELETE /{version}/{waba_id}/message_templates?name=`.
async fn delete_template(
    State(sim): State<Arc<Simulator>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<DeleteTemplate>,
) -> Response {
    if let Some(r) = check_waba_call(&version, &waba_id, &headers) {
        return r;
    }
    if sim.delete_templates(&waba_id, &q.name) {
        (StatusCode::OK, Json(json!({ "success": true }))).into_response()
    } else {
        invalid_parameter(format!("no template named {}", q.name))
    }
}

/// The body of `POST /_inbound/{phone_number_id}`.
#[derive(Deserialize)]
struct InboundRequest {
    /// The customer's WhatsApp id.
    from: String,
    /// The customer's profile name.
    #[serde(default)]
    name: Option<String>,
    /// A text message's body.
    #[serde(default)]
    text: Option<String>,
    /// Another message type, its object under the key of that name.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// The business message the customer replies to.
    #[serde(default)]
    context_message_id: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl InboundRequest {
    fn into_spec(mut self) -> Result<InboundSpec, String> {
        let (kind, content) = match (self.kind, self.text) {
            (None, Some(text)) => ("text".to_owned(), json!({ "body": text })),
            (Some(kind), Some(text)) if kind == "text" => (kind, json!({ "body": text })),
            (Some(kind), None) => {
                let content = self
                    .rest
                    .remove(&kind)
                    .ok_or_else(|| format!("a message of type {kind} needs its {kind} object"))?;
                (kind, content)
            }
            (Some(_), Some(_)) => return Err("text only goes with type text".to_owned()),
            (None, None) => return Err("give text, or type with its object".to_owned()),
        };
        Ok(InboundSpec { from: self.from, name: self.name, kind, content, context_message_id: self.context_message_id })
    }
}

/// `POST /_inbound/{phone_number_id}`: a customer writes.
async fn inbound(State(sim): State<Arc<Simulator>>, Path(phone_number_id): Path<String>, body: Bytes) -> Response {
    let spec = match serde_json::from_slice::<InboundRequest>(&body)
        .map_err(|error| format!("the body is not a valid inbound message: {error}"))
        .and_then(InboundRequest::into_spec)
    {
        Ok(spec) => spec,
        Err(reason) => return invalid_parameter(reason),
    };
    match sim.inject_inbound(&phone_number_id, spec).await {
        Ok(wamid) => (StatusCode::ACCEPTED, Json(json!({ "wamid": wamid }))).into_response(),
        Err(InboundError::UnknownNumber(id)) => graph_error(
            StatusCode::NOT_FOUND,
            GraphError::new(CODE_INVALID_PARAMETER, format!("Unknown phone_number_id {id}"), None),
        ),
        Err(InboundError::Invalid(reason)) => invalid_parameter(reason),
    }
}

/// Graph API versions look like `v26.0`.
fn is_api_version(version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|number| number.split_once('.')) else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    digits(major) && digits(minor)
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn invalid_token(message: &str) -> Response {
    graph_error(StatusCode::UNAUTHORIZED, GraphError::new(CODE_AUTH, message, None))
}

fn invalid_parameter(details: String) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        GraphError::new(CODE_INVALID_PARAMETER, "(#100) Invalid parameter", Some(details)),
    )
}

/// A Graph error answer with a fresh trace id, as Meta's carry one.
fn graph_error(status: StatusCode, mut error: GraphError) -> Response {
    error.fbtrace_id = Some(uuid::Uuid::new_v4().simple().to_string());
    (status, Json(GraphErrorBody { error })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(is_api_version("v26.0"));
        assert!(is_api_version("v9.12"));
        assert!(!is_api_version("26.0"));
        assert!(!is_api_version("v26"));
        assert!(!is_api_version("vx.0"));
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }
}
