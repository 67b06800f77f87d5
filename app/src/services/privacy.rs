//! GDPR for a contact (SPEC 5.4, 6.4): export of everything held about
//! them, and erasure by crypto-shredding.
//!
//! Erasure destroys the contact's data key. The events stay as they were,
//! but every personal field sealed with that key (message content, previews,
//! names, attributes, reactions, ad texts) reads as null from then on: in
//! the events, the read models (which keep the sealed values and open them on
//! the way out) and the archives alike. What is not sealed is removed: the
//! contact's directory row, its messages' search terms and their stored
//! media files. Cached states that were opened before the key was destroyed
//! are dropped from this process; other processes (Lambda instances) still
//! hold theirs until they are evicted, but serve no content from them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use parley_domain::{directory, ids};
use parley_vault::KeyScope;
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::readmodel::{ConversationView, MessageView};
use crate::repo::Target;
use crate::sealing::Meta;
use crate::search::SearchChange;

/// Messages read per page while gathering a contact's history.
const PAGE: usize = 200;
/// Messages cleaned up at once during an erasure.
const CLEANUP_CONCURRENCY: usize = 16;
/// Search entries dropped per index call during an erasure.
const FORGET_CHUNK: usize = 25;

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erasure {
    pub wa_id: String,
    pub erased_at: DateTime<Utc>,
    /// Conversations whose personal fields are now unreadable.
    pub conversations: usize,
    /// Messages whose content is now unreadable and out of search.
    pub messages: usize,
    /// Stored media files deleted (as the message read model knew them).
    pub media_files: usize,
}

/// A contact's conversations and messages (hot and archived), oldest
/// message first.
pub struct ContactHistory {
    pub conversations: Vec<ConversationView>,
    pub messages: Vec<MessageView>,
}

impl App {
    /// Every conversation of the contact with the tenant's numbers, and
    /// their messages, hot and archived, oldest first.
    pub async fn contact_history(&self, caller: &Caller, wa_id: &str) -> Result<ContactHistory, AppError> {
        caller.require(Role::Admin)?;
        self.history_of(&caller.tenant_id, wa_id).await
    }

    async fn history_of(&self, tenant: &str, wa_id: &str) -> Result<ContactHistory, AppError> {
        let mut history = ContactHistory { conversations: Vec::new(), messages: Vec::new() };
        for number in self.read_models.numbers(tenant).await? {
            let id = ids::conversation_id(tenant, &number.phone_number_id, wa_id);
            let Some(conversation) = self.read_models.conversation(tenant, id).await? else { continue };
            history.conversations.push(conversation);
            let mut cursor: Option<String> = None;
            loop {
                let page = self.read_models.messages(tenant, Some(id), cursor.as_deref(), PAGE).await?;
                history.messages.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        // Archived months hold the rest; a restored month is in both, and
        // its hot row is the one that counts. Without a conversation there
        // is nothing of the contact's in them, so they are not read.
        if !history.conversations.is_empty() {
            let conversations: BTreeSet<Uuid> = history.conversations.iter().map(|c| c.id).collect();
            let hot: BTreeSet<Uuid> = history.messages.iter().map(|m| m.id).collect();
            let archived = self
                .archived_messages(tenant, None, None, |m| {
                    conversations.contains(&m.conversation_id) && !hot.contains(&m.id)
                })
                .await?;
            history.messages.extend(archived);
        }
        history.messages.sort_by_key(|m| (m.created_at, m.id));
        Ok(history)
    }

    /// Erases a contact of the caller's tenant (owners and admins). Asking
    /// again for an erased contact records nothing new and runs the cleanup
    /// again, so an erasure cut short (a timeout) can be finished.
    pub async fn erase_contact(&self, caller: &Caller, wa_id: &str) -> Result<Erasure, AppError> {
        caller.require(Role::Admin)?;
        if !directory::valid_wa_id(wa_id) {
            return Err(AppError::NotFound { what: "contact" });
        }
        let tenant = caller.tenant_id.as_str();
        let now = self.clock.now();
        let by = caller.user_id.clone();
        let contact_stream = ids::contact_stream(tenant, wa_id);
        let target = Target { tenant_id: tenant, stream_id: contact_stream.clone(), wa_id: Some(wa_id) };
        self.contacts.execute(&target, &Meta::new(caller.actor()), |c| directory::erase(c, &by, now)).await?;
        // From here on nothing sealed for the contact opens again.
        self.sealer.vault().shred(&KeyScope::contact(tenant, wa_id)).await?;

        // The contact's messages, from the conversation streams themselves:
        // the read models may not have caught up with the latest ones yet.
        let mut conversations = 0;
        let mut messages: BTreeSet<Uuid> = BTreeSet::new();
        for number in self.read_models.numbers(tenant).await? {
            let stream = ids::conversation_stream(tenant, ids::conversation_id(tenant, &number.phone_number_id, wa_id));
            let events = self.store.read_stream(&stream, 0).await?;
            if events.is_empty() {
                continue;
            }
            conversations += 1;
            messages.extend(events.iter().filter_map(|e| e.data.get("message_id")?.as_str()?.parse::<Uuid>().ok()));
            self.conversations.forget_cached(&stream);
        }
        // Each message's cleanup is independent: run them side by side, so
        // a long history fits in one API call.
        let cleaned: Vec<bool> = stream::iter(messages.iter().copied())
            .map(|message_id| async move {
                let stored = self.read_models.message(tenant, message_id).await?;
                // An inbound file's key follows from its message; deleting a
                // key that holds nothing is a no-op.
                self.blobs.delete(&ids::inbound_media_blob_key(tenant, message_id)).await?;
                self.messages.forget_cached(&ids::message_stream(tenant, message_id));
                Ok::<_, AppError>(stored.and_then(|m| m.media).is_some_and(|m| m.state == "stored"))
            })
            .buffer_unordered(CLEANUP_CONCURRENCY)
            .try_collect()
            .await?;
        let media_files = cleaned.iter().filter(|stored| **stored).count();
        let forget: Vec<SearchChange> = messages
            .iter()
            .map(|&message_id| SearchChange::Forget { tenant_id: tenant.to_owned(), message_id })
            .collect();
        let index = self.blinder.index().clone();
        let chunks: Vec<Vec<SearchChange>> = forget.chunks(FORGET_CHUNK).map(<[SearchChange]>::to_vec).collect();
        stream::iter(chunks)
            .map(move |chunk| {
                let index = index.clone();
                async move { index.apply(&chunk).await }
            })
            .buffer_unordered(CLEANUP_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        self.contacts.forget_cached(&contact_stream);
        tracing::info!(tenant, messages = messages.len(), media_files, "contact erased");
        Ok(Erasure { wa_id: wa_id.to_owned(), erased_at: now, conversations, messages: messages.len(), media_files })
    }
}
