//! Rate control (SPEC 4.6): the port that paces sends per business number
//! (its throughput, default 80/s) and per customer (the pair rate limit),
//! whichever worker sends.
//!
//! Why a token-bucket port rather than, say, per-number FIFO queues: a
//! bucket paces *every* path that calls WhatsApp (first sends, retries,
//! backup resends) with one check before the call, and its state is one
//! small record per key. Locally every worker is a task of one process, so
//! an in-memory map of buckets behind a mutex is exact ([`MemoryRateLimiter`]).
//! Across concurrent Lambda instances the same buckets live in DynamoDB: one
//! item per key updated with a conditional write on its previous state
//! (tokens, time), retried on conflict, which stays exact without a
//! coordinator; FIFO message groups would only serialise sends per number,
//! not bound their rate. The bucket arithmetic is shared
//! (`parley_domain::ratelimit`), so adapters differ only in storage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use parley_domain::ratelimit::{take, Bucket, Limit};

use crate::error::AppError;

/// Whether a send may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Granted,
    /// Try again after this long; nothing was taken.
    Wait(Duration),
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one token from the bucket `key` (which carries the tenant or
    /// number it paces) under `limit`, at `now_ms`.
    async fn acquire(&self, key: &str, limit: Limit, now_ms: i64) -> Result<Acquire, AppError>;
}

/// Buckets in this process's memory: exact for every worker of one process.
/// Idle buckets are dropped once full again, so the map stays small.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    buckets: Mutex<HashMap<String, (Bucket, Limit)>>,
}

/// The map is swept of full buckets when it grows past this size.
const SWEEP_ABOVE: usize = 100_000;

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, limit: Limit, now_ms: i64) -> Result<Acquire, AppError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            // A bucket that has refilled holds no information: a missing one is full.
            buckets.retain(|_, (b, l)| b.tokens + (now_ms - b.at_ms) as f64 * l.rate / 1000.0 < l.burst);
        }
        match take(buckets.get(key).map(|(b, _)| *b), limit, now_ms) {
            Ok(next) => {
                buckets.insert(key.to_owned(), (next, limit));
                Ok(Acquire::Granted)
            }
            Err(wait_ms) => Ok(Acquire::Wait(Duration::from_millis(wait_ms))),
        }
    }
}

/// The conformance suite every [`RateLimiter`] adapter passes.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use std::sync::Arc;

    use super::*;

    pub async fn run_rate_limiter_suite<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Arc<dyn RateLimiter>>,
    {
        burst_then_pacing(make().await).await;
        keys_are_independent(make().await).await;
        concurrent_callers_share_one_bucket(make().await).await;
    }

    async fn burst_then_pacing(l: Arc<dyn RateLimiter>) {
        let limit = Limit::per_second(5);
        for i in 0..5 {
            assert_eq!(l.acquire("t1/number/1", limit, 1_000).await.unwrap(), Acquire::Granted, "token {i}");
        }
        match l.acquire("t1/number/1", limit, 1_000).await.unwrap() {
            Acquire::Wait(d) => assert_eq!(d, Duration::from_millis(200)),
            Acquire::Granted => panic!("the sixth token in the same instant must wait"),
        }
        assert_eq!(l.acquire("t1/number/1", limit, 1_200).await.unwrap(), Acquire::Granted);
    }

    async fn keys_are_independent(l: Arc<dyn RateLimiter>) {
        let limit = Limit { rate: 1.0 / 6.0, burst: 1.0 };
        assert_eq!(l.acquire("t1/pair/1/a", limit, 0).await.unwrap(), Acquire::Granted);
        assert!(matches!(l.acquire("t1/pair/1/a", limit, 0).await.unwrap(), Acquire::Wait(_)));
        assert_eq!(l.acquire("t1/pair/1/b", limit, 0).await.unwrap(), Acquire::Granted);
        assert_eq!(l.acquire("t2/pair/1/a", limit, 0).await.unwrap(), Acquire::Granted);
    }

    async fn concurrent_callers_share_one_bucket(l: Arc<dyn RateLimiter>) {
        let limit = Limit::per_second(10);
        let calls = (0..40).map(|_| {
            let l = l.clone();
            tokio::spawn(async move { l.acquire("t1/number/shared", limit, 5_000).await.unwrap() })
        });
        let mut granted = 0;
        for c in calls {
            if c.await.unwrap() == Acquire::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 10, "exactly one burst is granted however many callers race");
    }

    #[cfg(test)]
    #[tokio::test]
    async fn memory_adapter_passes() {
        run_rate_limiter_suite(|| async { Arc::new(MemoryRateLimiter::default()) as Arc<dyn RateLimiter> }).await;
    }
}
