//! The Graph API adapter of the WhatsApp port: `POST
//! {base}/{version}/{phone_number_id}/messages` over HTTPS (or plain HTTP for
//! the simulator on loopback).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{redirect, StatusCode, Url};
use thiserror::Error;

use super::{Credentials, SendError, WhatsAppApi};
use crate::errors::classify;
use crate::graph_error::GraphErrorBody;
use crate::media::{MediaInfo, MediaUpload, UploadedMedia};
use crate::send::{SendAccepted, SendRequest, MESSAGING_PRODUCT};
use crate::templates::{CreatedTemplate, RemoteTemplate, TemplatePage, TemplateSubmission, WabaCredentials};

/// Why a [`GraphClient`] could not be built.
#[derive(Debug, Error)]
pub enum ClientConfigError {
    /// The base URL is not an absolute http(s) URL.
    #[error("invalid WhatsApp API base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API version is empty or contains a path separator.
    #[error("invalid WhatsApp API version {0:?}")]
    Version(String),
    /// The HTTP client could not be set up (TLS backend).
    #[error("the HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}

/// Sends through the Graph API (or anything that speaks it, such as the
/// built-in simulator).
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    version: String,
}

impl GraphClient {
    /// A client for `base_url` (such as `https://graph.facebook.com` or
    /// `http://127.0.0.1:3000/simulator`) and `api_version` (such as
    /// `v26.0`), giving up on a send after `timeout`.
    ///
    /// # Panics
    ///
    /// When the configuration is invalid (see [`GraphClient::try_new`] for
    /// the fallible form): a bad base URL or version is a start-up mistake
    /// best reported at once.
    pub fn new(base_url: &str, api_version: &str, timeout: Duration) -> Self {
        match Self::try_new(base_url, api_version, timeout) {
            Ok(client) => client,
            Err(error) => panic!("{error}"),
        }
    }

    /// Like [`GraphClient::new`], reporting invalid configuration as an error.
    pub fn try_new(base_url: &str, api_version: &str, timeout: Duration) -> Result<Self, ClientConfigError> {
        let base = parse_base(base_url)?;
        let version = api_version.trim_matches('/');
        if version.is_empty() || version.contains(['/', '?', '#']) {
            return Err(ClientConfigError::Version(api_version.to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirected POST would be re-sent somewhere else: never follow.
            .redirect(redirect::Policy::none())
            .build()?;
        Ok(GraphClient { http, base, version: version.to_owned() })
    }

    /// The URL sends from `phone_number_id` go to.
    fn messages_url(&self, phone_number_id: &str) -> Result<Url, SendError> {
        if phone_number_id.is_empty() {
            return Err(SendError::NotSent("the phone_number_id is empty".to_owned()));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| SendError::NotSent("the base URL cannot take a path".to_owned()))?
            .pop_if_empty()
            // Each push percent-encodes its segment, so an id cannot escape
            // its place in the path.
            .push(&self.version)
            .push(phone_number_id)
            .push("messages");
        Ok(url)
    }
}

impl GraphClient {
    /// `{base}/{version}/{waba_id}/{edge}`.
    fn waba_url(&self, waba_id: &str, edge: &str) -> Result<Url, SendError> {
        if waba_id.is_empty() {
            return Err(SendError::NotSent("the WABA id is empty".to_owned()));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| SendError::NotSent("the base URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .push(&self.version)
            .push(waba_id)
            .push(edge);
        Ok(url)
    }
}

impl GraphClient {
    /// `{base}/{version}/{segments...}`, each segment percent-encoded.
    fn graph_url(&self, segments: &[&str]) -> Result<Url, SendError> {
        if segments.iter().any(|s| s.is_empty()) {
            return Err(SendError::NotSent("an id in the request path is empty".to_owned()));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| SendError::NotSent("the base URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .push(&self.version)
            .extend(segments);
        Ok(url)
    }

    /// Checks a download URL before the token is sent to it: https, or plain
    /// http only when the client itself talks plain http (the simulator and
    /// test fakes on loopback).
    fn download_url(&self, url: &str) -> Result<Url, SendError> {
        let url = Url::parse(url).map_err(|e| SendError::NotSent(format!("the media URL is invalid: {e}")))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.base.scheme() == "http" => Ok(url),
            other => Err(SendError::NotSent(format!("the media URL's scheme {other} is not allowed"))),
        }
    }
}

/// Media calls move whole files: they get longer than a send's timeout.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(300);

/// Checks a base URL once, at construction.
fn parse_base(base_url: &str) -> Result<Url, ClientConfigError> {
    let invalid = |reason: String| ClientConfigError::BaseUrl { url: base_url.to_owned(), reason };
    let url = Url::parse(base_url).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".to_owned()));
    }
    if url.cannot_be_a_base() {
        return Err(invalid("the URL cannot take a path".to_owned()));
    }
    Ok(url)
}

#[async_trait]
impl WhatsAppApi for GraphClient {
    async fn send(&self, creds: &Credentials, request: &SendRequest) -> Result<SendAccepted, SendError> {
        let url = self.messages_url(&creds.phone_number_id)?;
        let response =
            self.http.post(url).bearer_auth(&creds.access_token).json(request).send().await.map_err(transport_error)?;
        let status = response.status();
        // Headers came back, so Meta saw the request; losing the body now
        // leaves us not knowing whether the message went out.
        let body = response
            .bytes()
            .await
            .map_err(|error| SendError::Ambiguous(format!("reading the answer failed: {error}")))?;
        read_answer(status, &body)
    }

    async fn mark_read(&self, creds: &Credentials, wamid: &str) -> Result<(), SendError> {
        if wamid.is_empty() {
            return Err(SendError::NotSent("the wamid is empty".to_owned()));
        }
        let url = self.messages_url(&creds.phone_number_id)?;
        let body = serde_json::json!({ "messaging_product": MESSAGING_PRODUCT, "status": "read", "message_id": wamid });
        let response =
            self.http.post(url).bearer_auth(&creds.access_token).json(&body).send().await.map_err(transport_error)?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| SendError::Ambiguous(format!("reading the answer failed: {error}")))?;
        read_success(status, &body)
    }

    async fn create_template(
        &self,
        creds: &WabaCredentials,
        template: &TemplateSubmission,
    ) -> Result<CreatedTemplate, SendError> {
        let url = self.waba_url(&creds.waba_id, "message_templates")?;
        let response = self
            .http
            .post(url)
            .bearer_auth(&creds.access_token)
            .json(template)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, body) = read_body(response).await?;
        if !status.is_success() {
            return Err(read_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|error| SendError::Protocol {
            http_status: status.as_u16(),
            detail: format!("unexpected success body: {error}"),
        })
    }

    async fn list_templates(&self, creds: &WabaCredentials) -> Result<Vec<RemoteTemplate>, SendError> {
        let mut url = self.waba_url(&creds.waba_id, "message_templates")?;
        url.query_pairs_mut().append_pair("limit", "100");
        let mut out = Vec::new();
        // Follow `paging.next`, bounded: a business account has at most a few thousand templates.
        for _ in 0..MAX_TEMPLATE_PAGES {
            let response =
                self.http.get(url.clone()).bearer_auth(&creds.access_token).send().await.map_err(transport_error)?;
            let (status, body) = read_body(response).await?;
            if !status.is_success() {
                return Err(read_error(status, &body));
            }
            let page: TemplatePage = serde_json::from_slice(&body).map_err(|error| SendError::Protocol {
                http_status: status.as_u16(),
                detail: format!("unexpected template list: {error}"),
            })?;
            out.extend(page.data);
            match page.paging.and_then(|p| p.next).and_then(|n| Url::parse(&n).ok()) {
                // Only follow links to the same host: the token goes with them.
                Some(next) if next.host_str() == url.host_str() && next.port() == url.port() => url = next,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    async fn delete_template(&self, creds: &WabaCredentials, name: &str) -> Result<(), SendError> {
        let mut url = self.waba_url(&creds.waba_id, "message_templates")?;
        url.query_pairs_mut().append_pair("name", name);
        let response = self.http.delete(url).bearer_auth(&creds.access_token).send().await.map_err(transport_error)?;
        let (status, body) = read_body(response).await?;
        read_success(status, &body)
    }

    async fn upload_media(&self, creds: &Credentials, upload: &MediaUpload) -> Result<String, SendError> {
        let url = self.graph_url(&[&creds.phone_number_id, "media"])?;
        let file = reqwest::multipart::Part::bytes(upload.bytes.to_vec())
            .file_name(upload.filename.clone())
            .mime_str(&upload.mime_type)
            .map_err(|e| SendError::NotSent(format!("the MIME type {:?} is invalid: {e}", upload.mime_type)))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", MESSAGING_PRODUCT)
            .text("type", upload.mime_type.clone())
            .part("file", file);
        let response = self
            .http
            .post(url)
            .bearer_auth(&creds.access_token)
            .timeout(MEDIA_TIMEOUT)
            .multipart(form)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, body) = read_body(response).await?;
        if !status.is_success() {
            return Err(read_error(status, &body));
        }
        let uploaded: UploadedMedia = serde_json::from_slice(&body).map_err(|error| SendError::Protocol {
            http_status: status.as_u16(),
            detail: format!("unexpected upload answer: {error}"),
        })?;
        Ok(uploaded.id)
    }

    async fn media_info(&self, creds: &Credentials, media_id: &str) -> Result<MediaInfo, SendError> {
        let mut url = self.graph_url(&[media_id])?;
        // Scopes the look-up to the number, as Meta recommends.
        url.query_pairs_mut().append_pair("phone_number_id", &creds.phone_number_id);
        let response = self.http.get(url).bearer_auth(&creds.access_token).send().await.map_err(transport_error)?;
        let (status, body) = read_body(response).await?;
        if !status.is_success() {
            return Err(read_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|error| SendError::Protocol {
            http_status: status.as_u16(),
            detail: format!("unexpected media answer: {error}"),
        })
    }

    async fn download_media(&self, creds: &Credentials, url: &str, max_bytes: u64) -> Result<bytes::Bytes, SendError> {
        let url = self.download_url(url)?;
        let mut response = self
            .http
            .get(url)
            .bearer_auth(&creds.access_token)
            .timeout(MEDIA_TIMEOUT)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let (status, body) = read_body(response).await?;
            return Err(read_error(status, &body));
        }
        let too_large = || SendError::Protocol {
            http_status: status.as_u16(),
            detail: format!("the file is larger than {max_bytes} bytes"),
        };
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_large());
        }
        // Read chunk by chunk, so a server that lies about (or omits) the
        // length cannot make us hold more than the cap.
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| SendError::Ambiguous(format!("reading the file failed: {}", error_chain(&error))))?
        {
            if (out.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// At most this many pages of templates are read in one listing.
const MAX_TEMPLATE_PAGES: usize = 50;

async fn read_body(response: reqwest::Response) -> Result<(StatusCode, bytes::Bytes), SendError> {
    let status = response.status();
    let body =
        response.bytes().await.map_err(|error| SendError::Ambiguous(format!("reading the answer failed: {error}")))?;
    Ok((status, body))
}

/// Sorts a transport failure by whether the request can have reached Meta.
fn transport_error(error: reqwest::Error) -> SendError {
    // `is_connect` covers DNS, refused connections and TLS handshakes: the
    // request was never written. A builder error never left the process.
    // Everything else (timeouts, resets, broken bodies) happened after the
    // request may have been written.
    if error.is_connect() || error.is_builder() {
        SendError::NotSent(error_chain(&error))
    } else {
        SendError::Ambiguous(error_chain(&error))
    }
}

/// The error and its causes on one line, since reqwest's own message omits
/// the underlying I/O reason.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns an HTTP answer into the send's outcome.
fn read_answer(status: StatusCode, body: &[u8]) -> Result<SendAccepted, SendError> {
    let http_status = status.as_u16();
    if status.is_success() {
        return SendAccepted::from_response_body(body)
            .map_err(|error| SendError::Protocol { http_status, detail: format!("unexpected success body: {error}") });
    }
    Err(read_error(status, body))
}

/// Reads an answer of the shape `{"success": true}` (mark as read, deletes).
fn read_success(status: StatusCode, body: &[u8]) -> Result<(), SendError> {
    let http_status = status.as_u16();
    if !status.is_success() {
        return Err(read_error(status, body));
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.get("success").and_then(serde_json::Value::as_bool) == Some(true) => Ok(()),
        _ => Err(SendError::Protocol { http_status, detail: "the answer does not say success".to_owned() }),
    }
}

/// Turns an error answer into a [`SendError`].
fn read_error(status: StatusCode, body: &[u8]) -> SendError {
    let http_status = status.as_u16();
    match serde_json::from_slice::<GraphErrorBody>(body) {
        Ok(GraphErrorBody { error }) => SendError::Api {
            http_status,
            code: error.code,
            subcode: error.error_subcode,
            message: error.full_message(),
            kind: classify(http_status, Some(error.code)),
            fbtrace_id: error.fbtrace_id,
        },
        Err(error) => SendError::Protocol { http_status, detail: format!("unexpected error body: {error}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> GraphClient {
        GraphClient::try_new(base, "v26.0", Duration::from_secs(1)).expect("valid configuration")
    }

    #[test]
    fn url_keeps_a_base_path_and_encodes_the_number() {
        let with_prefix = client("http://127.0.0.1:3000/simulator/");
        assert_eq!(
            with_prefix.messages_url("106540352242922").expect("url").as_str(),
            "http://127.0.0.1:3000/simulator/v26.0/106540352242922/messages"
        );
        let plain = client("https://graph.facebook.com");
        assert_eq!(plain.messages_url("1/2").expect("url").as_str(), "https://graph.facebook.com/v26.0/1%2F2/messages");
    }

    #[test]
    fn bad_configuration_is_reported() {
        assert!(matches!(
            GraphClient::try_new("ftp://x", "v26.0", Duration::from_secs(1)),
            Err(ClientConfigError::BaseUrl { .. })
        ));
        assert!(matches!(
            GraphClient::try_new("not a url", "v26.0", Duration::from_secs(1)),
            Err(ClientConfigError::BaseUrl { .. })
        ));
        assert!(matches!(
            GraphClient::try_new("http://127.0.0.1", "v1/x", Duration::from_secs(1)),
            Err(ClientConfigError::Version(_))
        ));
    }

    #[test]
    fn unreadable_answers_are_protocol_errors() {
        let bad_success = read_answer(StatusCode::OK, b"{}");
        assert!(matches!(bad_success, Err(SendError::Protocol { http_status: 200, .. })));
        let html = read_answer(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        let Err(error) = html else {
            panic!("an HTML error page is not a success");
        };
        assert!(matches!(error, SendError::Protocol { http_status: 502, .. }));
        assert_eq!(error.kind(), Some(crate::errors::ErrorKind::Transient));
    }
}
