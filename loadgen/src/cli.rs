//! Command-line options.

use std::time::Duration;

use clap::Parser;

use crate::runner::LoadConfig;
use crate::target::{Target, TargetError};
use crate::webhook::RunIds;

/// Sends signed WhatsApp inbound-message webhooks to a Parley server on this machine and
/// reports throughput and latency. Exits non-zero if any request failed.
#[derive(Debug, Parser)]
#[command(name = "parley-loadgen", version)]
pub struct Args {
    /// Webhook URL; its host must be a loopback address (127.0.0.0/8, ::1, localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000/webhooks/whatsapp")]
    pub url: String,
    /// App secret of the business number: every body is signed with it.
    #[arg(long, env = "PARLEY_LOADGEN_APP_SECRET", hide_env_values = true)]
    pub app_secret: String,
    /// phone_number_id of the registered business number (webhook metadata).
    #[arg(long)]
    pub phone_number_id: String,
    /// Display phone number of the business number (webhook metadata).
    #[arg(long)]
    pub display_phone_number: String,
    /// WhatsApp Business Account id put in each entry.
    #[arg(long, default_value = "100000000000000")]
    pub waba_id: String,
    /// Messages to send in all.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Distinct contacts (one conversation each) the messages cycle over.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub conversations: u32,
    /// Keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub connections: u16,
    /// Messages per webhook body.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub per_webhook: u64,
    /// Stop starting requests after this many seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_seconds: u64,
    /// Seconds requests in flight at the deadline may still take.
    #[arg(long, default_value_t = 10)]
    pub grace_seconds: u64,
    /// Runtime threads for the generator (the server needs the other cores).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Print the summary as one JSON line on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The run these options describe, with fresh run ids.
    pub fn to_config(&self) -> Result<LoadConfig, TargetError> {
        Ok(LoadConfig {
            target: Target::parse(&self.url)?,
            app_secret: self.app_secret.as_bytes().to_vec(),
            phone_number_id: self.phone_number_id.clone(),
            display_phone_number: self.display_phone_number.clone(),
            waba_id: self.waba_id.clone(),
            ids: RunIds::random(),
            messages: self.messages,
            conversations: self.conversations,
            connections: usize::from(self.connections),
            per_webhook: self.per_webhook,
            max_duration: Duration::from_secs(self.max_seconds),
            grace: Duration::from_secs(self.grace_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["parley-loadgen", "--app-secret", "S", "--phone-number-id", "P", "--display-phone-number", "D"];
        Args::try_parse_from(base.iter().chain(extra))
    }

    #[test]
    fn defaults_match_the_bench_script() {
        let args = parse(&[]).expect("parses");
        let config = args.to_config().expect("loopback default");
        assert_eq!(config.target.addr, "127.0.0.1:3000".parse().expect("addr"));
        assert_eq!((config.messages, config.conversations, config.connections), (100_000, 5_000, 64));
        assert_eq!((config.per_webhook, config.max_duration), (1, Duration::from_secs(60)));
        assert_eq!(config.app_secret, b"S");
    }

    #[test]
    fn refuses_remote_urls_and_bad_counts() {
        let args = parse(&["--url", "http://203.0.113.9:3000/webhooks/whatsapp"]).expect("parses");
        assert!(matches!(args.to_config(), Err(TargetError::NotLoopback(_))));
        assert!(parse(&["--messages", "0"]).is_err());
        assert!(parse(&["--connections", "0"]).is_err());
        assert!(parse(&["--conversations", "1000001"]).is_err());
    }
}
