//! A webhook sink for calibrating the generator: answers every request on 127.0.0.1 with 200
//! at once, so a run against it measures the generator's own ceiling.
//!
//! `cargo run --release -p parley-loadgen --example sink [port]` (default 3999), then
//! `parley-loadgen --url http://127.0.0.1:3999/webhooks/whatsapp ...`.

use std::convert::Infallible;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map(|p| p.parse()).transpose()?.unwrap_or(3999);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("sink listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                // Read the whole body, as a real endpoint must before answering.
                let _ = request.into_body().collect().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
