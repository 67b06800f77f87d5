//! Everyday handling by agents (SPEC 5.2, 5.3): deleting and tagging
//! messages; resolving, assigning and reading conversations. Reading a
//! conversation tells WhatsApp, so the customer sees the blue ticks.

use parley_domain::handling::{self, HandlingError};
use parley_domain::ids;
use parley_whatsapp::Credentials;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

impl From<HandlingError> for AppError {
    fn from(e: HandlingError) -> Self {
        match e {
            HandlingError::NotFound(what) => AppError::NotFound { what },
            HandlingError::Invalid { field, message } => AppError::validation(field, message),
        }
    }
}

/// How many of a conversation's newest messages are searched for the last
/// inbound one to report read.
const READ_SCAN: usize = 200;

impl App {
    /// Deletes a message of the caller's tenant: its content is redacted in
    /// every read model (the message row and the conversation preview); its
    /// events stay in the log.
    pub async fn delete_message(&self, caller: &Caller, message_id: Uuid) -> Result<(), AppError> {
        caller.require(Role::Agent)?;
        let tenant = caller.tenant_id.as_str();
        let stream_id = ids::message_stream(tenant, message_id);
        let now = self.clock.now();
        let meta = Meta::new(caller.actor());
        let by = caller.user_id.clone();
        let target = Target { tenant_id: tenant, stream_id, wa_id: None };
        let done = self.messages.execute(&target, &meta, |m| handling::delete_message(m, &by, now)).await?;
        let (Some(conversation_id), false) = (done.state.conversation_id, done.events.is_empty()) else {
            return Ok(());
        };
        let target =
            Target { tenant_id: tenant, stream_id: ids::conversation_stream(tenant, conversation_id), wa_id: None };
        self.conversations
            .execute(&target, &meta, |c| Ok::<_, AppError>(handling::redact_preview(c, message_id, now)))
            .await?;
        Ok(())
    }

    /// A message's tags.
    pub async fn message_tags(&self, caller: &Caller, message_id: Uuid) -> Result<Vec<String>, AppError> {
        let loaded = self.messages.load(&ids::message_stream(&caller.tenant_id, message_id)).await?;
        if !loaded.state.exists() {
            return Err(AppError::NotFound { what: "message" });
        }
        Ok(loaded.state.tags.clone())
    }

    /// Sets a message's tags; answers the tags as stored (normalised).
    pub async fn set_message_tags(
        &self,
        caller: &Caller,
        message_id: Uuid,
        tags: &[String],
    ) -> Result<Vec<String>, AppError> {
        caller.require(Role::Agent)?;
        let tenant = caller.tenant_id.as_str();
        let target = Target { tenant_id: tenant, stream_id: ids::message_stream(tenant, message_id), wa_id: None };
        let now = self.clock.now();
        let by = caller.user_id.clone();
        let done = self
            .messages
            .execute(&target, &Meta::new(caller.actor()), |m| handling::tag_message(m, tags, &by, now))
            .await?;
        Ok(done.state.tags.clone())
    }

    /// Resolves a conversation.
    pub async fn resolve_conversation(&self, caller: &Caller, conversation_id: Uuid) -> Result<(), AppError> {
        caller.require(Role::Agent)?;
        let by = caller.user_id.clone();
        let now = self.clock.now();
        self.on_conversation(caller, conversation_id, |c| handling::resolve(c, &by, now)).await
    }

    /// Assigns a conversation to a user, or unassigns it.
    pub async fn assign_conversation(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
        assignee: Option<&str>,
    ) -> Result<(), AppError> {
        caller.require(Role::Agent)?;
        let by = caller.user_id.clone();
        let now = self.clock.now();
        self.on_conversation(caller, conversation_id, |c| handling::assign(c, assignee, &by, now)).await
    }

    /// Marks a conversation read: its unread count drops to zero and WhatsApp
    /// is told that the newest inbound message was read. Answers whether
    /// WhatsApp was told (false when nothing was unread).
    pub async fn read_conversation(&self, caller: &Caller, conversation_id: Uuid) -> Result<bool, AppError> {
        caller.require(Role::Agent)?;
        let tenant = caller.tenant_id.as_str();
        let stream_id = ids::conversation_stream(tenant, conversation_id);
        let conversation = self.conversations.load(&stream_id).await?;
        if !conversation.state.exists() {
            return Err(AppError::NotFound { what: "conversation" });
        }
        if conversation.state.unread == 0 {
            return Ok(false);
        }
        let wamid = self.last_inbound_wamid(tenant, conversation_id).await?;
        let number = self.tenant_number(tenant, &conversation.state.number_id).await?;
        if let Some(wamid) = &wamid {
            let creds =
                Credentials { phone_number_id: number.phone_number_id.clone(), access_token: number.access_token };
            self.whatsapp.mark_read(&creds, wamid).await.map_err(|e| AppError::Upstream(e.to_string()))?;
        }
        let by = caller.user_id.clone();
        let now = self.clock.now();
        let target = Target { tenant_id: tenant, stream_id, wa_id: None };
        let done = self
            .conversations
            .execute(&target, &Meta::new(caller.actor()), |c| handling::mark_read(c, wamid.as_deref(), &by, now))
            .await?;
        Ok(!done.events.is_empty() && wamid.is_some())
    }

    async fn last_inbound_wamid(&self, tenant: &str, conversation_id: Uuid) -> Result<Option<String>, AppError> {
        let page = self.read_models.messages(tenant, Some(conversation_id), None, READ_SCAN).await?;
        Ok(page.items.into_iter().find(|m| m.direction == "inbound").and_then(|m| m.wamid))
    }

    async fn on_conversation(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
        decide: impl FnMut(&parley_domain::conversation::Conversation) -> Result<Vec<parley_domain::Event>, HandlingError>,
    ) -> Result<(), AppError> {
        let tenant = caller.tenant_id.as_str();
        let target =
            Target { tenant_id: tenant, stream_id: ids::conversation_stream(tenant, conversation_id), wa_id: None };
        self.conversations.execute(&target, &Meta::new(caller.actor()), decide).await?;
        Ok(())
    }
}
