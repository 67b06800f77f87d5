//! Inbound-message webhook bodies in the Cloud API's shape, and their signatures.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// Most conversations one run can address: the wa_id keeps a fixed number of digits for the
/// conversation index.
pub const MAX_CONVERSATIONS: u32 = 1_000_000;

/// Identifiers that make one run's data distinguishable from any other run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIds {
    /// 12 lowercase hex digits; part of every wamid of the run (`wamid.lg.<run_id>.<n>`).
    pub run_id: String,
    /// Digits every contact wa_id of the run starts with (`<prefix><6-digit index>`).
    pub wa_id_prefix: String,
}

impl RunIds {
    /// Fresh random identifiers.
    pub fn random() -> Self {
        let run: u64 = rand::random();
        let prefix: u32 = rand::random::<u32>() % 1_000_000;
        Self { run_id: format!("{:012x}", run & 0xffff_ffff_ffff), wa_id_prefix: format!("19{prefix:06}") }
    }

    /// The wa_id of conversation `index` (0-based): 14 digits, like a real phone number.
    pub fn wa_id(&self, index: u32) -> String {
        format!("{}{:06}", self.wa_id_prefix, index % MAX_CONVERSATIONS)
    }

    /// The wamid of the run's message number `seq` (0-based).
    pub fn wamid(&self, seq: u64) -> String {
        format!("wamid.lg.{}.{seq:010}", self.run_id)
    }
}

/// `X-Hub-Signature-256` header value for `body`: `sha256=<hex HMAC-SHA256(app_secret, body)>`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Builds the run's webhook bodies: message number `seq` goes to conversation
/// `seq % conversations`, and body number `i` carries messages `i * per_webhook ..`.
#[derive(Debug, Clone)]
pub struct WebhookFactory {
    pub ids: RunIds,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub conversations: u32,
    /// Unix seconds put in every message's `timestamp`.
    pub timestamp: u64,
}

impl WebhookFactory {
    /// The body carrying messages `first_seq .. first_seq + count`.
    pub fn body(&self, first_seq: u64, count: u64) -> Bytes {
        let conversations = u64::from(self.conversations.max(1));
        let mut contacts: Vec<Value> = Vec::new();
        let mut messages = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for seq in first_seq..first_seq + count {
            // Below MAX_CONVERSATIONS, so the conversion cannot fail.
            let conversation = u32::try_from(seq % conversations).unwrap_or(0);
            let wa_id = self.ids.wa_id(conversation);
            // Consecutive messages go to consecutive conversations, so a contact repeats only
            // once the body has gone round all of them.
            if seq - first_seq < conversations {
                contacts.push(json!({
                    "profile": { "name": format!("Load Test {conversation}") },
                    "wa_id": wa_id,
                }));
            }
            messages.push(json!({
                "from": wa_id,
                "id": self.ids.wamid(seq),
                "timestamp": self.timestamp.to_string(),
                "type": "text",
                "text": { "body": format!("Load test message {seq} of run {}", self.ids.run_id) },
            }));
        }
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.waba_id,
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": self.display_phone_number,
                            "phone_number_id": self.phone_number_id,
                        },
                        "contacts": contacts,
                        "messages": messages,
                    },
                    "field": "messages",
                }],
            }],
        });
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory(conversations: u32) -> WebhookFactory {
        WebhookFactory {
            ids: RunIds { run_id: "00000000abcd".into(), wa_id_prefix: "19123456".into() },
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            conversations,
            timestamp: 1_749_416_383,
        }
    }

    #[test]
    fn signature_matches_the_documented_test_vector() {
        assert_eq!(sign(b"secret", b"test"), "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914");
    }

    #[test]
    fn signature_verifies_over_the_raw_body() {
        let body = factory(10).body(0, 3);
        let header = sign(b"app-secret", &body);
        let tag = hex::decode(header.strip_prefix("sha256=").expect("prefix")).expect("hex");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"app-secret").expect("key");
        mac.update(&body);
        mac.verify_slice(&tag).expect("verifies");
        assert_ne!(sign(b"other-secret", &body), header);
    }

    #[test]
    fn one_message_body_reads_like_the_fixture() {
        let body: Value = serde_json::from_slice(&factory(5000).body(7, 1)).expect("json");
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(body["object"], "whatsapp_business_account");
        assert_eq!(body["entry"][0]["id"], "102290129340398");
        assert_eq!(body["entry"][0]["changes"][0]["field"], "messages");
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["metadata"]["display_phone_number"], "15550783881");
        assert_eq!(value["contacts"][0]["wa_id"], "19123456000007");
        assert_eq!(value["contacts"][0]["profile"]["name"], "Load Test 7");
        let message = &value["messages"][0];
        assert_eq!(message["from"], "19123456000007");
        assert_eq!(message["id"], "wamid.lg.00000000abcd.0000000007");
        assert_eq!(message["timestamp"], "1749416383");
        assert_eq!(message["type"], "text");
        assert_eq!(message["text"]["body"], "Load test message 7 of run 00000000abcd");
    }

    #[test]
    fn several_messages_cycle_over_conversations() {
        let body: Value = serde_json::from_slice(&factory(2).body(10, 3)).expect("json");
        let value = &body["entry"][0]["changes"][0]["value"];
        let froms: Vec<&str> =
            value["messages"].as_array().expect("messages").iter().map(|m| m["from"].as_str().expect("from")).collect();
        assert_eq!(froms, ["19123456000000", "19123456000001", "19123456000000"]);
        let contacts: Vec<&str> = value["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .map(|c| c["wa_id"].as_str().expect("wa_id"))
            .collect();
        assert_eq!(contacts, ["19123456000000", "19123456000001"], "each contact once");
        let ids: Vec<&str> =
            value["messages"].as_array().expect("messages").iter().map(|m| m["id"].as_str().expect("id")).collect();
        assert_eq!(
            ids,
            [
                "wamid.lg.00000000abcd.0000000010",
                "wamid.lg.00000000abcd.0000000011",
                "wamid.lg.00000000abcd.0000000012"
            ]
        );
    }

    #[test]
    fn random_run_ids_differ_and_have_fixed_widths() {
        let a = RunIds::random();
        let b = RunIds::random();
        assert_ne!(a.run_id, b.run_id);
        assert_eq!(a.run_id.len(), 12);
        assert!(a.run_id.bytes().all(|c| c.is_ascii_hexdigit()));
        let wa_id = a.wa_id(MAX_CONVERSATIONS - 1);
        assert_eq!(wa_id.len(), 14);
        assert!(wa_id.bytes().all(|c| c.is_ascii_digit()));
    }
}
