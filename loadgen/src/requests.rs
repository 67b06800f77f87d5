//! The run's requests: how many, what each carries, and whether they are built ahead of time.

use bytes::Bytes;
use http::HeaderValue;

use crate::webhook::{sign, WebhookFactory};

/// Above this many requests bodies are built as they are sent, so memory stays bounded
/// (about 600 bytes per one-message body).
pub const PREBUILD_LIMIT: u64 = 250_000;

/// One signed webhook body, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub body: Bytes,
    /// `X-Hub-Signature-256` value.
    pub signature: HeaderValue,
    /// Messages the body carries.
    pub messages: u64,
}

/// How a run's `messages` are cut into requests of `per_webhook` messages (the last may carry
/// fewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub messages: u64,
    pub per_webhook: u64,
}

impl Plan {
    /// Number of requests in the run.
    pub fn requests(&self) -> u64 {
        self.messages.div_ceil(self.per_webhook.max(1))
    }

    /// First message number and message count of request `index`.
    pub fn slice(&self, index: u64) -> (u64, u64) {
        let per = self.per_webhook.max(1);
        let first = index * per;
        (first, per.min(self.messages.saturating_sub(first)))
    }
}

/// Hands out the run's requests by index; built ahead of the timed phase when they fit
/// [`PREBUILD_LIMIT`], so sending costs no JSON or HMAC work.
pub struct RequestSource {
    plan: Plan,
    factory: WebhookFactory,
    app_secret: Vec<u8>,
    prebuilt: Option<Vec<PreparedRequest>>,
}

impl RequestSource {
    pub fn new(plan: Plan, factory: WebhookFactory, app_secret: Vec<u8>) -> Self {
        let mut source = Self { plan, factory, app_secret, prebuilt: None };
        if plan.requests() <= PREBUILD_LIMIT {
            source.prebuilt = Some((0..plan.requests()).map(|index| source.build(index)).collect());
        }
        source
    }

    pub fn len(&self) -> u64 {
        self.plan.requests()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bodies were built ahead of time.
    pub fn is_prebuilt(&self) -> bool {
        self.prebuilt.is_some()
    }

    /// Request `index` (below [`RequestSource::len`]).
    pub fn get(&self, index: u64) -> PreparedRequest {
        let prebuilt = self.prebuilt.as_ref().and_then(|all| all.get(usize::try_from(index).ok()?));
        match prebuilt {
            Some(request) => request.clone(),
            None => self.build(index),
        }
    }

    fn build(&self, index: u64) -> PreparedRequest {
        let (first, count) = self.plan.slice(index);
        let body = self.factory.body(first, count);
        let signature =
            HeaderValue::try_from(sign(&self.app_secret, &body)).expect("a signature is ASCII letters, digits and '='");
        PreparedRequest { body, signature, messages: count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::RunIds;

    fn factory() -> WebhookFactory {
        WebhookFactory {
            ids: RunIds { run_id: "0123456789ab".into(), wa_id_prefix: "19000001".into() },
            waba_id: "1".into(),
            phone_number_id: "2".into(),
            display_phone_number: "3".into(),
            conversations: 4,
            timestamp: 0,
        }
    }

    #[test]
    fn plan_cuts_messages_into_requests() {
        let plan = Plan { messages: 10, per_webhook: 4 };
        assert_eq!(plan.requests(), 3);
        assert_eq!(plan.slice(0), (0, 4));
        assert_eq!(plan.slice(2), (8, 2));
        assert_eq!(Plan { messages: 8, per_webhook: 4 }.requests(), 2);
        assert_eq!(Plan { messages: 1, per_webhook: 1 }.slice(0), (0, 1));
    }

    #[test]
    fn requests_carry_every_message_once_and_are_signed() {
        let source = RequestSource::new(Plan { messages: 7, per_webhook: 3 }, factory(), b"s3cret".to_vec());
        assert!(source.is_prebuilt());
        assert_eq!(source.len(), 3);
        let mut wamids = Vec::new();
        for index in 0..source.len() {
            let request = source.get(index);
            assert_eq!(request.signature.to_str().expect("ascii"), sign(b"s3cret", &request.body));
            let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
            let messages = body["entry"][0]["changes"][0]["value"]["messages"].as_array().expect("messages").clone();
            assert_eq!(messages.len() as u64, request.messages);
            wamids.extend(messages.iter().map(|m| m["id"].as_str().expect("id").to_owned()));
        }
        let expected: Vec<String> = (0..7).map(|seq| factory().ids.wamid(seq)).collect();
        assert_eq!(wamids, expected);
    }

    #[test]
    fn large_runs_build_on_demand_with_the_same_bodies() {
        let plan = Plan { messages: PREBUILD_LIMIT + 1, per_webhook: 1 };
        let source = RequestSource::new(plan, factory(), b"k".to_vec());
        assert!(!source.is_prebuilt());
        let small = RequestSource::new(Plan { messages: 5, per_webhook: 1 }, factory(), b"k".to_vec());
        assert_eq!(source.get(4).body, small.get(4).body);
        assert_eq!(source.get(PREBUILD_LIMIT).messages, 1);
    }
}
