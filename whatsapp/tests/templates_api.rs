//! The Graph client's template calls against the built-in simulator.

use std::sync::Arc;
use std::time::Duration;

use parley_whatsapp::simulator::{Simulator, SimulatorConfig, StaticDirectory};
use parley_whatsapp::{GraphClient, SendError, TemplateSubmission, WabaCredentials, WhatsAppApi};
use serde_json::json;

async fn serve() -> (String, tokio::task::JoinHandle<()>) {
    let config = SimulatorConfig {
        webhook_url: "http://127.0.0.1:9/webhooks/whatsapp".into(),
        status_delay: Duration::from_millis(20),
        read_receipts: false,
    };
    let sim = Simulator::new(config, Arc::new(StaticDirectory::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = parley_whatsapp::simulator::router(sim);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

#[tokio::test]
async fn templates_are_created_listed_and_deleted() {
    let (base, task) = serve().await;
    let client = GraphClient::new(&base, "v26.0", Duration::from_secs(5));
    let creds = WabaCredentials { waba_id: "102290129340398".into(), access_token: "t".into() };
    let submission = TemplateSubmission {
        name: "order_update".into(),
        language: "en_US".into(),
        category: "UTILITY".into(),
        components: vec![json!({"type": "BODY", "text": "Hi {{1}}"})],
    };
    let created = client.create_template(&creds, &submission).await.expect("created");
    assert_eq!(created.status, "APPROVED");
    let again = client.create_template(&creds, &submission).await;
    assert!(matches!(again, Err(SendError::Api { code: 100, .. })), "{again:?}");
    let listed = client.list_templates(&creds).await.expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].id.as_str()), ("order_update", created.id.as_str()));
    client.delete_template(&creds, "order_update").await.expect("deleted");
    assert!(client.list_templates(&creds).await.expect("listed").is_empty());
    assert!(client.delete_template(&creds, "order_update").await.is_err());
    task.abort();
}
