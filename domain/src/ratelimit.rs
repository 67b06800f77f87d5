//! Token buckets (SPEC 4.6): the arithmetic behind rate control, free of
//! clocks and storage so every adapter of the rate-limit port shares it.
//!
//! A bucket holds up to `burst` tokens and gains `rate` tokens a second;
//! each send takes one. An empty bucket says how long until a token is due.

/// A bucket's state: tokens left at a moment (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: i64,
}

/// How fast a bucket refills and how much it may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Tokens per second; must be positive.
    pub rate: f64,
    /// Tokens a full bucket holds (at least 1).
    pub burst: f64,
}

impl Limit {
    /// `per_second` sends a second, with a burst of one second's worth.
    pub fn per_second(per_second: u32) -> Limit {
        let rate = f64::from(per_second.max(1));
        Limit { rate, burst: rate }
    }
}

/// Takes one token at `now_ms`. `Ok` holds the bucket after taking it;
/// `Err` holds the milliseconds to wait until a token is due (the bucket is
/// unchanged). A missing bucket is full.
pub fn take(bucket: Option<Bucket>, limit: Limit, now_ms: i64) -> Result<Bucket, u64> {
    let rate = limit.rate.max(f64::MIN_POSITIVE);
    let burst = limit.burst.max(1.0);
    let tokens = match bucket {
        None => burst,
        // A clock that stepped back refills nothing.
        Some(b) => (b.tokens + (now_ms - b.at_ms).max(0) as f64 * rate / 1000.0).min(burst),
    };
    if tokens >= 1.0 {
        Ok(Bucket { tokens: tokens - 1.0, at_ms: now_ms })
    } else {
        Err(((1.0 - tokens) * 1000.0 / rate).ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_full_bucket_allows_a_burst_then_paces() {
        let limit = Limit::per_second(80);
        let mut b = None;
        for _ in 0..80 {
            b = Some(take(b, limit, 0).expect("within the burst"));
        }
        let wait = take(b, limit, 0).expect_err("the 81st waits");
        assert_eq!(wait, 13, "one token every 12.5 ms");
        assert!(take(b, limit, 13).is_ok());
    }

    proptest! {
        /// Over any window, no more than burst + rate * seconds tokens are granted.
        #[test]
        fn grants_never_exceed_the_rate(rate in 1u32..200, times in proptest::collection::vec(0i64..5_000, 1..400)) {
            let limit = Limit::per_second(rate);
            let mut times = times;
            times.sort_unstable();
            let mut b = None;
            let mut granted = 0u64;
            for t in &times {
                if let Ok(next) = take(b, limit, *t) {
                    b = Some(next);
                    granted += 1;
                }
            }
            let span = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
            prop_assert!(granted as f64 <= limit.burst + limit.rate * span + 1e-9);
        }
    }
}
