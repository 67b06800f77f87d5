//! The send request and response in the Cloud API's shapes.

mod common;

use parley_whatsapp::send::{SendAccepted, SendRequest};
use serde_json::json;

#[test]
fn a_bare_text_send_has_no_optional_fields() {
    let value = serde_json::to_value(SendRequest::text("16505551234", "Hi")).expect("serialise");
    assert_eq!(
        value,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
               "to": "16505551234", "type": "text", "text": {"body": "Hi"}})
    );
}

#[test]
fn content_goes_under_the_key_named_by_the_type() {
    let request = SendRequest {
        to: "16505551234".into(),
        kind: "template".into(),
        content: json!({"name": "order_confirmation", "language": {"code": "en_US"}}),
        context_message_id: None,
        biz_opaque_callback_data: Some("parley:msg-1".into()),
    };
    let value = serde_json::to_value(&request).expect("serialise");
    assert_eq!(value["type"], "template");
    assert_eq!(value["template"]["name"], "order_confirmation");
    assert_eq!(value["biz_opaque_callback_data"], "parley:msg-1");
    assert!(value.get("context").is_none());
    let back: SendRequest = serde_json::from_value(value).expect("read back");
    assert_eq!(back, request);
}

#[test]
fn the_send_response_fixture_reads_as_accepted() {
    let accepted = SendAccepted::from_response_body(&common::fixture("send_response.json")).expect("accepted");
    assert_eq!(accepted.wamid, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
    assert_eq!(accepted.message_status.as_deref(), Some("accepted"));
    assert!(SendAccepted::from_response_body(br#"{"messaging_product":"whatsapp","messages":[]}"#).is_err());
}

#[test]
fn a_type_named_like_an_envelope_key_does_not_serialise() {
    for kind in ["", "to", "type", "context"] {
        let mut request = SendRequest::text("16505551234", "Hi");
        request.kind = kind.into();
        assert!(serde_json::to_value(&request).is_err(), "{kind:?}");
    }
}
