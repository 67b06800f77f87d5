//! Usage limits end to end: the simulator prices template sends as Meta
//! does, the usage read model meters them, and the schedule tells the
//! tenant once when it reaches 80 % of its plan's limit.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use parley_app::services::scheduler::ScheduleState;
use serde_json::json;

/// A server whose tenant `acme` is on the free plan (100 billable messages,
/// no overage) with its number and an approved utility template; and the
/// owner's token.
async fn free_plan_with_a_utility_template() -> (Server, String) {
    let server = Server::start(WhatsApp::Simulator(Duration::from_millis(5))).await;
    let token = server.token("acme", Role::Owner);
    assert_eq!(server.register_number(&token, PNID, APP_SECRET).await.0, StatusCode::CREATED);
    let (code, plan) =
        server.post(&token, "/v1/billing/plan", &json!({"plan": "free", "email": "owner@acme.test"})).await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    server.create_template(&token, "order_update", "UTILITY", "Your order has shipped.").await;
    (server, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_at_80_percent_of_the_limit_is_reported_once() {
    let (server, token) = free_plan_with_a_utility_template().await;
    // The free plan's limit is 100 billable messages: 80 is the warning level.
    // Each goes to another customer, as WhatsApp paces sends to any one of them.
    for i in 0..80 {
        let template = json!({"from": PNID, "to": format!("1650555{i:04}"), "type": "template",
                              "template": {"name": "order_update", "language": {"code": "en_US"}}});
        assert_eq!(server.post(&token, "/v1/messages", &template).await.0, StatusCode::ACCEPTED);
    }
    let usage = server
        .eventually(Duration::from_secs(20), || async {
            let (_, u) = server.get(&token, "/v1/billing/usage").await;
            (u["billable"] == 80).then_some(u)
        })
        .await;
    assert_eq!((usage["limit_state"].as_str(), usage["marketing_allowed"].as_bool()), (Some("warning"), Some(true)));
    let mut schedule = ScheduleState::default();
    let now = server.app.clock.now();
    assert_eq!(server.ops.run_schedule(&mut schedule, now).await.unwrap().usage_notices, 1);
    assert_eq!(server.ops.run_schedule(&mut schedule, now).await.unwrap().usage_notices, 0, "told once");
    let mails = server.outbox().await;
    let notice = mails.iter().find(|m| m.to == "owner@acme.test").expect("a usage notice");
    assert!(notice.subject.contains("at 80 %") && notice.text.contains("80 of the 100"), "{notice:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_stops_at_the_limit_of_a_plan_without_overage() {
    let (server, token) = free_plan_with_a_utility_template().await;
    server.create_template(&token, "spring_sale", "MARKETING", "Spring sale: 20 % off.").await;
    let send = |name: &str, i: u32| {
        json!({"from": PNID, "to": format!("1650555{i:04}"), "type": "template",
               "template": {"name": name, "language": {"code": "en_US"}}})
    };
    assert_eq!(server.post(&token, "/v1/messages", &send("spring_sale", 0)).await.0, StatusCode::ACCEPTED);
    for i in 1..100 {
        assert_eq!(server.post(&token, "/v1/messages", &send("order_update", i)).await.0, StatusCode::ACCEPTED);
    }
    // The free plan's 100 billable messages are used up.
    server
        .eventually(Duration::from_secs(20), || async {
            let (_, u) = server.get(&token, "/v1/billing/usage").await;
            (u["billable"] == 100).then_some(())
        })
        .await;
    let (code, refused) = server.post(&token, "/v1/messages", &send("spring_sale", 100)).await;
    assert_eq!((code, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("usage_limit_reached")));
    // Service messages still go out.
    assert_eq!(server.post(&token, "/v1/messages", &send("order_update", 101)).await.0, StatusCode::ACCEPTED);

    // A plan with overage lifts the block.
    let (code, plan) = server.post(&token, "/v1/billing/plan", &json!({"plan": "growth"})).await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    assert_eq!(server.post(&token, "/v1/messages", &send("spring_sale", 102)).await.0, StatusCode::ACCEPTED);
    server.stop().await;
}
