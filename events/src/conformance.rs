//! The conformance suite of the event store port: every adapter must pass it.
//!
//! Adapters in this crate run it from their tests; adapters in other crates
//! enable the `conformance` feature and call [`run_event_store_suite`] from
//! theirs. Failures panic with the name of the case, like any test assertion.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

/// How long one case may take before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a subscriber may wait for the tick of a commit.
const TICK_TIMEOUT: Duration = Duration::from_secs(5);
/// Tasks racing in the concurrency cases.
const RACERS: usize = 16;
/// Appends per task in the many-streams case.
const APPENDS_PER_RACER: u64 = 20;

const TENANT: &str = "tenant-conformance";

/// Runs every case of the suite, each against a fresh, empty store from `make`.
pub async fn run_event_store_suite<S, F, Fut>(make: F)
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            let store = Arc::new(make().await);
            if tokio::time::timeout(CASE_TIMEOUT, $case(store)).await.is_err() {
                panic!("event store conformance: {} took longer than {CASE_TIMEOUT:?}", stringify!($case));
            }
        )*};
    }
    cases!(
        appends_to_new_streams,
        versions_are_gapless_from_one,
        exact_conflict_reports_actual_and_appends_nothing,
        any_skips_the_check,
        empty_append_is_refused,
        read_stream_after_version,
        read_all_orders_and_pages,
        positions_increase_across_streams,
        head_position_follows_commits,
        reads_see_own_writes,
        one_of_many_racing_writers_wins,
        racing_writers_on_distinct_streams_all_win,
        envelope_round_trips,
        subscribers_tick_on_commit,
        dormant_streams_are_whole_old_and_prefixed,
        archived_streams_leave_and_come_back_unchanged,
    );
}

/// A new event with a fresh id, a nanosecond-precise time and some data.
fn event(event_type: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        occurred_at: Utc::now(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "conformance".to_owned(),
        data: json!({"n": 1}),
    }
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(&format!("Happened{i}"))).collect()
}

async fn append<S: EventStore>(store: &S, stream: &str, expected: ExpectedVersion, n: usize) -> AppendOutcome {
    store
        .append(TENANT, stream, expected, events(n))
        .await
        .unwrap_or_else(|e| panic!("append of {n} to {stream} at {expected:?} failed: {e}"))
}

async fn read_stream<S: EventStore>(store: &S, stream: &str, after: u64) -> Vec<RecordedEvent> {
    store.read_stream(stream, after).await.unwrap_or_else(|e| panic!("read_stream({stream}, {after}) failed: {e}"))
}

async fn read_all<S: EventStore>(store: &S, after: u64, max: usize) -> Vec<RecordedEvent> {
    store.read_all(after, max).await.unwrap_or_else(|e| panic!("read_all({after}, {max}) failed: {e}"))
}

async fn head<S: EventStore>(store: &S) -> u64 {
    store.head_position().await.unwrap_or_else(|e| panic!("head_position failed: {e}"))
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.global_position).collect()
}

fn assert_strictly_increasing(values: &[u64], what: &str) {
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{what} must strictly increase: {values:?}");
}

fn assert_conflict(result: Result<AppendOutcome, StoreError>, stream: &str, expected: ExpectedVersion, actual: u64) {
    match result {
        Err(StoreError::Conflict { stream_id, expected: reported, actual: found }) => {
            assert_eq!(stream_id, stream, "conflict names the stream");
            assert_eq!(reported, expected, "conflict names the expected version");
            assert_eq!(found, actual, "conflict carries the actual version");
        }
        other => panic!("append to {stream} at {expected:?} should conflict at {actual}, got {other:?}"),
    }
}

async fn appends_to_new_streams<S: EventStore>(store: Arc<S>) {
    let outcome = append(&*store, "s-no-stream", ExpectedVersion::NoStream, 2).await;
    assert_eq!(outcome.version, 2, "NoStream on a new stream");
    let outcome = append(&*store, "s-exact-zero", ExpectedVersion::Exact(0), 1).await;
    assert_eq!(outcome.version, 1, "Exact(0) on a new stream");

    let again = store.append(TENANT, "s-no-stream", ExpectedVersion::NoStream, events(1)).await;
    assert_conflict(again, "s-no-stream", ExpectedVersion::NoStream, 2);
    let again = store.append(TENANT, "s-exact-zero", ExpectedVersion::Exact(0), events(1)).await;
    assert_conflict(again, "s-exact-zero", ExpectedVersion::Exact(0), 1);
}

async fn versions_are_gapless_from_one<S: EventStore>(store: Arc<S>) {
    let mut version = 0;
    for n in 1..=3 {
        let outcome = append(&*store, "s-gapless", ExpectedVersion::Exact(version), n).await;
        assert_eq!(outcome.version, version + n as u64, "outcome version after appending {n}");
        version = outcome.version;
    }
    assert_eq!(versions(&read_stream(&*store, "s-gapless", 0).await), (1..=6).collect::<Vec<_>>());
}

async fn exact_conflict_reports_actual_and_appends_nothing<S: EventStore>(store: Arc<S>) {
    append(&*store, "s-conflict", ExpectedVersion::NoStream, 2).await;
    let head_before = head(&*store).await;
    for stale in [ExpectedVersion::Exact(1), ExpectedVersion::Exact(3), ExpectedVersion::Exact(0)] {
        let result = store.append(TENANT, "s-conflict", stale, events(3)).await;
        assert_conflict(result, "s-conflict", stale, 2);
    }
    let result = store.append(TENANT, "s-absent", ExpectedVersion::Exact(4), events(1)).await;
    assert_conflict(result, "s-absent", ExpectedVersion::Exact(4), 0);

    assert_eq!(versions(&read_stream(&*store, "s-conflict", 0).await), vec![1, 2], "conflicts append nothing");
    assert!(read_stream(&*store, "s-absent", 0).await.is_empty(), "a conflict creates no stream");
    assert_eq!(head(&*store).await, head_before, "conflicts do not move the head");
    assert_eq!(read_all(&*store, 0, 100).await.len(), 2);
}

async fn any_skips_the_check<S: EventStore>(store: Arc<S>) {
    assert_eq!(append(&*store, "s-any", ExpectedVersion::Any, 1).await.version, 1, "Any on a new stream");
    assert_eq!(append(&*store, "s-any", ExpectedVersion::Any, 2).await.version, 3, "Any on an existing stream");
    assert_eq!(versions(&read_stream(&*store, "s-any", 0).await), vec![1, 2, 3]);
}

async fn empty_append_is_refused<S: EventStore>(store: Arc<S>) {
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(0), ExpectedVersion::Any] {
        let result = store.append(TENANT, "s-empty", expected, Vec::new()).await;
        assert!(matches!(result, Err(StoreError::Empty)), "empty append at {expected:?}: {result:?}");
    }
    assert!(read_stream(&*store, "s-empty", 0).await.is_empty());
    assert_eq!(head(&*store).await, 0);
    // The stream is still new: an empty append did not create it.
    assert_eq!(append(&*store, "s-empty", ExpectedVersion::NoStream, 1).await.version, 1);
}

async fn read_stream_after_version<S: EventStore>(store: Arc<S>) {
    append(&*store, "s-read", ExpectedVersion::NoStream, 2).await;
    append(&*store, "s-other", ExpectedVersion::NoStream, 2).await;
    append(&*store, "s-read", ExpectedVersion::Exact(2), 3).await;

    let all = read_stream(&*store, "s-read", 0).await;
    assert_eq!(versions(&all), vec![1, 2, 3, 4, 5]);
    assert!(all.iter().all(|e| e.stream_id == "s-read"), "only the stream's own events");
    assert_eq!(versions(&read_stream(&*store, "s-read", 2).await), vec![3, 4, 5]);
    assert_eq!(versions(&read_stream(&*store, "s-read", 4).await), vec![5]);
    assert!(read_stream(&*store, "s-read", 5).await.is_empty(), "nothing after the last version");
    assert!(read_stream(&*store, "s-read", 99).await.is_empty(), "nothing after a future version");
    assert!(read_stream(&*store, "s-unknown", 0).await.is_empty(), "an unknown stream is empty");
}

async fn read_all_orders_and_pages<S: EventStore>(store: Arc<S>) {
    let mut lasts = Vec::new();
    for round in 0..3 {
        for stream in ["s-a", "s-b", "s-c"] {
            lasts.push(append(&*store, stream, ExpectedVersion::Exact(round * 2), 2).await.last_position);
        }
    }
    let all = read_all(&*store, 0, 1000).await;
    assert_eq!(all.len(), 18);
    assert_strictly_increasing(&positions(&all), "read_all positions");
    // Commit order: each append's events sit right before the next append's.
    let streams: Vec<&str> = all.iter().map(|e| e.stream_id.as_str()).collect();
    let expected: Vec<&str> = (0..3).flat_map(|_| ["s-a", "s-a", "s-b", "s-b", "s-c", "s-c"]).collect();
    assert_eq!(streams, expected, "read_all follows commit order");
    let append_ends: Vec<u64> = all.iter().skip(1).step_by(2).map(|e| e.global_position).collect();
    assert_eq!(append_ends, lasts, "last_position of each append is its last event's position");

    for page_size in [1, 2, 5, 18, 50] {
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = read_all(&*store, after, page_size).await;
            assert!(page.len() <= page_size, "a page holds at most max events");
            let Some(last) = page.last() else { break };
            after = last.global_position;
            paged.extend(page);
        }
        assert_eq!(paged, all, "paging by {page_size} yields the same log");
    }

    let middle = all[7].global_position;
    assert_eq!(read_all(&*store, middle, 1000).await, all[8..].to_vec(), "read_all after a position");
    assert!(read_all(&*store, 0, 0).await.is_empty(), "max 0 reads nothing");
    let last = all[17].global_position;
    assert!(read_all(&*store, last, 10).await.is_empty(), "nothing after the head");
}

async fn positions_increase_across_streams<S: EventStore>(store: Arc<S>) {
    let mut previous = 0;
    for i in 0..10 {
        let outcome = append(&*store, &format!("s-pos-{}", i % 4), ExpectedVersion::Any, 1 + i % 3).await;
        assert!(outcome.last_position > previous, "append {i}: {} after {previous}", outcome.last_position);
        previous = outcome.last_position;
    }
    let all = read_all(&*store, 0, 1000).await;
    assert_eq!(all.len(), (0..10).map(|i| 1 + i % 3).sum::<usize>());
    assert_strictly_increasing(&positions(&all), "positions across streams");
    assert!(all[0].global_position >= 1, "positions start after 0");
}

async fn head_position_follows_commits<S: EventStore>(store: Arc<S>) {
    assert_eq!(head(&*store).await, 0, "an empty store is at 0");
    let first = append(&*store, "s-head-1", ExpectedVersion::NoStream, 3).await;
    assert_eq!(head(&*store).await, first.last_position);
    let second = append(&*store, "s-head-2", ExpectedVersion::NoStream, 1).await;
    assert_eq!(head(&*store).await, second.last_position);
    let all = read_all(&*store, 0, 100).await;
    assert_eq!(all.last().map(|e| e.global_position), Some(second.last_position), "head is the last position");
}

async fn reads_see_own_writes<S: EventStore>(store: Arc<S>) {
    let mut version = 0;
    for _ in 0..20 {
        let before = head(&*store).await;
        let new = events(1);
        let id = new[0].event_id;
        let outcome = store
            .append(TENANT, "s-ryw", ExpectedVersion::Exact(version), new)
            .await
            .unwrap_or_else(|e| panic!("append failed: {e}"));
        version = outcome.version;
        let stream = read_stream(&*store, "s-ryw", version - 1).await;
        assert_eq!(stream.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![id], "read_stream right after append");
        let log = read_all(&*store, before, 10).await;
        assert_eq!(log.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![id], "read_all right after append");
        assert!(head(&*store).await >= outcome.last_position, "head right after append");
    }
}

async fn one_of_many_racing_writers_wins<S: EventStore>(store: Arc<S>) {
    append(&*store, "s-race", ExpectedVersion::NoStream, 1).await;
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(TENANT, "s-race", ExpectedVersion::Exact(1), events(2)).await })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap_or_else(|e| panic!("racer panicked: {e}")) {
            Ok(outcome) => {
                wins += 1;
                assert_eq!(outcome.version, 3, "the winner moves the stream to 3");
            }
            result => assert_conflict(result, "s-race", ExpectedVersion::Exact(1), 3),
        }
    }
    assert_eq!(wins, 1, "exactly one of {RACERS} racing writers wins");
    assert_eq!(versions(&read_stream(&*store, "s-race", 0).await), vec![1, 2, 3]);
    assert_eq!(read_all(&*store, 0, 1000).await.len(), 3, "losers append nothing");
}

async fn racing_writers_on_distinct_streams_all_win<S: EventStore>(store: Arc<S>) {
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let stream = format!("s-many-{i}");
                for version in 0..APPENDS_PER_RACER {
                    let outcome = store
                        .append(TENANT, &stream, ExpectedVersion::Exact(version), events(1))
                        .await
                        .unwrap_or_else(|e| panic!("append to {stream} at {version} failed: {e}"));
                    assert_eq!(outcome.version, version + 1);
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap_or_else(|e| panic!("racer failed: {e}"));
    }
    let total = RACERS * APPENDS_PER_RACER as usize;
    let all = read_all(&*store, 0, total + 10).await;
    assert_eq!(all.len(), total, "every append committed");
    assert_strictly_increasing(&positions(&all), "positions under concurrency");
    let mut per_stream: HashMap<&str, Vec<u64>> = HashMap::new();
    for event in &all {
        per_stream.entry(&event.stream_id).or_default().push(event.version);
    }
    assert_eq!(per_stream.len(), RACERS);
    for (stream, versions) in per_stream {
        assert_eq!(versions, (1..=APPENDS_PER_RACER).collect::<Vec<_>>(), "{stream} is gapless in log order");
    }
    assert_eq!(head(&*store).await, all[total - 1].global_position);
}

async fn envelope_round_trips<S: EventStore>(store: Arc<S>) {
    // Times with nanoseconds and far from now, to catch rounding and time zone slips.
    let occurred = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
    let cause = Uuid::now_v7();
    let written = vec![
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "MessageReceived".into(),
            schema_version: 3,
            occurred_at: occurred,
            correlation_id: Uuid::now_v7(),
            causation_id: Some(cause),
            actor: "user:ünïcødé ✓".into(),
            data: json!({"text": "olá 👋", "n": 1.5, "big": u64::MAX, "list": [null, true, {"nested": "x"}]}),
        },
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "MessageRead".into(),
            schema_version: 1,
            occurred_at: occurred - TimeDelta::days(400),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "system".into(),
            data: json!(null),
        },
    ];
    let before = Utc::now();
    let outcome = store
        .append("tenant-round-trip", "s-envelope", ExpectedVersion::NoStream, written.clone())
        .await
        .unwrap_or_else(|e| panic!("append failed: {e}"));
    let after = Utc::now();

    let read = read_stream(&*store, "s-envelope", 0).await;
    assert_eq!(read.len(), 2);
    for (i, (new, recorded)) in written.iter().zip(&read).enumerate() {
        assert_eq!(recorded.event_id, new.event_id, "event {i} event_id");
        assert_eq!(recorded.stream_id, "s-envelope", "event {i} stream_id");
        assert_eq!(recorded.version, i as u64 + 1, "event {i} version");
        assert_eq!(recorded.tenant_id, "tenant-round-trip", "event {i} tenant_id");
        assert_eq!(recorded.event_type, new.event_type, "event {i} type");
        assert_eq!(recorded.schema_version, new.schema_version, "event {i} schema_version");
        assert_eq!(recorded.occurred_at, new.occurred_at, "event {i} occurred_at");
        assert_eq!(recorded.correlation_id, new.correlation_id, "event {i} correlation_id");
        assert_eq!(recorded.causation_id, new.causation_id, "event {i} causation_id");
        assert_eq!(recorded.actor, new.actor, "event {i} actor");
        assert_eq!(recorded.data, new.data, "event {i} data");
        let slack = TimeDelta::seconds(1);
        assert!(
            recorded.recorded_at >= before - slack && recorded.recorded_at <= after + slack,
            "event {i} recorded_at {} is the time of the append ({before}..{after})",
            recorded.recorded_at
        );
    }
    assert_eq!(read[1].global_position, outcome.last_position);
    assert_eq!(read_all(&*store, 0, 10).await, read, "read_all returns the same envelopes");
    let again = read_stream(&*store, "s-envelope", 0).await;
    assert_eq!(again, read, "reads are repeatable, recorded_at included");
}

async fn subscribers_tick_on_commit<S: EventStore>(store: Arc<S>) {
    let mut early = store.subscribe();
    early.borrow_and_update();
    let first = append(&*store, "s-tick", ExpectedVersion::NoStream, 1).await;
    wait_for_head(&mut early, first.last_position, "a subscriber from before the append").await;

    let mut late = store.subscribe();
    late.borrow_and_update();
    let waiter = tokio::spawn(async move {
        wait_for_head(&mut late, 1, "a subscriber waiting while the append happens").await;
        *late.borrow()
    });
    tokio::task::yield_now().await;
    let second = append(&*store, "s-tick", ExpectedVersion::Exact(1), 2).await;
    let seen = waiter.await.unwrap_or_else(|e| panic!("waiting subscriber failed: {e}"));
    assert!(seen > first.last_position, "the tick carries a head past the earlier commit: {seen}");
    wait_for_head(&mut early, second.last_position, "a subscriber across two appends").await;
}

/// Waits for ticks until one shows the head at `position` or later.
/// Each wait is for a real tick: a value already seen does not count.
async fn wait_for_head(rx: &mut tokio::sync::watch::Receiver<u64>, position: u64, who: &str) {
    let reached = tokio::time::timeout(TICK_TIMEOUT, async {
        loop {
            if rx.changed().await.is_err() {
                return false;
            }
            if *rx.borrow_and_update() >= position {
                return true;
            }
        }
    })
    .await;
    assert!(matches!(reached, Ok(true)), "{who} did not see head {position} (at {})", *rx.borrow());
}

/// Events that occurred `days_ago` days before now.
fn events_at(n: usize, days_ago: i64) -> Vec<NewEvent> {
    let at = Utc::now() - TimeDelta::days(days_ago);
    events(n).into_iter().map(|e| NewEvent { occurred_at: at, ..e }).collect()
}

async fn dormant<S: EventStore>(store: &S, prefix: &str, before: DateTime<Utc>, limit: usize) -> Vec<String> {
    store.dormant_streams(prefix, before, limit).await.unwrap_or_else(|e| panic!("dormant_streams failed: {e}"))
}

async fn dormant_streams_are_whole_old_and_prefixed<S: EventStore>(store: Arc<S>) {
    let old = |n| events_at(n, 100);
    store.append(TENANT, "arc/t1/message/b", ExpectedVersion::NoStream, old(2)).await.expect("append");
    store.append(TENANT, "arc/t1/message/a", ExpectedVersion::NoStream, old(1)).await.expect("append");
    // Old, but still in use: its newest event is recent.
    store.append(TENANT, "arc/t1/message/c", ExpectedVersion::NoStream, old(3)).await.expect("append");
    store.append(TENANT, "arc/t1/message/c", ExpectedVersion::Exact(3), events_at(1, 1)).await.expect("append");
    // Another tenant's, and another kind of stream.
    store.append(TENANT, "arc/t2/message/a", ExpectedVersion::NoStream, old(1)).await.expect("append");
    store.append(TENANT, "arc/t1/contact/a", ExpectedVersion::NoStream, old(1)).await.expect("append");

    let cutoff = Utc::now() - TimeDelta::days(90);
    assert_eq!(
        dormant(&*store, "arc/t1/message/", cutoff, 100).await,
        ["arc/t1/message/a", "arc/t1/message/b"],
        "only whole streams older than the cutoff, under the prefix, by id"
    );
    assert_eq!(dormant(&*store, "arc/t1/message/", cutoff, 1).await, ["arc/t1/message/a"], "limited");
    let later = Utc::now() + TimeDelta::days(1);
    assert_eq!(dormant(&*store, "arc/t1/message/", later, 100).await.len(), 3, "a later cutoff takes c too");
    assert!(dormant(&*store, "arc/t9/", later, 100).await.is_empty(), "no such prefix");
}

async fn archived_streams_leave_and_come_back_unchanged<S: EventStore>(store: Arc<S>) {
    let (gone, kept) = ("arc/t1/message/gone", "arc/t1/message/kept");
    store.append(TENANT, gone, ExpectedVersion::NoStream, events_at(2, 120)).await.expect("append");
    store.append(TENANT, kept, ExpectedVersion::NoStream, events_at(1, 1)).await.expect("append");
    store.append(TENANT, gone, ExpectedVersion::Exact(2), events_at(1, 100)).await.expect("append");
    let original = read_stream(&*store, gone, 0).await;
    let kept_before = read_stream(&*store, kept, 0).await;
    assert_eq!(versions(&original), [1, 2, 3]);

    let cutoff = Utc::now() - TimeDelta::days(90);
    store.archive_streams(&[gone.to_owned()]).await.expect("archive");
    assert!(read_stream(&*store, gone, 0).await.is_empty(), "an archived stream leaves the hot store");
    assert!(dormant(&*store, "arc/", cutoff, 100).await.is_empty(), "and is no longer dormant");
    assert_eq!(read_stream(&*store, kept, 0).await, kept_before, "other streams stay");
    let restart = store.append(TENANT, gone, ExpectedVersion::NoStream, events(1)).await;
    assert_conflict(restart, gone, ExpectedVersion::NoStream, 3);
    store.archive_streams(&[gone.to_owned(), "arc/none".to_owned()]).await.expect("archiving again is a no-op");

    assert_eq!(store.restore_events(&original).await.expect("restore"), 3, "every event comes back");
    assert_eq!(read_stream(&*store, gone, 0).await, original, "exactly as recorded");
    assert_eq!(store.restore_events(&original).await.expect("restore again"), 0, "restoring twice adds nothing");
    assert_eq!(read_stream(&*store, gone, 0).await, original);
    let log = read_all(&*store, 0, 100).await;
    let logged: Vec<&RecordedEvent> = log.iter().filter(|e| e.stream_id == gone).collect();
    assert_eq!(logged, original.iter().collect::<Vec<_>>(), "the log holds them at their positions again");
    assert_eq!(dormant(&*store, "arc/", cutoff, 100).await, [gone], "restored streams are hot again");
    let next = append(&*store, gone, ExpectedVersion::Exact(3), 1).await;
    assert_eq!(next.version, 4, "the stream goes on where it was");
}
