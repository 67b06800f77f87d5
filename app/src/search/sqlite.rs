//! The search index in an embedded SQLite database, and the projection
//! that feeds it: each batch's changes and the checkpoint commit in one
//! transaction, so every event is applied exactly once.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use parley_events::{Projection, ProjectionError, RecordedEvent};
use parley_vault::Sealed;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use super::{SearchChange, SearchHit, SearchIndex, SearchIndexer};
use crate::error::AppError;
use crate::readmodel::db::{clear_checkpoint, set_checkpoint, ReadModelDb};
use crate::readmodel::ops::{from_micros, micros};
use crate::readmodel::{cursor, Page};

const PROJECTION: &str = "search";
/// Postings counted per term to find a query's rarest one: past this many,
/// a term is common enough that which common term drives matters little.
const RARITY_CAP: i64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS search_keys (tenant_id TEXT PRIMARY KEY, sealed TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_entries (
    tenant_id TEXT NOT NULL, message_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, message_id));
CREATE TABLE IF NOT EXISTS search_terms (
    tenant_id TEXT NOT NULL, term TEXT NOT NULL, created_at INTEGER NOT NULL, message_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, term, created_at, message_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS search_terms_by_message ON search_terms(tenant_id, message_id, term);
";

pub struct SqliteSearchIndex {
    db: ReadModelDb,
}

impl SqliteSearchIndex {
    pub fn open(path: &Path) -> Result<Arc<Self>, AppError> {
        let db = ReadModelDb::open(path, 1, "", |writer| Ok(writer.execute_batch(SCHEMA)?))?;
        Ok(Arc::new(SqliteSearchIndex { db }))
    }

    /// The projection that builds this index through `indexer`.
    pub fn projection(self: &Arc<Self>, indexer: SearchIndexer) -> Arc<dyn Projection> {
        Arc::new(SearchProjection { index: self.clone(), indexer })
    }

    /// Applies changes and, when given, moves the projection's checkpoint, in one transaction.
    async fn commit(&self, changes: Vec<SearchChange>, position: Option<u64>) -> Result<(), AppError> {
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                for change in &changes {
                    apply_change(&tx, change)?;
                }
                if let Some(position) = position {
                    set_checkpoint(&tx, PROJECTION, position)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

fn apply_change(tx: &Transaction, change: &SearchChange) -> Result<(), AppError> {
    match change {
        SearchChange::Add { tenant_id, message_id, created_at, terms } => {
            let id = message_id.to_string();
            tx.prepare_cached(
                "INSERT OR IGNORE INTO search_entries(tenant_id, message_id, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![tenant_id, id, micros(*created_at)])?;
            let at: i64 = tx.query_row(
                "SELECT created_at FROM search_entries WHERE tenant_id = ?1 AND message_id = ?2",
                params![tenant_id, id],
                |r| r.get(0),
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO search_terms(tenant_id, term, created_at, message_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for term in terms {
                insert.execute(params![tenant_id, term, at, id])?;
            }
        }
        SearchChange::Forget { tenant_id, message_id } => {
            let id = message_id.to_string();
            tx.prepare_cached("DELETE FROM search_terms WHERE tenant_id = ?1 AND message_id = ?2")?
                .execute(params![tenant_id, id])?;
            tx.prepare_cached("DELETE FROM search_entries WHERE tenant_id = ?1 AND message_id = ?2")?
                .execute(params![tenant_id, id])?;
        }
    }
    Ok(())
}

#[async_trait]
impl SearchIndex for SqliteSearchIndex {
    async fn key(&self, tenant_id: &str) -> Result<Option<Sealed>, AppError> {
        let tenant_id = tenant_id.to_owned();
        let stored: Option<String> = self
            .db
            .read(move |c| {
                Ok(c.query_row("SELECT sealed FROM search_keys WHERE tenant_id = ?1", params![tenant_id], |r| r.get(0))
                    .optional()?)
            })
            .await?;
        stored.map(|s| serde_json::from_str(&s).map_err(AppError::from)).transpose()
    }

    async fn put_key(&self, tenant_id: &str, key: &Sealed) -> Result<Sealed, AppError> {
        let (tenant_id, sealed) = (tenant_id.to_owned(), serde_json::to_string(key)?);
        let stored: String = self
            .db
            .write(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO search_keys(tenant_id, sealed) VALUES (?1, ?2)",
                    params![tenant_id, sealed],
                )?;
                Ok(c.query_row("SELECT sealed FROM search_keys WHERE tenant_id = ?1", params![tenant_id], |r| {
                    r.get(0)
                })?)
            })
            .await?;
        Ok(serde_json::from_str(&stored)?)
    }

    async fn apply(&self, changes: &[SearchChange]) -> Result<(), AppError> {
        self.commit(changes.to_vec(), None).await
    }

    async fn search(
        &self,
        tenant_id: &str,
        terms: &[String],
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<SearchHit>, AppError> {
        if terms.is_empty() {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let after = cursor.map(cursor::decode).transpose()?;
        let (tenant, terms) = (tenant_id.to_owned(), terms.to_vec());
        let mut items = self
            .db
            .read(move |c| {
                // The rarest term drives: its postings are walked newest
                // first and checked against the others by key.
                let mut counted = Vec::with_capacity(terms.len());
                for term in terms {
                    let n: i64 = c
                        .prepare_cached(
                            "SELECT COUNT(*) FROM (SELECT 1 FROM search_terms WHERE tenant_id = ?1 AND term = ?2 LIMIT ?3)",
                        )?
                        .query_row(params![tenant, term, RARITY_CAP], |r| r.get(0))?;
                    counted.push((n, term));
                }
                counted.sort();
                if counted[0].0 == 0 {
                    return Ok(Vec::new());
                }
                let mut sql = String::from(
                    "SELECT t.message_id, t.created_at FROM search_terms t WHERE t.tenant_id = ? AND t.term = ?",
                );
                let mut args: Vec<rusqlite::types::Value> = vec![tenant.into()];
                for (i, (_, term)) in counted.into_iter().enumerate() {
                    if i > 0 {
                        sql.push_str(
                            " AND EXISTS (SELECT 1 FROM search_terms o
                              WHERE o.tenant_id = t.tenant_id AND o.message_id = t.message_id AND o.term = ?)",
                        );
                    }
                    args.push(term.into());
                }
                if let Some((at, id)) = after {
                    sql.push_str(" AND (t.created_at < ? OR (t.created_at = ? AND t.message_id < ?))");
                    args.extend([at.into(), at.into(), id.to_string().into()]);
                }
                sql.push_str(" ORDER BY t.created_at DESC, t.message_id DESC LIMIT ?");
                args.push((limit as i64 + 1).into());
                let mut stmt = c.prepare_cached(&sql)?;
                let rows =
                    stmt.query_map(params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut hits = Vec::new();
                for row in rows {
                    let (id, at) = row?;
                    let message_id = id.parse().map_err(AppError::internal)?;
                    hits.push(SearchHit { message_id, created_at: from_micros(at) });
                }
                Ok(hits)
            })
            .await?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|h| cursor::encode(micros(h.created_at), h.message_id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

struct SearchProjection {
    index: Arc<SqliteSearchIndex>,
    indexer: SearchIndexer,
}

#[async_trait]
impl Projection for SearchProjection {
    fn name(&self) -> &str {
        PROJECTION
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.index.db.checkpoint(PROJECTION).await.map_err(ProjectionError::read_model)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last().map(|e| e.global_position) else { return Ok(()) };
        let changes = self.indexer.changes(events).await.map_err(ProjectionError::read_model)?;
        self.index.commit(changes, Some(last)).await.map_err(ProjectionError::read_model)
    }

    /// Forgets every entry; the tenants' keys stay (they are sealed, and a
    /// rebuild keys the same words the same way).
    async fn reset(&self) -> Result<(), ProjectionError> {
        self.index
            .db
            .write(|c| {
                let tx = c.transaction()?;
                tx.execute_batch("DELETE FROM search_terms; DELETE FROM search_entries;")?;
                clear_checkpoint(&tx, PROJECTION)?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(ProjectionError::read_model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        super::super::conformance::run_search_index_suite(|| {
            let path = dir.path().join(format!("search-{}.db", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            async move { SqliteSearchIndex::open(&path).unwrap() as Arc<dyn SearchIndex> }
        })
        .await;
    }
}
