//! Idempotency records on DynamoDB, in the style of Powertools for AWS
//! Lambda: a record is claimed `INPROGRESS` with one conditional `PutItem`
//! (`attribute_not_exists(id) OR expired`), completed with the response, and
//! deleted by DynamoDB's TTL once it expires.
//!
//! Table: partition key `id` (String, `tenant#key`), TTL on `ttl` (Unix
//! seconds). Expiry decisions use `exp` (Unix milliseconds), because TTL
//! deletes items only eventually (typically within days), so an expired
//! record may still be there and must be treated as absent.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use parley_app::error::AppError;
use parley_app::idempotency::{Claim, IdempotencyStore, StoredResponse, COMPLETED_EXPIRY, IN_PROGRESS_EXPIRY};

use super::event_store::Item;

/// Partition key: `tenant#key`.
const ID: &str = "id";
/// The request fingerprint the key was first used with.
const FINGERPRINT: &str = "fp";
/// `INPROGRESS` or `COMPLETED`.
const STATUS: &str = "status";
/// When the record stops counting, Unix milliseconds.
const EXPIRES_MS: &str = "exp";
/// The same instant in Unix seconds: the table's TTL attribute.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// The completed response.
const RESPONSE_STATUS: &str = "rs";
const RESPONSE_BODY: &str = "rb";

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// The DynamoDB [`IdempotencyStore`] adapter.
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

fn internal<E: std::error::Error>(error: E) -> AppError {
    AppError::internal(DisplayErrorContext(error))
}

fn id(tenant_id: &str, key: &str) -> AttributeValue {
    // Tenant ids contain no '#', so the pair is unambiguous.
    AttributeValue::S(format!("{tenant_id}#{key}"))
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl DynamoIdempotency {
    /// The store over the idempotency table `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates an idempotency table named `name`, with TTL on [`TTL_ATTRIBUTE`].
    pub async fn create_table(client: &Client, name: &str) -> Result<(), AppError> {
        client
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(ID)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(internal)?,
            )
            .key_schema(
                KeySchemaElement::builder().attribute_name(ID).key_type(KeyType::Hash).build().map_err(internal)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(internal)?;
        super::event_store::wait_until_active(client, name).await.map_err(AppError::internal)?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// What an existing, unexpired record means for a new claim.
    fn claim_from(record: &Item, fingerprint: &str) -> Result<Claim, AppError> {
        let text = |name: &str| match record.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.as_str()),
            other => Err(AppError::internal(format!("idempotency record attribute {name} is {other:?}"))),
        };
        if text(FINGERPRINT)? != fingerprint {
            return Ok(Claim::Mismatch);
        }
        if text(STATUS)? != COMPLETED {
            return Ok(Claim::InProgress);
        }
        let status = match record.get(RESPONSE_STATUS) {
            Some(AttributeValue::N(n)) => n.parse().map_err(AppError::internal)?,
            other => return Err(AppError::internal(format!("idempotency response status is {other:?}"))),
        };
        Ok(Claim::Replay(StoredResponse { status, body: text(RESPONSE_BODY)?.to_owned() }))
    }

    async fn read(&self, tenant_id: &str, key: &str) -> Result<Option<Item>, AppError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, id(tenant_id, key))
            .consistent_read(true)
            .send()
            .await
            .map_err(internal)?;
        Ok(output.item().cloned())
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, tenant_id: &str, key: &str, fingerprint: &str, now_ms: i64) -> Result<Claim, AppError> {
        let expires = now_ms.saturating_add(millis(IN_PROGRESS_EXPIRY));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, id(tenant_id, key))
            .item(FINGERPRINT, AttributeValue::S(fingerprint.to_owned()))
            .item(STATUS, AttributeValue::S(IN_PROGRESS.into()))
            .item(EXPIRES_MS, number(expires))
            .item(TTL_ATTRIBUTE, number(expires / 1000 + 1))
            .condition_expression("attribute_not_exists(#id) OR #exp <= :now")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#exp", EXPIRES_MS)
            .expression_attribute_values(":now", number(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match put {
            Ok(_) => return Ok(Claim::New),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
                _ => return Err(internal(error)),
            },
        };
        // Emulators that predate ALL_OLD on refusals return nothing: read it.
        let existing = match existing {
            Some(record) => Some(record),
            None => self.read(tenant_id, key).await?,
        };
        match existing {
            Some(record) => Self::claim_from(&record, fingerprint),
            // Released between the refusal and the read: the caller may try again.
            None => Ok(Claim::InProgress),
        }
    }

    async fn complete(
        &self,
        tenant_id: &str,
        key: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let expires = now_ms.saturating_add(millis(COMPLETED_EXPIRY));
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, id(tenant_id, key))
            .condition_expression("attribute_exists(#id)")
            .update_expression("SET #status = :done, #rs = :rs, #rb = :rb, #exp = :exp, #ttl = :ttl")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#rs", RESPONSE_STATUS)
            .expression_attribute_names("#rb", RESPONSE_BODY)
            .expression_attribute_names("#exp", EXPIRES_MS)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":done", AttributeValue::S(COMPLETED.into()))
            .expression_attribute_values(":rs", number(i64::from(response.status)))
            .expression_attribute_values(":rb", AttributeValue::S(response.body.clone()))
            .expression_attribute_values(":exp", number(expires))
            .expression_attribute_values(":ttl", number(expires / 1000 + 1))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // No claim to complete (released or expired and gone): nothing to record.
            Err(error)
                if matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(internal(error)),
        }
    }

    async fn release(&self, tenant_id: &str, key: &str) -> Result<(), AppError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ID, id(tenant_id, key))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Completed (or absent) records are not released.
            Err(error)
                if matches!(error.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(internal(error)),
        }
    }
}
