//! Configuration from environment variables (SPEC 8), validated at start with
//! one clear message per missing or bad value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    DynamoDb,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreKind,
    pub aws_endpoint: Option<String>,
    /// `None`: the built-in simulator serves the Graph API.
    pub whatsapp_api_base: Option<String>,
    pub whatsapp_api_version: String,
    pub whatsapp_timeout: Duration,
    /// Delay between the simulator's sent, delivered and read statuses.
    pub simulator_status_delay: Duration,
    /// Attempts per outbound message before it fails for good.
    pub send_max_attempts: u32,
    /// How long an unconfirmed send waits for a WhatsApp status before it fails.
    pub unconfirmed_grace: Duration,
    /// Extra opt-out keywords for every tenant (STOP, UNSUBSCRIBE, CANCEL always apply).
    pub extra_opt_out_keywords: Vec<String>,
    pub window_closer_interval: Duration,
    /// An OpenAI-compatible provider for the AI helpers; none: the local provider.
    pub llm: Option<LlmConfig>,
    /// The sender of every mail Parley sends.
    pub mail_from: String,
    /// Where people reach this server (download links in mails and job results).
    pub public_url: String,
    /// Authenticated API requests per second per tenant (bursts of twice as many pass).
    pub tenant_rate_limit: u32,
    /// Jobs, retention, scheduling and Stripe.
    pub ops: crate::ops::OpsSettings,
}

#[derive(Clone)]
pub struct LlmConfig {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());

        let http_addr = parse_or(
            &get,
            "PARLEY_HTTP_ADDR",
            "127.0.0.1:3000",
            &mut problems,
            "a socket address such as 127.0.0.1:3000",
        )
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
        let store = match get("PARLEY_STORE").as_deref().unwrap_or("sqlite") {
            "sqlite" => StoreKind::Sqlite,
            "dynamodb" => StoreKind::DynamoDb,
            other => {
                problems.push(format!("PARLEY_STORE: `{other}` is not one of sqlite, dynamodb"));
                StoreKind::Sqlite
            }
        };
        let version = get("PARLEY_WHATSAPP_API_VERSION").unwrap_or_else(|| "v26.0".into());
        if !(version.starts_with('v')
            && version[1..].split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        {
            problems.push(format!("PARLEY_WHATSAPP_API_VERSION: `{version}` is not a Graph API version such as v26.0"));
        }
        let whatsapp_api_base = get("PARLEY_WHATSAPP_API_BASE").map(|b| b.trim_end_matches('/').to_owned());
        if let Some(base) = &whatsapp_api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                problems.push(format!("PARLEY_WHATSAPP_API_BASE: `{base}` must start with http:// or https://"));
            }
        }
        let millis = |k: &str, default: u64, problems: &mut Vec<String>| -> Duration {
            Duration::from_millis(
                parse_or(&get, k, &default.to_string(), problems, "a whole number of milliseconds").unwrap_or(default),
            )
        };
        let simulator_status_delay = millis("PARLEY_SIMULATOR_STATUS_DELAY_MS", 500, &mut problems);
        let whatsapp_timeout = millis("PARLEY_WHATSAPP_TIMEOUT_MS", 15_000, &mut problems);
        let unconfirmed_grace = millis("PARLEY_UNCONFIRMED_GRACE_MS", 600_000, &mut problems);
        let window_closer_interval = millis("PARLEY_WINDOW_CLOSER_INTERVAL_MS", 60_000, &mut problems);
        let send_max_attempts: u32 =
            parse_or(&get, "PARLEY_SEND_MAX_ATTEMPTS", "5", &mut problems, "a number from 1 to 50").unwrap_or(5);
        if !(1..=50).contains(&send_max_attempts) {
            problems.push("PARLEY_SEND_MAX_ATTEMPTS: must be from 1 to 50".into());
        }
        let extra_opt_out_keywords = get("PARLEY_OPT_OUT_KEYWORDS")
            .map(|v| v.split(',').map(|k| k.trim().to_uppercase()).filter(|k| !k.is_empty()).collect())
            .unwrap_or_default();
        let data_dir = PathBuf::from(get("PARLEY_DATA_DIR").unwrap_or_else(|| "./.parley".into()));
        let llm = match (get("PARLEY_LLM_BASE_URL"), get("PARLEY_LLM_MODEL")) {
            (None, None) => None,
            (Some(base_url), Some(model)) => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    problems.push(format!("PARLEY_LLM_BASE_URL: `{base_url}` must start with http:// or https://"));
                }
                Some(LlmConfig { base_url, model, api_key: get("PARLEY_LLM_API_KEY") })
            }
            (Some(_), None) => {
                problems.push("PARLEY_LLM_MODEL: required when PARLEY_LLM_BASE_URL is set".into());
                None
            }
            (None, Some(_)) => {
                problems.push("PARLEY_LLM_BASE_URL: required when PARLEY_LLM_MODEL is set".into());
                None
            }
        };

        let mail_from = get("PARLEY_MAIL_FROM").unwrap_or_else(|| "Parley <no-reply@parley.local>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!("PARLEY_MAIL_FROM: `{mail_from}` is not a mail address like `Name <a@b.c>`"));
        }
        let public_url = get("PARLEY_PUBLIC_URL").unwrap_or_else(|| format!("http://{http_addr}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            problems.push(format!("PARLEY_PUBLIC_URL: `{public_url}` must start with http:// or https://"));
        }

        let tenant_rate_limit: u32 = parse_or(
            &get,
            "PARLEY_TENANT_RATE_LIMIT",
            "100",
            &mut problems,
            "a number of requests per second from 1 to 1000000",
        )
        .unwrap_or(100);
        if !(1..=1_000_000).contains(&tenant_rate_limit) {
            problems.push("PARLEY_TENANT_RATE_LIMIT: must be from 1 to 1000000".into());
        }

        let ops = crate::ops::OpsSettings::from_lookup(&get, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            http_addr,
            data_dir,
            store,
            aws_endpoint: get("PARLEY_AWS_ENDPOINT"),
            whatsapp_api_base,
            whatsapp_api_version: version,
            whatsapp_timeout,
            simulator_status_delay,
            send_max_attempts,
            unconfirmed_grace,
            extra_opt_out_keywords,
            window_closer_interval,
            llm,
            mail_from,
            public_url: public_url.trim_end_matches('/').to_string(),
            tenant_rate_limit,
            ops,
        })
    }
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: &str,
    problems: &mut Vec<String>,
    expected: &str,
) -> Option<T> {
    let raw = get(key).unwrap_or_else(|| default.to_owned());
    let parsed = raw.trim().parse().ok();
    if parsed.is_none() {
        problems.push(format!("{key}: `{raw}` is not {expected}"));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("./.parley"));
        assert_eq!(c.whatsapp_api_version, "v26.0");
        assert_eq!(c.store, StoreKind::Sqlite);
        assert!(c.whatsapp_api_base.is_none());
    }

    #[test]
    fn every_bad_value_is_reported() {
        let e =
            config(&[("PARLEY_HTTP_ADDR", "nope"), ("PARLEY_STORE", "mysql"), ("PARLEY_WHATSAPP_API_BASE", "ftp://x")])
                .unwrap_err();
        assert_eq!(e.problems.len(), 3, "{e}");
        assert!(e.to_string().contains("PARLEY_HTTP_ADDR"));
    }
}
