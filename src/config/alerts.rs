//! `[alerts]`: webhook notifications for operators without Alertmanager. Off until
//! `webhook_url` is set; then `secret` is required (every body is signed with it).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Where alerts are POSTed (`http://` or `https://`); unset = no alerts.
    pub webhook_url: Option<String>,
    /// The HMAC-SHA256 key of the `X-Gateway-Supervisor-Signature` header (16+ characters).
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    /// A gateway offline this long is an alert.
    #[serde(with = "duration")]
    pub offline_after: Duration,
    /// No gateway connected this long is an alert.
    #[serde(with = "duration")]
    pub all_down_after: Duration,
    /// Flap damping: an alert that fired does not fire again for the same gateway within this
    /// window (a bouncing gateway sends one alert).
    #[serde(with = "duration")]
    pub damping: Duration,
    /// Attempts after the first failed delivery (backoff 1 s, 2 s, 4 s … at most 60 s).
    pub retries: u32,
    /// One delivery attempt's deadline.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: None,
            secret: None,
            offline_after: Duration::from_secs(300),
            all_down_after: Duration::from_secs(30),
            damping: Duration::from_secs(900),
            retries: 5,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A webhook's address as logs and `check-config` show it: scheme, host and port. The
/// credentials, path and query are left out (`/…`): they are often the secret itself (Slack's,
/// Discord's and Teams' webhook paths are the token).
pub fn shown_webhook_url(url: &str) -> String {
    match url.parse::<actix_web::http::Uri>() {
        Ok(u) => {
            let host = u.authority().map_or("?", |a| a.host());
            let port = u.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = match u.path_and_query().map(|p| p.as_str()) {
                None | Some("" | "/") => "",
                Some(_) => "/…",
            };
            format!("{}://{host}{port}{rest}", u.scheme_str().unwrap_or("http"))
        }
        Err(_) => "[unparseable url]".into(),
    }
}

impl AlertsConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (key, value, min, max) in [
            (
                "alerts.offline_after",
                self.offline_after,
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            ),
            (
                "alerts.all_down_after",
                self.all_down_after,
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            ),
            (
                "alerts.damping",
                self.damping,
                Duration::ZERO,
                Duration::from_secs(86_400),
            ),
            (
                "alerts.timeout",
                self.timeout,
                Duration::from_secs(1),
                Duration::from_secs(300),
            ),
        ] {
            duration_in(key, value, min, max)?;
        }
        if self.retries > 20 {
            return bad(format!(
                "alerts.retries must be between 0 and 20 (got {})",
                self.retries
            ));
        }
        let Some(url) = &self.webhook_url else {
            return Ok(());
        };
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.len() > 2048 || url.parse::<awc::http::Uri>().is_err() {
            return bad("alerts.webhook_url must be an http:// or https:// URL".into());
        }
        match &self.secret {
            Some(s) if s.len() >= 16 => Ok(()),
            _ => bad("alerts.secret (16 or more characters) is required with alerts.webhook_url: every alert is signed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shown_webhook_url;

    #[test]
    fn a_webhook_is_shown_without_its_credentials_path_or_query() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXsecret",
                "https://hooks.slack.com/…",
            ),
            (
                "http://user:pa55@alerts.internal:8080/hook?token=abc",
                "http://alerts.internal:8080/…",
            ),
            ("http://alerts.internal:9000", "http://alerts.internal:9000"),
            ("https://alerts.example/", "https://alerts.example"),
            ("not a url", "[unparseable url]"),
        ] {
            assert_eq!(shown_webhook_url(url), shown, "{url}");
        }
    }
}
