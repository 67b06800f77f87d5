//! The URL under load, and the rule that it must be on this machine.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;
use thiserror::Error;

/// Why a URL cannot be loaded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("only http:// URLs are supported, not `{0}`")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error(
        "refusing to send load to `{0}`: the host must be a loopback address \
         (127.0.0.0/8, ::1 or localhost)"
    )]
    NotLoopback(String),
    #[error("`{0}` did not resolve to a loopback address")]
    Unresolved(String),
}

/// A parsed, checked loopback HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub authority: Authority,
    /// The request target (path and query) sent on the request line.
    pub path_and_query: PathAndQuery,
}

impl Target {
    /// Parses `url` and accepts it only if its host is a loopback address: load only ever
    /// targets this machine.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let uri: Uri = url.parse().map_err(|_| TargetError::Invalid(url.to_owned()))?;
        match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => {}
            Some(scheme) => return Err(TargetError::Scheme(scheme.to_string())),
            None => return Err(TargetError::Invalid(url.to_owned())),
        }
        let authority = uri.authority().cloned().ok_or_else(|| TargetError::NoHost(url.to_owned()))?;
        if authority.as_str().contains('@') {
            // Credentials in a URL have no use here and would leak into the Host header.
            return Err(TargetError::Invalid(url.to_owned()));
        }
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let addr = loopback_addr(host, port)?;
        let path_and_query = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Self { addr, authority, path_and_query })
    }
}

/// Resolves `host` to a loopback socket address, or refuses it.
fn loopback_addr(host: &str, port: u16) -> Result<SocketAddr, TargetError> {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return if ip.is_loopback() {
            Ok(SocketAddr::new(ip, port))
        } else {
            Err(TargetError::NotLoopback(host.to_owned()))
        };
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if !name.eq_ignore_ascii_case("localhost") {
        return Err(TargetError::NotLoopback(host.to_owned()));
    }
    // The resolver's answer for localhost is checked too: a resolver that maps it elsewhere
    // does not get to redirect the load.
    let resolved = (name, port).to_socket_addrs().map_err(|_| TargetError::Unresolved(host.to_owned()))?;
    resolved
        .filter(|addr| addr.ip().is_loopback())
        // Prefer IPv4: Parley listens on 127.0.0.1 by default.
        .min_by_key(|addr| addr.is_ipv6())
        .ok_or_else(|| TargetError::Unresolved(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_hosts() {
        let target = Target::parse("http://127.0.0.1:3000/webhooks/whatsapp").expect("loopback");
        assert_eq!(target.addr, "127.0.0.1:3000".parse().expect("addr"));
        assert_eq!(target.authority.as_str(), "127.0.0.1:3000");
        assert_eq!(target.path_and_query.as_str(), "/webhooks/whatsapp");

        let other = Target::parse("http://127.10.20.30:8080/x?y=1").expect("127/8 is loopback");
        assert_eq!(other.addr.port(), 8080);
        assert_eq!(other.path_and_query.as_str(), "/x?y=1");

        let v6 = Target::parse("http://[::1]:3000/").expect("::1 is loopback");
        assert_eq!(v6.addr, "[::1]:3000".parse().expect("addr"));

        let named = Target::parse("http://LocalHost:3000/webhooks/whatsapp").expect("localhost");
        assert!(named.addr.ip().is_loopback());
        assert_eq!(named.addr.port(), 3000);

        let default_port = Target::parse("http://127.0.0.1").expect("no port");
        assert_eq!(default_port.addr.port(), 80);
        assert_eq!(default_port.path_and_query.as_str(), "/");
    }

    #[test]
    fn refuses_hosts_off_this_machine() {
        for url in [
            "http://10.0.0.1:3000/webhooks/whatsapp",
            "http://192.168.1.20/",
            "http://0.0.0.0:3000/",
            "http://[::]:3000/",
            "http://[2001:db8::1]:3000/",
            "http://example.com/",
            "http://localhost.example.com/",
            "http://127.0.0.1.nip.io/",
        ] {
            assert!(matches!(Target::parse(url), Err(TargetError::NotLoopback(_))), "{url} must be refused");
        }
    }

    #[test]
    fn refuses_other_schemes_and_malformed_urls() {
        assert_eq!(Target::parse("https://127.0.0.1/"), Err(TargetError::Scheme("https".into())));
        assert!(matches!(Target::parse("127.0.0.1:3000/x"), Err(TargetError::Invalid(_) | TargetError::Scheme(_))));
        assert!(matches!(Target::parse("not a url"), Err(TargetError::Invalid(_))));
        assert!(matches!(Target::parse("http://user:pw@127.0.0.1/"), Err(TargetError::Invalid(_))));
    }
}
