//! Counting what happened during a run, and the summary printed at its end.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::json;

/// Why one request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The server answered with a status outside 2xx.
    Status(u16),
    /// No connection could be made.
    Connect,
    /// The connection broke before a full answer arrived.
    Io,
    /// No answer before the run's deadline plus its grace period.
    Timeout,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(code) => write!(f, "http_{code}"),
            Failure::Connect => f.write_str("connect"),
            Failure::Io => f.write_str("io"),
            Failure::Timeout => f.write_str("timeout"),
        }
    }
}

/// What one connection's loop saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub requests: u64,
    pub ok: u64,
    pub messages_sent: u64,
    pub messages_ok: u64,
    pub failures: BTreeMap<Failure, u64>,
    /// Latency of every answered request, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Tally {
    /// A request that got an answer (any status).
    pub fn answered(&mut self, messages: u64, status: u16, latency: Duration) {
        self.requests += 1;
        self.messages_sent += messages;
        self.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        if (200..300).contains(&status) {
            self.ok += 1;
            self.messages_ok += messages;
        } else {
            *self.failures.entry(Failure::Status(status)).or_default() += 1;
        }
    }

    /// A request that got no answer.
    pub fn failed(&mut self, messages: u64, failure: Failure) {
        self.requests += 1;
        self.messages_sent += messages;
        *self.failures.entry(failure).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.messages_sent += other.messages_sent;
        self.messages_ok += other.messages_ok;
        for (failure, count) in other.failures {
            *self.failures.entry(failure).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub run_id: String,
    pub wa_id_prefix: String,
    /// Messages in every request that was attempted.
    pub messages_sent: u64,
    /// Messages in requests answered with 2xx: what the server accepted.
    pub messages_ok: u64,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Length of the timed phase.
    pub seconds: f64,
    /// Accepted messages per second of the timed phase.
    pub messages_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Report {
    pub fn new(run_id: String, wa_id_prefix: String, mut tally: Tally, elapsed: Duration) -> Self {
        tally.latencies_us.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        let errors = tally.failures.values().sum();
        Self {
            run_id,
            wa_id_prefix,
            messages_sent: tally.messages_sent,
            messages_ok: tally.messages_ok,
            requests: tally.requests,
            ok: tally.ok,
            errors,
            errors_by_kind: tally.failures.iter().map(|(kind, count)| (kind.to_string(), *count)).collect(),
            seconds,
            messages_per_second: if seconds > 0.0 { tally.messages_ok as f64 / seconds } else { 0.0 },
            p50_ms: percentile_ms(&tally.latencies_us, 50.0),
            p99_ms: percentile_ms(&tally.latencies_us, 99.0),
            max_ms: tally.latencies_us.last().map_or(0.0, |&us| f64::from(us) / 1000.0),
        }
    }

    /// One JSON object on one line.
    pub fn to_json_line(&self) -> String {
        json!({
            "messages_sent": self.messages_sent,
            "messages_ok": self.messages_ok,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_kind": self.errors_by_kind,
            "seconds": round3(self.seconds),
            "messages_per_second": round3(self.messages_per_second),
            "p50_ms": round3(self.p50_ms),
            "p99_ms": round3(self.p99_ms),
            "max_ms": round3(self.max_ms),
            "run_id": self.run_id,
            "wa_id_prefix": self.wa_id_prefix,
        })
        .to_string()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} (contact wa_ids start with {})", self.run_id, self.wa_id_prefix)?;
        writeln!(
            f,
            "{} messages in {} requests over {:.2} s: {} ok, {} failed; {:.0} accepted messages/s",
            self.messages_sent, self.requests, self.seconds, self.ok, self.errors, self.messages_per_second
        )?;
        write!(
            f,
            "latency per request: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        )?;
        for (kind, count) in &self.errors_by_kind {
            write!(f, "\n  errors {kind}: {count}")?;
        }
        Ok(())
    }
}

/// Nearest-rank percentile of sorted microsecond samples, in milliseconds.
fn percentile_ms(sorted_us: &[u32], percentile: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (percentile / 100.0 * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[index]) / 1000.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&samples, 50.0), 50.0);
        assert_eq!(percentile_ms(&samples, 99.0), 99.0);
        assert_eq!(percentile_ms(&samples, 100.0), 100.0);
        assert_eq!(percentile_ms(&[1500], 99.0), 1.5);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn report_counts_failures_and_accepted_messages() {
        let mut a = Tally::default();
        a.answered(2, 200, Duration::from_millis(3));
        a.answered(2, 401, Duration::from_millis(1));
        let mut b = Tally::default();
        b.answered(2, 202, Duration::from_millis(5));
        b.failed(1, Failure::Connect);
        a.merge(b);
        let report = Report::new("r".into(), "19".into(), a, Duration::from_secs(2));
        assert_eq!((report.requests, report.ok, report.errors), (4, 2, 2));
        assert_eq!((report.messages_sent, report.messages_ok), (7, 4));
        assert_eq!(report.messages_per_second, 2.0);
        assert_eq!(report.max_ms, 5.0);
        assert_eq!(report.p50_ms, 3.0);
        let kinds: Vec<(&str, u64)> = report.errors_by_kind.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(kinds, [("connect", 1), ("http_401", 1)]);

        let json: serde_json::Value = serde_json::from_str(&report.to_json_line()).expect("json");
        for field in [
            "messages_sent",
            "requests",
            "ok",
            "errors",
            "seconds",
            "messages_per_second",
            "p50_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(json[field].is_number(), "{field}");
        }
        assert_eq!(json["run_id"], "r");
        assert_eq!(json["errors"], 2);
        assert!(!report.to_json_line().contains('\n'));
    }
}
