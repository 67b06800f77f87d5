//! Creating an events table (for tests and local tools; deployed tables are
//! declared in `template.yaml` from the same definition).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use parley_events::StoreError;

use super::item::{ARCHIVED, PK, SK};
use crate::dynamodb::unavailable;

/// How long to wait for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates the table: `p` (string) partition key, `i` (number) sort key,
/// on-demand billing, stream of new images, TTL on `x` (archived items).
/// Returns once it is active.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(unavailable)
    };
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute(PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SK, ScalarAttributeType::N)?)
        .key_schema(key(PK, KeyType::Hash).map_err(unavailable)?)
        .key_schema(key(SK, KeyType::Range).map_err(unavailable)?)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    wait_until_active(client, name).await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name(ARCHIVED).build().map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Polls the table's status until it is active.
pub(crate) async fn wait_until_active(client: &Client, name: &str) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let described = client.describe_table().table_name(name).send().await.map_err(unavailable)?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(StoreError::Unavailable(format!("table {name} not active after {ACTIVE_TIMEOUT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
