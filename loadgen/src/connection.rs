//! One keep-alive HTTP/1 connection to the target.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::report::Failure;
use crate::requests::PreparedRequest;
use crate::target::Target;

/// Header Meta signs webhooks with.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Longest wait for a loopback connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub(crate) async fn open(target: &Target) -> Result<Self, Failure> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
            .await
            .map_err(|_| Failure::Connect)?
            .map_err(|_| Failure::Connect)?;
        // Small requests and answers: send them at once.
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|_| Failure::Connect)?;
        // The connection task ends when the sender is dropped or the server closes; its error,
        // if any, shows up as a failed request.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// Whether the connection can carry another request.
    pub(crate) fn is_usable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one webhook and reads the whole answer; returns its status code.
    pub(crate) async fn post(&mut self, target: &Target, request: &PreparedRequest) -> Result<u16, Failure> {
        let mut http_request = Request::builder()
            .method(Method::POST)
            .uri(target.path_and_query.as_str())
            .body(Full::new(request.body.clone()))
            .map_err(|_| Failure::Io)?;
        let headers = http_request.headers_mut();
        headers.insert(HOST, HeaderValue::from_str(target.authority.as_str()).map_err(|_| Failure::Io)?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
        headers.insert(SIGNATURE_HEADER, request.signature.clone());

        self.sender.ready().await.map_err(|_| Failure::Io)?;
        let response = self.sender.send_request(http_request).await.map_err(|_| Failure::Io)?;
        let status = response.status().as_u16();
        // Reading the body to its end frees the connection for the next request.
        response.into_body().collect().await.map_err(|_| Failure::Io)?;
        Ok(status)
    }
}
