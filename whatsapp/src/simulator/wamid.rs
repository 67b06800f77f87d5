//! Fresh message ids in WhatsApp's style: `wamid.` followed by base64.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;

/// Hands out ids that never repeat within the process.
#[derive(Debug, Default)]
pub struct WamidGenerator {
    counter: AtomicU64,
}

impl WamidGenerator {
    /// The next id.
    pub fn next_wamid(&self) -> String {
        // A counter makes ids unique by construction; the random tail keeps
        // them from being guessable or looking sequential, like Meta's.
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&sequence.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut raw[8..]);
        format!("wamid.{}", STANDARD.encode(raw))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let generator = WamidGenerator::default();
        let ids: HashSet<String> = (0..1000).map(|_| generator.next_wamid()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.starts_with("wamid.") && id.len() == 38));
    }
}
