//! The SQS work queue against the emulator: the queue port's conformance
//! suite, batch sends, and the redrive policy found from the queue alone.

mod emulator;

use std::sync::Arc;
use std::time::Duration;

use parley_app::queue::{conformance, WorkQueue};
use parley_aws::sqs::SqsQueue;

async fn client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&emulator::sdk_config().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_queue_conforms() {
    let client = client().await;
    conformance::run_queue_suite_with_tick(
        || {
            let client = client.clone();
            async move {
                Arc::new(SqsQueue::create_with_dlq(client, &emulator::unique("conf"), 3).await.unwrap())
                    as Arc<dyn WorkQueue>
            }
        },
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn send_batch_delivers_every_body_across_chunks() {
    let q = SqsQueue::create_with_dlq(client().await, &emulator::unique("batch"), 3).await.unwrap();
    let bodies: Vec<String> = (0..23).map(|i| format!("body-{i}")).collect();
    q.send_batch(&bodies, Duration::ZERO).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        let batch = q.receive(10, Duration::from_secs(30), Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        got.extend(batch.into_iter().map(|d| d.body));
    }
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn send_batch_splits_by_size_as_well_as_count() {
    let q = SqsQueue::create_with_dlq(client().await, &emulator::unique("big"), 3).await.unwrap();
    // Four 100 KiB bodies: more than 256 KiB in one call if sent together.
    let bodies: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(100 * 1024))).collect();
    q.send_batch(&bodies, Duration::ZERO).await.unwrap();
    let mut count = 0;
    for _ in 0..5 {
        let batch = q.receive(10, Duration::from_secs(30), Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        count += batch.len();
    }
    assert_eq!(count, 4);
}

#[tokio::test]
async fn open_finds_the_dead_letter_queue_from_the_redrive_policy() {
    let client = client().await;
    let created = SqsQueue::create_with_dlq(client.clone(), &emulator::unique("open"), 1).await.unwrap();
    let opened = SqsQueue::open(client, created.queue_url()).await.unwrap();
    assert_eq!(opened.dead_letter_queue_url(), created.dead_letter_queue_url());

    opened.send("doomed", Duration::ZERO).await.unwrap();
    let first = opened.receive(1, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(opened.receive(1, Duration::from_secs(1), Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(opened.dead_letters().await.unwrap(), vec!["doomed".to_string()]);
    // Reading the dead letters does not consume them.
    assert_eq!(opened.dead_letters().await.unwrap(), vec!["doomed".to_string()]);
}

#[tokio::test]
async fn acking_twice_is_harmless() {
    let q = SqsQueue::create_with_dlq(client().await, &emulator::unique("ack"), 3).await.unwrap();
    q.send("once", Duration::ZERO).await.unwrap();
    let got = q.receive(1, Duration::from_secs(30), Duration::ZERO).await.unwrap();
    q.ack(&got[0].receipt).await.unwrap();
    q.ack(&got[0].receipt).await.unwrap();
}
