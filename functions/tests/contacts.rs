//! End-to-end: the contact directory, opt-out by API and by the tenant's own
//! keywords, CSV import with a report per row.

mod common;

use axum::http::StatusCode;
use common::*;
use parley_app::auth::Role;
use serde_json::{json, Value};

async fn setup() -> (Server, String) {
    let server = Server::start(WhatsApp::Simulator(std::time::Duration::from_millis(50))).await;
    let token = server.token("acme", Role::Owner);
    let (status, body) = server.register_number(&token, PNID, APP_SECRET).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (server, token)
}

async fn patch(server: &Server, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = server.http.patch(format!("{}{path}", server.base)).bearer_auth(token).json(body).send().await.unwrap();
    read(r).await
}

async fn put(server: &Server, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = server.http.put(format!("{}{path}", server.base)).bearer_auth(token).json(body).send().await.unwrap();
    read(r).await
}

async fn import(server: &Server, token: &str, csv: &str) -> (StatusCode, Value) {
    let r = server
        .http
        .post(format!("{}/v1/contacts/import", server.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    read(r).await
}

fn wa_ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|c| c["wa_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn contacts_are_created_read_updated_and_listed() {
    let (server, token) = setup().await;
    let body = json!({"wa_id": "351912345678", "name": "Ana", "tags": ["VIP"], "attributes": {"city": "Lisbon"}});
    let (status, created) = server.post(&token, "/v1/contacts", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Ana");
    assert_eq!(created["tags"], json!(["vip"]));
    assert_eq!(created["opt_in_state"], "opted_in");
    let (status, again) = server.post(&token, "/v1/contacts", &body).await;
    assert_eq!((status, again["code"].as_str()), (StatusCode::CONFLICT, Some("contact_exists")));
    let (status, bad) = server.post(&token, "/v1/contacts", &json!({"wa_id": "+351"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["field"], "wa_id");
    let (status, _) = server.post(&token, "/v1/contacts", &json!({"wa_id": "351912345679", "colour": "red"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");

    let (status, changed) = patch(
        &server,
        &token,
        "/v1/contacts/351912345678",
        &json!({"name": null, "attributes": {"plan": "gold", "seats": 3}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], Value::Null);
    assert_eq!(changed["attributes"], json!({"plan": "gold", "seats": 3}));
    assert_eq!(changed["tags"], json!(["vip"]), "absent fields are unchanged");
    let (status, _) = patch(&server, &token, "/v1/contacts/351999999999", &json!({"tags": []})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    server.post(&token, "/v1/contacts", &json!({"wa_id": "14155550100"})).await;
    server.settled().await;
    let (_, page) = server.get(&token, "/v1/contacts").await;
    assert_eq!(wa_ids(&page), ["14155550100", "351912345678"]);
    assert_eq!(page["items"][1]["attributes"]["plan"], "gold", "sealed attributes are opened for the API");
    let (_, page) = server.get(&token, "/v1/contacts?limit=1").await;
    assert_eq!(wa_ids(&page), ["14155550100"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = server.get(&token, &format!("/v1/contacts?limit=1&cursor={cursor}")).await;
    assert_eq!(wa_ids(&page), ["351912345678"]);
    assert!(page["next_cursor"].is_null());
    let (_, page) = server.get(&token, "/v1/contacts?tag=vip").await;
    assert_eq!(wa_ids(&page), ["351912345678"]);

    let other = server.token("globex", Role::Owner);
    let (_, page) = server.get(&other, "/v1/contacts").await;
    assert!(wa_ids(&page).is_empty(), "never across tenants");
    let (status, _) = server.get(&other, "/v1/contacts/351912345678").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = patch(&server, &other, "/v1/contacts/351912345678", &json!({"tags": []})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.post(&other, "/v1/contacts/351912345678/opt-out", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn api_opt_out_refuses_sends_until_opt_in() {
    let (server, token) = setup().await;
    server.webhook(&fresh(fixture("inbound_text.json")), APP_SECRET).await;
    let path = format!("/v1/contacts/{CUSTOMER}");
    let (status, c) = server.post(&token, &format!("{path}/opt-out"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["opt_in_state"], "opted_out");
    assert_eq!(c["opt_out_source"], "api");
    let send = json!({"from": PNID, "to": CUSTOMER, "type": "text", "text": {"body": "hi"}});
    let (status, refused) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("opted_out")));
    server.settled().await;
    let (_, page) = server.get(&token, "/v1/contacts?opt_in_state=opted_out").await;
    assert_eq!(wa_ids(&page), [CUSTOMER]);

    let (status, c) = server.post(&token, &format!("{path}/opt-in"), &json!({})).await;
    assert_eq!((status, c["opt_in_state"].as_str()), (StatusCode::OK, Some("opted_in")));
    let (status, _) = server.post(&token, "/v1/messages", &send).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.stop().await;
}

#[tokio::test]
async fn tenant_keywords_opt_out_in_their_own_language() {
    let (server, token) = setup().await;
    let agent = server.token("acme", Role::Agent);
    let keywords = json!({"opt_out": ["parar", "SAIR"], "opt_in": ["voltar"]});
    let (status, _) = put(&server, &agent, "/v1/settings/opt-keywords", &keywords).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins configure keywords");
    let (status, body) = put(&server, &token, "/v1/settings/opt-keywords", &keywords).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"opt_out": ["PARAR", "SAIR"], "opt_in": ["VOLTAR"]}));
    let (status, body) =
        put(&server, &token, "/v1/settings/opt-keywords", &json!({"opt_out": ["start"], "opt_in": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let mut sair = fresh(fixture("inbound_text.json"));
    sair["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!("Sair");
    server.webhook(&sair, APP_SECRET).await;
    let (_, c) = server.get(&token, &format!("/v1/contacts/{CUSTOMER}")).await;
    assert_eq!(c["opt_in_state"], "opted_out");
    assert_eq!(c["opt_out_source"], "keyword");

    // Another tenant's keywords are its own: PARAR is only text there.
    let other = server.token("globex", Role::Owner);
    let (_, theirs) = server.get(&other, "/v1/settings/opt-keywords").await;
    assert_eq!(theirs, json!({"opt_out": [], "opt_in": []}));
    server.stop().await;
}

#[tokio::test]
async fn csv_import_creates_updates_and_reports_each_bad_row() {
    let (server, token) = setup().await;
    server.post(&token, "/v1/contacts", &json!({"wa_id": "14155550100", "attributes": {"plan": "free"}})).await;
    let csv = "wa_id,name,tags,city\n\
               351912345678,Ana,vip;billing,Lisbon\n\
               14155550100,Bob,,Austin\n\
               +1 415,Carl,,\n\
               14155550101,Dee,bad tag,\n\
               14155550102,Eve\n\
               14155550100,Bob,,Austin\n";
    let (status, report) = import(&server, &token, csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 1);
    assert_eq!(report["updated"], 1);
    assert_eq!(report["unchanged"], 1);
    assert_eq!(report["failed"], 3);
    let errors = report["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [4, 5, 6]);
    assert_eq!(errors[0]["field"], "wa_id");
    assert_eq!(errors[1]["field"], "tags");
    assert_eq!(errors[1]["wa_id"], "14155550101");

    let (_, ana) = server.get(&token, "/v1/contacts/351912345678").await;
    assert_eq!(ana["tags"], json!(["billing", "vip"]));
    assert_eq!(ana["attributes"], json!({"city": "Lisbon"}));
    let (_, bob) = server.get(&token, "/v1/contacts/14155550100").await;
    assert_eq!(bob["name"], "Bob");
    assert_eq!(bob["attributes"], json!({"plan": "free", "city": "Austin"}), "attributes are merged");
    let (status, _) = server.get(&token, "/v1/contacts/14155550101").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a refused row changes nothing");

    let (status, body) = import(&server, &token, "name\nAna\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let r = server
        .http
        .post(format!("{}/v1/contacts/import", server.base))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(read(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    server.stop().await;
}
