//! The audit log in the read-model table against the emulator: what the
//! projector applies is listed per tenant, newest first, once.

mod common;

use chrono::{TimeZone, Utc};
use parley_app::identity::audit::AuditLog;
use parley_aws::dynamodb::{DynamoAuditLog, DynamoReadModels};
use parley_events::RecordedEvent;

fn event(position: u64, tenant: &str, event_type: &str) -> RecordedEvent {
    let at = Utc.timestamp_opt(1_700_000_000 + i64::try_from(position).unwrap(), 0).unwrap();
    RecordedEvent {
        event_id: uuid::Uuid::now_v7(),
        stream_id: format!("tenant-{tenant}"),
        version: position,
        tenant_id: tenant.into(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: at,
        recorded_at: at,
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: "user:u1".into(),
        data: serde_json::json!({"n": position}),
        global_position: position,
    }
}

#[tokio::test]
async fn lists_audited_events_per_tenant_newest_first() {
    let client = common::dynamodb().await;
    let table = common::unique_name("audit");
    DynamoReadModels::create_table(&client, &table).await.expect("create table");
    let log = DynamoAuditLog::new(client, table);
    let batch = vec![
        event(1, "a", "TenantCreated"),
        event(2, "a", "MessageQueued"),
        event(3, "b", "RoleChanged"),
        event(4, "a", "SessionRevoked"),
        event(12, "a", "MemberJoined"),
    ];
    log.apply(&batch).await.expect("apply");
    log.apply(&batch[3..]).await.expect("a redelivery changes nothing");

    let a = log.list("a", None, 10).await.unwrap();
    assert_eq!(a.iter().map(|e| e.id).collect::<Vec<_>>(), vec![12, 4, 1], "positions past 9 sort as numbers");
    assert_eq!(a[1].event_type, "SessionRevoked");
    assert_eq!(a[1].actor, "user:u1");
    assert_eq!(a[1].subject, "tenant-a");
    assert_eq!(a[1].data, serde_json::json!({"n": 4}));
    assert_eq!(a[1].at, batch[3].occurred_at);
    assert_eq!(log.list("a", Some(12), 1).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(log.list("a", Some(4), 10).await.unwrap().len(), 1);
    assert!(log.list("a", None, 0).await.unwrap().is_empty());
    assert_eq!(log.list("b", None, 10).await.unwrap().len(), 1);
    assert!(log.list("c", None, 10).await.unwrap().is_empty());
}
