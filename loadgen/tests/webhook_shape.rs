//! Generated bodies have exactly the shape of the Cloud API's inbound text message webhook.

use parley_loadgen::{RunIds, WebhookFactory};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/inbound_text.json");

/// The structure of a JSON value with every leaf replaced by its type name.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
    }
}

#[test]
fn one_message_body_has_the_fixture_shape() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let factory = WebhookFactory {
        ids: RunIds::random(),
        waba_id: "102290129340398".into(),
        phone_number_id: "106540352242922".into(),
        display_phone_number: "15550783881".into(),
        conversations: 5000,
        timestamp: 1_749_416_383,
    };
    let body: Value = serde_json::from_slice(&factory.body(0, 1)).expect("body is JSON");
    assert_eq!(shape(&body), shape(&fixture));
    // Fixed values are the fixture's own.
    for pointer in [
        "/object",
        "/entry/0/id",
        "/entry/0/changes/0/field",
        "/entry/0/changes/0/value/messaging_product",
        "/entry/0/changes/0/value/metadata",
        "/entry/0/changes/0/value/messages/0/type",
        "/entry/0/changes/0/value/messages/0/timestamp",
    ] {
        assert_eq!(body.pointer(pointer), fixture.pointer(pointer), "{pointer}");
    }
}
