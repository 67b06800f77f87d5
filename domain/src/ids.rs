//! Identifiers and the stream names derived from them.
//!
//! Every stream name starts with the tenant, so that every stored key carries
//! the tenant (SPEC 4.7). Ids that must be found again from WhatsApp's own
//! identifiers (a conversation from its number and contact, an inbound message
//! from its wamid) are name-based UUIDs, which makes deduplication a property
//! of the stream name instead of a lookup.

use uuid::Uuid;

/// Namespace for Parley's name-based ids.
const NAMESPACE: Uuid =
    Uuid::from_bytes([0x6f, 0x1c, 0x52, 0x0e, 0x3b, 0x8a, 0x4d, 0x1f, 0x9a, 0x47, 0x2d, 0x5e, 0x81, 0x0c, 0x77, 0x3a]);

/// The conversation between a tenant's business number and a contact.
pub fn conversation_id(tenant_id: &str, phone_number_id: &str, wa_id: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("conversation\n{tenant_id}\n{phone_number_id}\n{wa_id}").as_bytes())
}

/// The message id of an inbound message: the same wamid always maps to the same id.
pub fn inbound_message_id(tenant_id: &str, wamid: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("inbound\n{tenant_id}\n{wamid}").as_bytes())
}

pub fn message_stream(tenant_id: &str, message_id: Uuid) -> String {
    format!("{tenant_id}/message/{message_id}")
}

pub fn conversation_stream(tenant_id: &str, conversation_id: Uuid) -> String {
    format!("{tenant_id}/conversation/{conversation_id}")
}

pub fn contact_stream(tenant_id: &str, wa_id: &str) -> String {
    format!("{tenant_id}/contact/{wa_id}")
}

/// Business numbers are unique across tenants (webhooks find their tenant by
/// `phone_number_id`), so their stream is keyed by the number alone; the
/// owning tenant is in every event's envelope and data.
pub fn number_stream(phone_number_id: &str) -> String {
    format!("number/{phone_number_id}")
}

pub fn job_stream(tenant_id: &str, job_id: Uuid) -> String {
    format!("{tenant_id}/job/{job_id}")
}

/// A tenant's billing account: plan history and billing details.
pub fn billing_stream(tenant_id: &str) -> String {
    format!("{tenant_id}/billing")
}

/// The one invoice of a tenant for a month (`YYYY-MM`): the stream name makes
/// re-running the invoicer for a month issue nothing twice.
pub fn invoice_stream(tenant_id: &str, month: &str) -> String {
    format!("{tenant_id}/invoice/{month}")
}

/// A file uploaded to Parley for sending.
pub fn media_stream(tenant_id: &str, blob_id: Uuid) -> String {
    format!("{tenant_id}/media/{blob_id}")
}

/// Where an uploaded file's bytes are kept in the blob store.
pub fn upload_blob_key(tenant_id: &str, blob_id: Uuid) -> String {
    format!("{tenant_id}/media/uploads/{blob_id}")
}

/// Where an inbound message's file is kept in the blob store.
pub fn inbound_media_blob_key(tenant_id: &str, message_id: Uuid) -> String {
    format!("{tenant_id}/media/inbound/{message_id}")
}

/// Statuses that arrived for a wamid Parley could not yet match to a message.
pub fn unmatched_status_stream(tenant_id: &str, wamid: &str) -> String {
    format!("{tenant_id}/wamid/{wamid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_based_ids_are_stable_and_tenant_scoped() {
        assert_eq!(inbound_message_id("t1", "wamid.A"), inbound_message_id("t1", "wamid.A"));
        assert_ne!(inbound_message_id("t1", "wamid.A"), inbound_message_id("t2", "wamid.A"));
        assert_ne!(conversation_id("t1", "n", "c"), conversation_id("t1", "n", "d"));
        assert!(contact_stream("t1", "1650").starts_with("t1/"));
    }
}
