//! The conformance suite of the WhatsApp port: what every [`WhatsAppApi`]
//! adapter must do, whichever service stands behind it.
//!
//! An adapter's tests call [`run_whatsapp_api_suite`] with a live instance
//! and a [`SuiteSetup`] naming a number it can send from; the suite panics,
//! failing the test, at the first expectation the adapter does not meet.

use bytes::Bytes;

use crate::client::{Credentials, SendError, WhatsAppApi};
use crate::errors::ErrorKind;
use crate::media::{sha256_matches, MediaUpload};
use crate::send::SendRequest;

/// What the suite needs to know about the service behind the adapter.
#[derive(Debug, Clone)]
pub struct SuiteSetup {
    /// A number the service knows, with its valid token.
    pub credentials: Credentials,
    /// A customer the number may send text to.
    pub recipient: String,
    /// A phone_number_id the service does not know.
    pub unknown_phone_number_id: String,
}

/// Runs every case against `api`.
pub async fn run_whatsapp_api_suite(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    sends_text(api, setup).await;
    gives_each_send_its_own_wamid(api, setup).await;
    accepts_reply_context_and_callback_data(api, setup).await;
    refuses_a_bad_token(api, setup).await;
    refuses_an_unknown_number(api, setup).await;
    refuses_an_invalid_message(api, setup).await;
    media_round_trips(api, setup).await;
    refuses_media_of_another_token(api, setup).await;
}

fn png_upload() -> MediaUpload {
    // A PNG signature and a few bytes of every value: binary-safe round trip.
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(0..=255u8);
    MediaUpload { mime_type: "image/png".to_owned(), filename: "conformance.png".to_owned(), bytes: Bytes::from(bytes) }
}

async fn media_round_trips(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let upload = png_upload();
    let media_id = api
        .upload_media(&setup.credentials, &upload)
        .await
        .unwrap_or_else(|error| panic!("a valid upload failed: {error}"));
    assert!(!media_id.is_empty(), "an upload answers a media id");
    let info = api
        .media_info(&setup.credentials, &media_id)
        .await
        .unwrap_or_else(|error| panic!("looking up an uploaded media id failed: {error}"));
    assert_eq!(info.id, media_id);
    assert_eq!(info.mime_type, "image/png");
    assert_eq!(info.file_size, upload.bytes.len() as u64);
    assert!(sha256_matches(&info.sha256, &upload.bytes), "the look-up's sha256 {} is not the file's", info.sha256);
    let bytes = api
        .download_media(&setup.credentials, &info.url, 1024 * 1024)
        .await
        .unwrap_or_else(|error| panic!("downloading {} failed: {error}", info.url));
    assert_eq!(bytes, upload.bytes, "the download is the uploaded file");
    let capped = api.download_media(&setup.credentials, &info.url, 10).await;
    assert!(capped.is_err(), "a download over the cap is refused");
    let sent = api
        .send(
            &setup.credentials,
            &SendRequest {
                to: setup.recipient.clone(),
                kind: "image".to_owned(),
                content: serde_json::json!({ "id": media_id, "caption": "conformance" }),
                context_message_id: None,
                biz_opaque_callback_data: None,
            },
        )
        .await;
    if let Err(error) = sent {
        panic!("a send by uploaded media id failed: {error}");
    }
}

async fn refuses_media_of_another_token(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let media_id = api.upload_media(&setup.credentials, &png_upload()).await.expect("upload");
    let stranger = Credentials {
        phone_number_id: setup.credentials.phone_number_id.clone(),
        access_token: format!("{}-not-the-token", setup.credentials.access_token),
    };
    let upload = api.upload_media(&stranger, &png_upload()).await;
    expect_api_kind(upload.map(|_| ()), ErrorKind::AuthError, "an upload with a bad token");
    let info = api.media_info(&stranger, &media_id).await;
    assert!(info.is_err(), "a look-up with another token must fail, got {info:?}");
    let unknown = api.media_info(&setup.credentials, "1").await;
    expect_api_kind(unknown.map(|_| ()), ErrorKind::InvalidParameter, "an unknown media id");
}

async fn sends_text(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let request = SendRequest::text(&setup.recipient, "conformance: hello");
    let accepted = api
        .send(&setup.credentials, &request)
        .await
        .unwrap_or_else(|error| panic!("a valid text send failed: {error}"));
    assert!(
        accepted.wamid.starts_with("wamid.") && accepted.wamid.len() > "wamid.".len(),
        "the wamid {:?} is not shaped like WhatsApp's",
        accepted.wamid
    );
}

async fn gives_each_send_its_own_wamid(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let request = SendRequest::text(&setup.recipient, "conformance: same text");
    let first = api.send(&setup.credentials, &request).await;
    let second = api.send(&setup.credentials, &request).await;
    match (first, second) {
        (Ok(first), Ok(second)) => assert_ne!(first.wamid, second.wamid, "two sends got the same wamid"),
        (first, second) => panic!("repeated sends failed: {first:?}, {second:?}"),
    }
}

async fn accepts_reply_context_and_callback_data(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let first = api
        .send(&setup.credentials, &SendRequest::text(&setup.recipient, "conformance: first"))
        .await
        .unwrap_or_else(|error| panic!("a valid text send failed: {error}"));
    let mut reply = SendRequest::text(&setup.recipient, "conformance: reply");
    reply.context_message_id = Some(first.wamid);
    reply.biz_opaque_callback_data = Some("conformance-callback".to_owned());
    if let Err(error) = api.send(&setup.credentials, &reply).await {
        panic!("a reply with callback data failed: {error}");
    }
}

async fn refuses_a_bad_token(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let credentials = Credentials {
        phone_number_id: setup.credentials.phone_number_id.clone(),
        access_token: format!("{}-not-the-token", setup.credentials.access_token),
    };
    let outcome = api.send(&credentials, &SendRequest::text(&setup.recipient, "conformance: bad token")).await;
    expect_api_kind(outcome.map(|_| ()), ErrorKind::AuthError, "a bad token");
}

async fn refuses_an_unknown_number(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let credentials = Credentials {
        phone_number_id: setup.unknown_phone_number_id.clone(),
        access_token: setup.credentials.access_token.clone(),
    };
    let outcome = api.send(&credentials, &SendRequest::text(&setup.recipient, "conformance: unknown number")).await;
    expect_api_kind(outcome.map(|_| ()), ErrorKind::InvalidParameter, "an unknown number");
}

async fn refuses_an_invalid_message(api: &dyn WhatsAppApi, setup: &SuiteSetup) {
    let outcome = api.send(&setup.credentials, &SendRequest::text(&setup.recipient, "")).await;
    expect_api_kind(outcome.map(|_| ()), ErrorKind::InvalidParameter, "an empty text body");
}

fn expect_api_kind(outcome: Result<(), SendError>, expected: ErrorKind, case: &str) {
    match outcome {
        Err(SendError::Api { kind, .. }) if kind == expected => {}
        other => panic!("{case} should fail as an API error of kind {expected}, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use tokio::net::TcpListener;

    use super::*;
    use crate::client::GraphClient;
    use crate::simulator::{router, NumberProfile, Simulator, SimulatorConfig, StaticDirectory};

    /// Serves `app` on an ephemeral loopback port; returns its base URL.
    async fn serve(app: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn graph_client_against_the_simulator_passes() {
        let sink = serve(Router::new().route("/", post(|| async { StatusCode::OK }))).await;
        let directory =
            StaticDirectory::new().with_number("106540352242922", "token", "secret", NumberProfile::default());
        let simulator = Simulator::new(
            SimulatorConfig {
                webhook_url: format!("{sink}/"),
                status_delay: Duration::from_millis(5),
                read_receipts: true,
            },
            Arc::new(directory),
        );
        let base = serve(Router::new().nest("/simulator", router(simulator))).await;
        let client = GraphClient::new(&format!("{base}/simulator"), "v26.0", Duration::from_secs(5));
        let setup = SuiteSetup {
            credentials: Credentials {
                phone_number_id: "106540352242922".to_owned(),
                access_token: "token".to_owned(),
            },
            recipient: "16505551234".to_owned(),
            unknown_phone_number_id: "999999999999999".to_owned(),
        };
        run_whatsapp_api_suite(&client, &setup).await;
    }

    #[tokio::test]
    async fn graph_client_against_the_strict_fake_passes() {
        let fake = crate::fake::StrictGraphFake::start("v26.0", &[("106540352242922", "token")]).await.expect("fake");
        let client = GraphClient::new(fake.base_url(), "v26.0", Duration::from_secs(5));
        let setup = SuiteSetup {
            credentials: Credentials {
                phone_number_id: "106540352242922".to_owned(),
                access_token: "token".to_owned(),
            },
            recipient: "16505551234".to_owned(),
            unknown_phone_number_id: "999999999999999".to_owned(),
        };
        run_whatsapp_api_suite(&client, &setup).await;
    }
}
