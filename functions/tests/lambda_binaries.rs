//! The Lambda binaries themselves, started the way Lambda starts them: as
//! processes polling a (local) Runtime API, configured only by the
//! environment `template.yaml` gives each function, against the AWS API
//! emulator (`PARLEY_AWS_ENDPOINT`).
//!
//! Each test prints the binary's init time (spawn to first poll). These are
//! the debug builds `cargo test` makes; `PARLEY_LAMBDA_BIN_DIR` points the
//! tests at other builds instead (for example release builds, to measure a
//! deployable binary's init).

#![cfg(feature = "lambda")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::runtime_api::{start_function, Outcome, RuntimeApi};
use common::stage::{create_stage, stage_env};
use parley_aws::testing::{create_user_pool, emulator_config};
use serde_json::{json, Value};

const INIT_TIMEOUT: Duration = Duration::from_secs(120);

fn binary(name: &str, built: &str) -> PathBuf {
    match std::env::var_os("PARLEY_LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(built),
    }
}

/// Every variable a function of a fresh stage gets, and its handler.
async fn function_env(handler: &str) -> Vec<(&'static str, String)> {
    let sdk = emulator_config().await;
    let mut env = stage_env(&create_stage(&sdk).await);
    let (pool, client) = create_user_pool(&aws_sdk_cognitoidentityprovider::Client::new(&sdk)).await;
    env.push(("PARLEY_USER_POOL_ID", pool));
    env.push(("PARLEY_USER_POOL_CLIENT_ID", client));
    env.push(("PARLEY_HANDLER", handler.to_owned()));
    env
}

/// An API Gateway HTTP API (payload 2.0) event, as Lambda delivers it.
fn http_api_event(method: &str, path: &str, query: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": { "accept": "application/json", "host": "parleyapi.execute-api.us-east-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "parleyapi",
            "domainName": "parleyapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "parleyapi",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "05/Dec/2026:17:00:00 +0000",
            "timeEpoch": 1_796_490_000_000u64
        },
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_runs_the_window_closer_under_the_runtime_api() {
    let api = RuntimeApi::start().await;
    let bin = binary("parley-worker", env!("CARGO_BIN_EXE_parley-worker"));
    let (child, started) = start_function(&bin, &api, &function_env("window-closer").await);
    let polled = api.first_poll(INIT_TIMEOUT).await.expect("the worker finishes its init and polls");
    eprintln!("parley-worker (window-closer) init: {} ms", (polled - started).as_millis());

    // What EventBridge Scheduler hands the function: the schedule's input.
    let outcome = api.invoke(json!({})).await;
    assert_eq!(outcome, Outcome::Response(json!({ "expired": 0 })), "no conversation in a fresh stage");
    // The process keeps serving: a second invocation on the same instance.
    assert_eq!(api.invoke(json!({})).await, Outcome::Response(json!({ "expired": 0 })));
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_binary_answers_http_api_events_per_endpoint_group() {
    let api = RuntimeApi::start().await;
    let bin = binary("parley-http", env!("CARGO_BIN_EXE_parley-http"));
    let (child, started) = start_function(&bin, &api, &function_env("api").await);
    let polled = api.first_poll(INIT_TIMEOUT).await.expect("the API function finishes its init and polls");
    eprintln!("parley-http (api) init: {} ms", (polled - started).as_millis());

    let Outcome::Response(answer) = api.invoke(http_api_event("GET", "/v1/conversations", "")).await else {
        panic!("a response, not an invocation error");
    };
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let content_type = answer["headers"]["content-type"].as_str().unwrap_or_default();
    assert_eq!(content_type, "application/problem+json", "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body["status"], 401);
    drop(child);

    // The webhook group serves only the webhook: a verification handshake with
    // a token no number has is refused, and API paths are not there.
    let api = RuntimeApi::start().await;
    let (child, _) = start_function(&bin, &api, &function_env("webhooks").await);
    api.first_poll(INIT_TIMEOUT).await.expect("the webhook function polls");
    let handshake = "hub.mode=subscribe&hub.verify_token=nobody&hub.challenge=1158201444";
    let Outcome::Response(answer) = api.invoke(http_api_event("GET", "/webhooks/whatsapp", handshake)).await else {
        panic!("a response");
    };
    assert_eq!(answer["statusCode"], 403, "{answer}");
    let Outcome::Response(answer) = api.invoke(http_api_event("GET", "/v1/conversations", "")).await else {
        panic!("a response");
    };
    assert_eq!(answer["statusCode"], 404, "{answer}");
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_missing_configuration_fails_its_init_and_names_what_is_missing() {
    let api = RuntimeApi::start().await;
    let bin = binary("parley-worker", env!("CARGO_BIN_EXE_parley-worker"));
    let env: Vec<_> =
        function_env("projector").await.into_iter().filter(|(name, _)| *name != "PARLEY_EVENTS_TABLE").collect();
    let (child, _) = start_function(&bin, &api, &env);
    let output =
        tokio::time::timeout(INIT_TIMEOUT, child.wait_with_output()).await.expect("the process ends by itself");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PARLEY_EVENTS_TABLE"), "{stderr}");
    assert!(api.first_poll(Duration::from_millis(10)).await.is_none(), "it never asked for work");
}
