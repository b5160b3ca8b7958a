//! Input validation for gateway fields. Pure functions; each error names its field.

use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

pub const NAME_MAX: usize = 100;
pub const TOKEN_MAX: usize = 4096;
const NAME_PUNCTUATION: &str = " -_.:()/@#+";

/// 1–100 characters: letters, digits, spaces and `-_.:()/@#+`. Names appear in logs, metric
/// labels and dashboards, so markup and quoting characters are refused.
pub fn name(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(err("name", "name must not be empty"));
    }
    let len = trimmed.chars().count();
    if len > NAME_MAX {
        return Err(err(
            "name",
            format!("name must be at most {NAME_MAX} characters (got {len})"),
        ));
    }
    if let Some(bad) = trimmed
        .chars()
        .find(|c| !(c.is_alphanumeric() || NAME_PUNCTUATION.contains(*c)))
    {
        return Err(err(
            "name",
            format!("name contains {bad:?}; use letters, digits, spaces and {NAME_PUNCTUATION:?}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A DNS hostname (RFC 1123) or an IP address (IPv6 with or without brackets).
pub fn host(raw: &str) -> Result<String, FieldError> {
    let host = raw.trim();
    if host.is_empty() {
        return Err(err("host", "host must not be empty"));
    }
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Some(inner) = unbracketed {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| err("host", format!("`{host}` is not a valid IPv6 address")));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let hostname = host.strip_suffix('.').unwrap_or(host);
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let looks_numeric = hostname
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if hostname.len() > 253 || looks_numeric || !hostname.split('.').all(valid_label) {
        return Err(err(
            "host",
            format!("`{host}` is not a valid hostname or IP address"),
        ));
    }
    Ok(hostname.to_ascii_lowercase())
}

pub fn port(raw: i64) -> Result<u16, FieldError> {
    u16::try_from(raw).ok().filter(|p| *p != 0).ok_or_else(|| {
        err(
            "port",
            format!("port must be between 1 and 65535 (got {raw})"),
        )
    })
}

pub fn token(raw: &str) -> Result<Option<String>, FieldError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > TOKEN_MAX {
        return Err(err(
            "token",
            format!("token must be at most {TOKEN_MAX} bytes"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(err("token", "token must not contain control characters"));
    }
    Ok(Some(raw.to_owned()))
}

/// A gateway address given as `ws://host:port` or `wss://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

pub fn url(raw: &str) -> Result<GatewayUrl, FieldError> {
    let raw = raw.trim();
    let (tls, rest) = if let Some(rest) = raw.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = raw.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err(err("url", "url must start with ws:// or wss://"));
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(idx) => rest.split_at(idx),
        None => (rest, ""),
    };
    if path.contains('?') || path.contains('#') {
        return Err(err(
            "url",
            "url must not have a query or fragment; put the token in the `token` field, never in a URL",
        ));
    }
    if !(path.is_empty() || path == "/") {
        return Err(err(
            "url",
            "url must not have a path (gateways accept the socket on `/`)",
        ));
    }
    if authority.contains('@') {
        return Err(err(
            "url",
            "url must not contain credentials; put the token in the `token` field",
        ));
    }
    let (host_part, port_part) =
        if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
            let host = &authority[..end + 2];
            (host, authority[end + 2..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
    let host = host(host_part).map_err(|e| err("url", e.message))?;
    let port = match port_part {
        Some(p) => p
            .parse::<i64>()
            .map_err(|_| err("url", format!("`{p}` is not a port")))
            .and_then(|n| port(n).map_err(|e| err("url", e.message)))?,
        None if tls => 443,
        None => 80,
    };
    Ok(GatewayUrl { host, port, tls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name("  Production Gateway ").unwrap(), "Production Gateway");
        assert!(name("prod-us-east_1 (main)").is_ok());
        assert!(name("Zürich").is_ok());
        assert_eq!(name("").unwrap_err().field, "name");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert!(name(&"x".repeat(100)).is_ok());
        assert!(name("<script>alert(1)</script>").is_err());
        assert!(name("x'; DROP TABLE gateways; --").is_err());
        assert!(name("tab\there").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(host("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(
            host("Gateway.Prod.Example.com").unwrap(),
            "gateway.prod.example.com"
        );
        assert_eq!(host("::1").unwrap(), "::1");
        assert_eq!(host("[::1]").unwrap(), "::1");
        assert_eq!(host("localhost").unwrap(), "localhost");
        for bad in [
            "",
            "-bad.example",
            "bad_host",
            "a..b",
            "999.1.1.1",
            "http://x",
            "exa mple",
            "1.2.3",
        ] {
            assert_eq!(host(bad).unwrap_err().field, "host", "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port(18789).unwrap(), 18789);
        assert_eq!(port(1).unwrap(), 1);
        assert_eq!(port(65535).unwrap(), 65535);
        for bad in [0, -1, 65536, 70000] {
            assert_eq!(port(bad).unwrap_err().field, "port");
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(token("").unwrap(), None);
        assert_eq!(token("abc").unwrap(), Some("abc".into()));
        assert!(token("a\nb").is_err());
        assert!(token(&"a".repeat(TOKEN_MAX + 1)).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            url("ws://72.62.201.147:18789").unwrap(),
            GatewayUrl {
                host: "72.62.201.147".into(),
                port: 18789,
                tls: false
            }
        );
        assert_eq!(
            url("wss://gateway.example.com").unwrap(),
            GatewayUrl {
                host: "gateway.example.com".into(),
                port: 443,
                tls: true
            }
        );
        assert_eq!(url("ws://[::1]:9000/").unwrap().host, "::1");
        assert_eq!(url("ws://[::1]:9000/").unwrap().port, 9000);
        for bad in [
            "http://x:1",
            "ws://x:1?token=abc",
            "ws://user:pw@x:1",
            "ws://x:0",
            "ws://x:70000",
            "ws://x:1/path",
            "ws://:1",
        ] {
            assert_eq!(url(bad).unwrap_err().field, "url", "{bad}");
        }
        assert!(
            !url("ws://x:1?token=abc")
                .unwrap_err()
                .message
                .contains("abc")
        );
    }
}
