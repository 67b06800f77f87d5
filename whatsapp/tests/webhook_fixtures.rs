//! Webhook parsing and flattening over every fixture and hand-made batches.

mod common;

use chrono::{TimeZone, Utc};
use parley_whatsapp::errors::ErrorKind;
use parley_whatsapp::webhook::{
    parse, AccountUpdate, InboundMessage, NumberQualityUpdate, Pricing, StatusKind, StatusUpdate, TemplateStatusUpdate,
    UserPreference, WebhookItem, WebhookPayload,
};
use serde_json::{json, Value};

const PNID: &str = "106540352242922";
const DISPLAY: &str = "15550783881";
const WABA: &str = "102290129340398";
const CUSTOMER: &str = "16505551234";

fn items_of(name: &str) -> Vec<WebhookItem> {
    parse(&common::fixture(name)).unwrap_or_else(|error| panic!("{name}: {error}")).items()
}

fn messages_of(name: &str) -> Vec<InboundMessage> {
    items_of(name)
        .into_iter()
        .map(|item| match item {
            WebhookItem::Message { phone_number_id, display_phone_number, waba_id, contact_name, message } => {
                assert_eq!(phone_number_id, PNID);
                assert_eq!(display_phone_number, DISPLAY);
                assert_eq!(waba_id, WABA);
                assert_eq!(contact_name.as_deref(), Some("Sheena Nelson"));
                message
            }
            other => panic!("{name}: expected a message, got {other:?}"),
        })
        .collect()
}

fn statuses_of(name: &str) -> Vec<StatusUpdate> {
    items_of(name)
        .into_iter()
        .map(|item| match item {
            WebhookItem::Status { phone_number_id, waba_id, status } => {
                assert_eq!(phone_number_id, PNID);
                assert_eq!(waba_id, WABA);
                status
            }
            other => panic!("{name}: expected a status, got {other:?}"),
        })
        .collect()
}

fn other_of(name: &str) -> (Option<String>, String, Value) {
    let mut items = items_of(name);
    assert_eq!(items.len(), 1, "{name}");
    match items.remove(0) {
        WebhookItem::Other { phone_number_id, waba_id, field, value } => {
            assert_eq!(waba_id, WABA);
            (phone_number_id, field, value)
        }
        other => panic!("{name}: expected another field, got {other:?}"),
    }
}

#[test]
fn every_webhook_fixture_parses_with_the_right_item_count() {
    let expected = [
        ("account_update_disabled.json", 1),
        ("account_update_restriction.json", 1),
        ("inbound_contacts.json", 1),
        ("inbound_interactive.json", 3),
        ("inbound_media.json", 4),
        ("inbound_reaction.json", 1),
        ("inbound_referral.json", 1),
        ("inbound_stop.json", 1),
        ("inbound_text.json", 1),
        ("inbound_unsupported.json", 1),
        ("phone_number_quality_update.json", 1),
        ("status_batch_out_of_order.json", 3),
        ("status_delivered.json", 1),
        ("status_failed.json", 1),
        ("status_read.json", 1),
        ("status_sent.json", 1),
        ("status_template_marketing_sent.json", 1),
        ("template_status_rejected.json", 1),
        ("template_status_update.json", 1),
        ("user_preferences_stop.json", 1),
    ];
    let webhook_fixtures: Vec<String> =
        common::fixture_names().into_iter().filter(|name| !name.starts_with("send_")).collect();
    let listed: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    assert_eq!(webhook_fixtures, listed, "every webhook fixture is checked");
    for (name, count) in expected {
        assert_eq!(items_of(name).len(), count, "{name}");
    }
}

#[test]
fn inbound_text_reads_completely() {
    let messages = messages_of("inbound_text.json");
    let message = &messages[0];
    assert_eq!(message.wamid, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
    assert_eq!(message.from, CUSTOMER);
    assert_eq!(message.timestamp, Utc.timestamp_opt(1_749_416_383, 0).single().expect("valid"));
    assert_eq!(message.kind, "text");
    assert_eq!(message.content, json!({"body": "Does it come in another color?"}));
    assert_eq!(message.text(), Some("Does it come in another color?"));
    assert_eq!(message.context, None);
    assert_eq!(message.referral, None);
    assert!(message.errors.is_empty());
}

#[test]
fn taps_read_as_text() {
    let messages = messages_of("inbound_interactive.json");
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["interactive", "interactive", "button"]);
    let texts: Vec<Option<&str>> = messages.iter().map(InboundMessage::text).collect();
    assert_eq!(texts, [Some("title"), Some("title"), Some("title")]);
    assert_eq!(messages[1].content["list_reply"]["id"], "row_1");
    assert_eq!(messages[2].content["payload"], "callback_data");
    let replied_to: Vec<&str> =
        messages.iter().map(|m| m.context.as_ref().and_then(|c| c["id"].as_str()).expect("context")).collect();
    assert_eq!(replied_to, ["wamid.OUT0001", "wamid.OUT0002", "wamid.OUT0003"]);
}

#[test]
fn media_and_location_carry_their_objects_and_no_text() {
    let messages = messages_of("inbound_media.json");
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["image", "document", "audio", "location"]);
    assert!(messages.iter().all(|m| m.text().is_none()));
    assert_eq!(messages[0].content["id"], "65463453");
    assert_eq!(messages[1].content["filename"], "filename.pdf");
    assert_eq!(messages[1].context, Some(json!({"forwarded": true})));
    assert_eq!(messages[2].content["voice"], true);
    assert_eq!(messages[3].content["latitude"], 37.4611978);
}

#[test]
fn reactions_referrals_and_stop() {
    let reaction = &messages_of("inbound_reaction.json")[0];
    assert_eq!(reaction.kind, "reaction");
    assert_eq!(reaction.content["message_id"], "wamid.OUT0001");
    assert_eq!(reaction.content["emoji"], "\u{1f62e}");
    assert_eq!(reaction.text(), None);

    let referral = &messages_of("inbound_referral.json")[0];
    assert_eq!(referral.text(), Some("Hi, I saw your ad"));
    let ad = referral.referral.as_ref().expect("referral");
    assert_eq!(ad["ctwa_clid"], "CTWA_CLID");
    assert_eq!(ad["source_type"], "ad");

    assert_eq!(messages_of("inbound_stop.json")[0].text(), Some("STOP"));
}

#[test]
fn unsupported_messages_keep_their_errors() {
    let message = &messages_of("inbound_unsupported.json")[0];
    assert_eq!(message.kind, "unsupported");
    assert_eq!(message.content, Value::Null);
    assert_eq!(message.errors.len(), 1);
    let error = &message.errors[0];
    assert_eq!(error.code, 131051);
    assert_eq!(error.title.as_deref(), Some("Message type unknown"));
    assert_eq!(error.details.as_deref(), Some("Message type is currently not supported."));
    assert_eq!(ErrorKind::from_code(error.code), ErrorKind::UnsupportedType);
}

#[test]
fn out_of_order_batch_yields_every_status_in_body_order() {
    let statuses = statuses_of("status_batch_out_of_order.json");
    let kinds: Vec<StatusKind> = statuses.iter().map(|s| s.status).collect();
    assert_eq!(kinds, [StatusKind::Read, StatusKind::Delivered, StatusKind::Sent]);
    let times: Vec<i64> = statuses.iter().map(|s| s.timestamp.timestamp()).collect();
    assert_eq!(times, [1_749_416_805, 1_749_416_803, 1_749_416_801]);
    assert!(statuses.iter().all(|s| s.wamid == "wamid.OUT0006" && s.recipient_id == CUSTOMER));
}

#[test]
fn pricing_is_read_from_sent_and_delivered() {
    let service = Pricing {
        billable: Some(false),
        pricing_model: Some("PMP".into()),
        category: Some("service".into()),
        pricing_type: Some("free_customer_service".into()),
    };
    for name in ["status_sent.json", "status_delivered.json"] {
        let status = &statuses_of(name)[0];
        assert_eq!(status.pricing.as_ref(), Some(&service), "{name}");
        assert_eq!(status.conversation.as_ref().map(|c| c["origin"]["type"].clone()), Some(json!("service")));
    }
    let marketing = &statuses_of("status_template_marketing_sent.json")[0];
    assert_eq!(marketing.status, StatusKind::Sent);
    let pricing = marketing.pricing.as_ref().expect("pricing");
    assert_eq!(pricing.billable, Some(true));
    assert_eq!(pricing.category.as_deref(), Some("marketing"));
    assert_eq!(pricing.pricing_type.as_deref(), Some("regular"));

    let read = &statuses_of("status_read.json")[0];
    assert_eq!(read.status, StatusKind::Read);
    assert_eq!(read.pricing, None);
    assert_eq!(read.biz_opaque_callback_data, None);
}

#[test]
fn failed_status_carries_the_error() {
    let failed = &statuses_of("status_failed.json")[0];
    assert_eq!(failed.status, StatusKind::Failed);
    let error = &failed.errors[0];
    assert_eq!(error.code, 131047);
    assert_eq!(ErrorKind::from_code(error.code), ErrorKind::WindowClosed);
    assert!(error.details.as_deref().is_some_and(|details| details.contains("24 hours")));
}

#[test]
fn template_status_changes_are_other_items_and_read_typed() {
    let (phone_number_id, field, value) = other_of("template_status_rejected.json");
    assert_eq!(phone_number_id, None);
    assert_eq!(field, "message_template_status_update");
    let update = TemplateStatusUpdate::from_value(&value).expect("typed");
    assert_eq!(update.event, "REJECTED");
    assert_eq!(update.message_template_id, 1_689_556_908_129_833);
    assert_eq!(update.message_template_name, "big_sale");
    assert_eq!(update.reason.as_deref(), Some("INVALID_FORMAT"));
    assert_eq!(update.message_template_category.as_deref(), Some("MARKETING"));

    let (_, _, value) = other_of("template_status_update.json");
    let update = TemplateStatusUpdate::from_value(&value).expect("typed");
    assert_eq!(update.event, "APPROVED");
    assert_eq!(update.message_template_language, "en_US");
}

#[test]
fn number_health_updates_are_other_items_of_the_account_and_read_typed() {
    let (number, field, value) = other_of("phone_number_quality_update.json");
    assert_eq!((number, field.as_str()), (None, "phone_number_quality_update"));
    let quality = NumberQualityUpdate::from_value(&value).expect("quality update");
    assert_eq!(quality.display_phone_number, DISPLAY);
    assert_eq!(quality.event, "FLAGGED");
    assert_eq!(quality.current_limit.as_deref(), Some("TIER_1K"));

    let (number, field, value) = other_of("account_update_restriction.json");
    assert_eq!((number, field.as_str()), (None, "account_update"));
    let update = AccountUpdate::from_value(&value).expect("account update");
    assert_eq!(update.phone_number.as_deref(), Some(DISPLAY));
    assert_eq!(update.standing(), Some(("RESTRICTED", Some("RESTRICTED_BIZ_INITIATED_MESSAGING".to_owned()))));

    let (_, _, value) = other_of("account_update_disabled.json");
    let update = AccountUpdate::from_value(&value).expect("account update");
    assert_eq!(update.phone_number, None, "a ban concerns the whole account");
    assert_eq!(update.standing(), Some(("DISABLED", Some("DISABLE".to_owned()))));
    let reinstated = json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE"}});
    assert_eq!(AccountUpdate::from_value(&reinstated).unwrap().standing().map(|s| s.0), Some("CONNECTED"));
    let verified = json!({"event": "VERIFIED_ACCOUNT", "phone_number": DISPLAY});
    assert_eq!(AccountUpdate::from_value(&verified).unwrap().standing(), None);
}

#[test]
fn contacts_carry_their_cards() {
    let message = &messages_of("inbound_contacts.json")[0];
    assert_eq!(message.kind, "contacts");
    assert_eq!(message.content[0]["name"]["formatted_name"], "Barbara Johnson");
    assert_eq!(message.text(), None);
}

#[test]
fn user_preferences_are_other_items_with_their_number() {
    let (phone_number_id, field, value) = other_of("user_preferences_stop.json");
    assert_eq!(phone_number_id.as_deref(), Some(PNID));
    assert_eq!(field, "user_preferences");
    let preferences = UserPreference::list_from_value(&value).expect("typed");
    assert_eq!(preferences.len(), 1);
    assert_eq!(preferences[0].wa_id, CUSTOMER);
    assert_eq!(preferences[0].category, "marketing_messages");
    assert_eq!(preferences[0].value, "stop");
    assert_eq!(preferences[0].timestamp.timestamp(), 1_731_705_721);
}

/// A `messages` change with `count` text messages from the same customer.
fn change(tag: &str, count: usize) -> Value {
    let messages: Vec<Value> = (0..count)
        .map(|i| {
            json!({"from": CUSTOMER, "id": format!("wamid.{tag}.{i}"), "timestamp": "1749416383",
                   "type": "text", "text": {"body": format!("{tag} {i}")}, "brand_new_field": {"x": 1}})
        })
        .collect();
    json!({
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID, "extra": true},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": CUSTOMER, "user_id": "US.1"}],
            "messages": messages,
            "some_future_list": []
        }
    })
}

#[test]
fn two_entries_of_two_changes_of_two_messages_give_eight_items_in_order() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "waba-a", "time": 1749416383, "changes": [change("a1", 2), change("a2", 2)]},
            {"id": "waba-b", "changes": [change("b1", 2), change("b2", 2)]}
        ]
    });
    let items = parse(&serde_json::to_vec(&body).expect("json")).expect("parse").items();
    assert_eq!(items.len(), 8);
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|item| match item {
            WebhookItem::Message { waba_id, message, .. } => (waba_id.clone(), message.wamid.clone()),
            other => panic!("expected messages only, got {other:?}"),
        })
        .collect();
    let expected: Vec<(String, String)> = [("waba-a", "a1"), ("waba-a", "a2"), ("waba-b", "b1"), ("waba-b", "b2")]
        .iter()
        .flat_map(|(waba, tag)| (0..2).map(move |i| (waba.to_string(), format!("wamid.{tag}.{i}"))))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn an_unknown_status_does_not_sink_the_batch() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
            "statuses": [
                {"id": "wamid.1", "status": "sent", "timestamp": "1749416801", "recipient_id": CUSTOMER},
                {"id": "wamid.1", "status": "teleported", "timestamp": "1749416802", "recipient_id": CUSTOMER},
                {"id": "wamid.1", "status": "played", "timestamp": "1749416803", "recipient_id": CUSTOMER}
            ]
        }}]}]
    });
    let items = parse(&serde_json::to_vec(&body).expect("json")).expect("parse").items();
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[0], WebhookItem::Status { status, .. } if status.status == StatusKind::Sent));
    match &items[1] {
        WebhookItem::Other { phone_number_id, field, value, .. } => {
            assert_eq!(phone_number_id.as_deref(), Some(PNID));
            assert_eq!(field, "messages");
            assert_eq!(value["status"], "teleported");
            assert_eq!(value["id"], "wamid.1");
        }
        other => panic!("expected the unknown status as another item, got {other:?}"),
    }
    assert!(matches!(&items[2], WebhookItem::Status { status, .. } if status.status == StatusKind::Played));
}

#[test]
fn a_messages_change_with_neither_messages_nor_statuses_is_kept() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
            "errors": [{"code": 131000, "title": "Something went wrong"}]
        }}]}]
    });
    let items = parse(&serde_json::to_vec(&body).expect("json")).expect("parse").items();
    match items.as_slice() {
        [WebhookItem::Other { field, value, .. }] => {
            assert_eq!(field, "messages");
            assert_eq!(value["errors"][0]["code"], 131000);
        }
        other => panic!("expected one other item, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_are_errors() {
    for body in [
        &b"not json"[..],
        br#"{"entry": []}"#,
        br#"{"object": "whatsapp_business_account", "entry": [{"changes": []}]}"#,
        // A message without its id cannot be processed exactly once.
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"1","phone_number_id":"2"},"messages":[{"from":"3","timestamp":"1","type":"text"}]}}]}]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"1","phone_number_id":"2"},"statuses":[{"id":"w","status":"sent","timestamp":"soon","recipient_id":"3"}]}}]}]}"#,
    ] {
        assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn payloads_survive_a_serialisation_round_trip() {
    for name in common::fixture_names().into_iter().filter(|n| !n.starts_with("send_")) {
        let payload = parse(&common::fixture(&name)).expect("parse");
        let again: WebhookPayload = parse(&serde_json::to_vec(&payload).expect("serialise")).expect("parse again");
        assert_eq!(again.items(), payload.items(), "{name}");
    }
}
