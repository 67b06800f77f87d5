//! The job status read model (SPEC 5.7): one row per job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Page;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub progress: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Blob key of the result.
    pub artifact: Option<String>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait JobReadModel: Send + Sync + 'static {
    async fn job(&self, tenant_id: &str, id: Uuid) -> Result<Option<JobView>, AppError>;
    /// Newest first.
    async fn jobs(&self, tenant_id: &str, cursor: Option<&str>, limit: usize) -> Result<Page<JobView>, AppError>;
}
