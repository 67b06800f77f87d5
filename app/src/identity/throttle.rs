//! Throttles: failed sign-ins per account and per client address, and
//! requests per tenant. In memory: each process (or Lambda instance) counts
//! for itself, which bounds guessing per instance; a shared store would be
//! needed to bound it across a fleet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key in a fixed window; a key with `max` failures in
/// the window is locked until the window ends.
pub struct FailureThrottle {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FailureThrottle {
    pub fn new(max: u32, window: Duration) -> Self {
        FailureThrottle { max: max.max(1), window, entries: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` while `key` is locked.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((start, count)) if *count >= self.max && now < *start + self.window => {
                Err(retry_after(*start + self.window - now))
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, (start, _)| now < *start + window);
        }
        let entry = entries.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A success forgets the key's failures.
    pub fn succeed(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// A token bucket per key: `burst` requests at once, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (Instant, f64)>>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is free.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (last, tokens) = buckets.entry(key.to_owned()).or_insert((now, self.burst));
        let refilled = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(retry_after(Duration::from_secs_f64((1.0 - refilled) / self.per_second)))
        }
    }
}

/// Whole seconds, rounded up, at least one (`Retry-After` has no fractions).
fn retry_after(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_locks_after_max_failures_until_the_window_ends() {
        let t = FailureThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check("a", t0), Ok(()));
            t.fail("a", t0);
        }
        assert_eq!(t.check("a", t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(t.check("b", t0), Ok(()), "other keys are not affected");
        assert_eq!(t.check("a", t0 + Duration::from_secs(60)), Ok(()));
        t.fail("b", t0);
        t.succeed("b");
        t.fail("b", t0);
        t.fail("b", t0);
        assert_eq!(t.check("b", t0), Ok(()), "a success resets the count");
    }

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let r = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.take("t", t0), Ok(()));
        }
        assert_eq!(r.take("t", t0), Err(1));
        assert_eq!(r.take("other", t0), Ok(()));
        assert_eq!(r.take("t", t0 + Duration::from_millis(500)), Ok(()));
        assert!(r.take("t", t0 + Duration::from_millis(500)).is_err());
    }
}
