//! The one conformance suite of the [`SearchIndex`] port: every adapter,
//! given the same changes, finds the same messages in the same order.
//!
//! The port sees terms only (already keyed), so the cases use readable
//! strings as terms.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parley_vault::Sealed;
use uuid::Uuid;

use super::{SearchChange, SearchIndex};

/// Runs every case; `make` gives an empty index.
pub async fn run_search_index_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SearchIndex>>,
{
    the_first_key_stored_wins(make().await).await;
    every_term_must_match_and_the_newest_come_first(make().await).await;
    pages_follow_the_cursor_without_gaps_or_repeats(make().await).await;
    adding_again_changes_nothing_and_new_terms_join_the_entry(make().await).await;
    forgetting_drops_every_term_of_the_message(make().await).await;
    tenants_never_see_each_other(make().await).await;
}

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-11-02T09:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default() + Duration::minutes(minutes)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn add(tenant: &str, message: u128, minutes: i64, terms: &[&str]) -> SearchChange {
    SearchChange::Add {
        tenant_id: tenant.into(),
        message_id: id(message),
        created_at: at(minutes),
        terms: terms.iter().map(|t| t.to_string()).collect(),
    }
}

fn terms(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

async fn found(index: &dyn SearchIndex, tenant: &str, list: &[&str]) -> Vec<Uuid> {
    let page = index.search(tenant, &terms(list), None, 100).await.expect("search");
    assert_eq!(page.next_cursor, None, "one page holds every hit");
    page.items.into_iter().map(|h| h.message_id).collect()
}

fn sealed(c: &str) -> Sealed {
    Sealed { k: "t1/search/1".into(), n: "bm9uY2Vub25jZQ==".into(), c: c.into() }
}

pub async fn the_first_key_stored_wins(index: Arc<dyn SearchIndex>) {
    assert_eq!(index.key("t1").await.expect("key"), None);
    assert_eq!(index.put_key("t1", &sealed("first")).await.expect("put"), sealed("first"));
    assert_eq!(index.put_key("t1", &sealed("second")).await.expect("put"), sealed("first"), "the first key stays");
    assert_eq!(index.key("t1").await.expect("key"), Some(sealed("first")));
    assert_eq!(index.key("t2").await.expect("key"), None, "keys are per tenant");
}

pub async fn every_term_must_match_and_the_newest_come_first(index: Arc<dyn SearchIndex>) {
    index
        .apply(&[
            add("t1", 1, 1, &["refund", "order"]),
            add("t1", 2, 2, &["refund", "please"]),
            add("t1", 3, 3, &["order", "shipped", "refund"]),
            add("t1", 4, 4, &["hello"]),
        ])
        .await
        .expect("apply");
    assert_eq!(found(&*index, "t1", &["refund"]).await, [id(3), id(2), id(1)]);
    assert_eq!(found(&*index, "t1", &["refund", "order"]).await, [id(3), id(1)]);
    assert_eq!(found(&*index, "t1", &["order", "refund", "shipped"]).await, [id(3)]);
    assert!(found(&*index, "t1", &["refund", "hello"]).await.is_empty());
    assert!(found(&*index, "t1", &["nothing"]).await.is_empty());
    assert!(found(&*index, "t1", &[]).await.is_empty(), "no terms find nothing");
    let hit = &index.search("t1", &terms(&["hello"]), None, 10).await.expect("search").items[0];
    assert_eq!(hit.created_at, at(4));
}

pub async fn pages_follow_the_cursor_without_gaps_or_repeats(index: Arc<dyn SearchIndex>) {
    // Two messages share each time: the id breaks the tie.
    let changes: Vec<_> = (1..=7).map(|n| add("t1", n, (n / 2) as i64, &["invoice"])).collect();
    index.apply(&changes).await.expect("apply");
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = index.search("t1", &terms(&["invoice"]), cursor.as_deref(), 3).await.expect("search");
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|h| h.message_id));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor must move on");
    }
    assert_eq!(seen, (1..=7).rev().map(id).collect::<Vec<_>>(), "newest first, ties by id, each once");
    assert_eq!(pages, 3);
    assert!(index.search("t1", &terms(&["invoice"]), Some("not a cursor"), 3).await.is_err());
}

pub async fn adding_again_changes_nothing_and_new_terms_join_the_entry(index: Arc<dyn SearchIndex>) {
    let first = add("t1", 1, 1, &["template", "sale"]);
    index.apply(&[first.clone(), add("t1", 2, 2, &["sale"])]).await.expect("apply");
    index.apply(&[first]).await.expect("apply again");
    assert_eq!(found(&*index, "t1", &["sale"]).await, [id(2), id(1)]);
    // A rendered text arrives later, with its own time: the entry keeps its first one.
    index.apply(&[add("t1", 1, 30, &["spring", "sale"])]).await.expect("apply");
    assert_eq!(found(&*index, "t1", &["sale"]).await, [id(2), id(1)], "the order is unchanged");
    assert_eq!(found(&*index, "t1", &["spring", "template"]).await, [id(1)]);
    let hits = index.search("t1", &terms(&["spring"]), None, 10).await.expect("search").items;
    assert_eq!(hits[0].created_at, at(1));
}

pub async fn forgetting_drops_every_term_of_the_message(index: Arc<dyn SearchIndex>) {
    index.apply(&[add("t1", 1, 1, &["card", "declined"]), add("t1", 2, 2, &["card", "expired"])]).await.expect("apply");
    let forget = SearchChange::Forget { tenant_id: "t1".into(), message_id: id(1) };
    index.apply(std::slice::from_ref(&forget)).await.expect("forget");
    index.apply(&[forget]).await.expect("forgetting twice is fine");
    assert!(found(&*index, "t1", &["declined"]).await.is_empty());
    assert_eq!(found(&*index, "t1", &["card"]).await, [id(2)]);
    let unknown = SearchChange::Forget { tenant_id: "t1".into(), message_id: id(99) };
    index.apply(&[unknown]).await.expect("forgetting an unknown message is fine");
    // Forgotten, then indexed again (restored from the archive): found again.
    index.apply(&[add("t1", 1, 1, &["card", "declined"])]).await.expect("apply");
    assert_eq!(found(&*index, "t1", &["card"]).await, [id(2), id(1)]);
}

pub async fn tenants_never_see_each_other(index: Arc<dyn SearchIndex>) {
    index
        .apply(&[
            add("t1", 1, 1, &["secret", "plan"]),
            add("t2", 2, 2, &["secret", "plan"]),
            add("t2", 1, 3, &["other"]),
        ])
        .await
        .expect("apply");
    assert_eq!(found(&*index, "t1", &["secret"]).await, [id(1)]);
    assert_eq!(found(&*index, "t2", &["secret"]).await, [id(2)]);
    // The same message id in two tenants is two entries.
    assert!(found(&*index, "t1", &["other"]).await.is_empty());
    index.apply(&[SearchChange::Forget { tenant_id: "t2".into(), message_id: id(1) }]).await.expect("forget");
    assert_eq!(found(&*index, "t1", &["plan"]).await, [id(1)], "forgetting in one tenant leaves the other");
    let t2_cursor = index.search("t2", &terms(&["secret"]), None, 1).await.expect("search").items;
    assert_eq!(t2_cursor.len(), 1);
    assert!(found(&*index, "t3", &["secret"]).await.is_empty());
}
