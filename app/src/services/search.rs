//! Searching a tenant's messages (SPEC 5.2): the query is folded and keyed
//! like the indexed text, matched in the blind index, and the messages found
//! are read from the message read model.

use uuid::Uuid;

use crate::app::App;
use crate::auth::Caller;
use crate::error::AppError;
use crate::readmodel::{MessageView, Page};

impl App {
    /// The caller's tenant's messages holding every word of `query`, newest
    /// first. Deleted messages, and messages archived out of the hot store,
    /// are not found.
    pub async fn search_messages(
        &self,
        caller: &Caller,
        query: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<MessageView>, AppError> {
        let tenant = caller.tenant_id.as_str();
        let mut words =
            parley_domain::search::query_words(query).map_err(|e| AppError::validation("q", e.to_string()))?;
        parley_domain::search::likely_rarest_first(&mut words);
        // No key yet: nothing of the tenant was ever indexed.
        let Some(terms) = self.blinder.terms(tenant, &words, false).await? else {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        };
        let hits = self.blinder.index().search(tenant, &terms, cursor, limit).await?;
        let ids: Vec<Uuid> = hits.items.iter().map(|h| h.message_id).collect();
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            // The index trails the read model by a moment: a message deleted
            // or archived just now may still be in it.
            match self.read_models.message(tenant, id).await? {
                Some(m) if !m.deleted => items.push(m),
                _ => {}
            }
        }
        Ok(Page { items, next_cursor: hits.next_cursor })
    }
}
