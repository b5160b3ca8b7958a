//! The HTTP side of `ctl`: one awc client with the key in its header, answers read up to
//! [`MAX_ANSWER`] bytes within the request timeout, the daemon's error shape turned into
//! [`CtlError::Api`], and the event stream read line by line with each event bounded.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use futures_util::StreamExt;
use serde_json::Value;

use super::render::clean;
use crate::domain::SpawnStatus;
use crate::domain::operation::OperationState;

/// Largest answer read (the gateway list of a 10,000-gateway fleet is ~6 MB).
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Largest event read from the stream.
const MAX_EVENT: usize = 1024 * 1024;
/// The event stream has a keep-alive comment every 15 s; this long without a byte is a dead
/// connection.
const EVENTS_IDLE: Duration = Duration::from_secs(60);
/// How often `spawn --wait` asks about the run.
const WAIT_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("API key: {0}")]
    Key(String),
    #[error("--url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach the daemon at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the daemon did not answer {what} within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("the daemon answered {status}: {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("an answer ctl cannot read: {0}")]
    Answer(String),
    #[error("the run ended {0}")]
    RunFailed(String),
    /// `--wait` ran out while the thing waited for goes on (the daemon answered throughout).
    #[error("{what} is still {state} after {secs} s; it goes on without this wait ({next})")]
    StillGoing {
        what: String,
        state: String,
        secs: u64,
        next: String,
    },
}

pub struct Client {
    http: awc::Client,
    base: String,
    key: String,
    timeout: Duration,
}

/// `k=v&…`, encoded.
pub fn query(pairs: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// One path segment, percent-encoded (an approval id may hold `:`, and a typed one anything).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Client {
    pub fn new(url: &str, key: String, timeout: Duration) -> Result<Client, CtlError> {
        let base = url.trim_end_matches('/').to_owned();
        let bad = |reason: &str| CtlError::Url {
            url: clean(url),
            reason: reason.into(),
        };
        let uri: awc::http::Uri = base.parse().map_err(|_| bad("not a URL"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad("an http:// or https:// URL with a host is needed"));
        }
        if uri.query().is_some() || base.contains('@') {
            return Err(bad(
                "no query or credentials in the URL (the key goes in a header)",
            ));
        }
        let http = awc::Client::builder()
            .timeout(timeout)
            .disable_redirects()
            .finish();
        Ok(Client {
            http,
            base,
            key,
            timeout,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Result<Value, CtlError> {
        let req = self
            .http
            .get(self.url(path))
            .insert_header(("x-api-key", self.key.as_str()));
        let res = req.send().await.map_err(|e| self.send_error(path, &e))?;
        self.answer(path, res).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, CtlError> {
        let mut req = self
            .http
            .post(self.url(path))
            .insert_header(("x-api-key", self.key.as_str()));
        if let Some(k) = idempotency_key {
            req = req.insert_header(("idempotency-key", k));
        }
        let res = req
            .send_json(body)
            .await
            .map_err(|e| self.send_error(path, &e))?;
        self.answer(path, res).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CtlError> {
        let req = self
            .http
            .delete(self.url(path))
            .insert_header(("x-api-key", self.key.as_str()));
        let res = req.send().await.map_err(|e| self.send_error(path, &e))?;
        self.answer(path, res).await
    }

    /// The spawn `id` and its status once final, asked every [`WAIT_POLL`] for at most `wait`.
    pub async fn wait_spawn(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<(SpawnStatus, Value), CtlError> {
        let deadline = Instant::now() + wait;
        let path = format!("/api/spawn/{}", path_segment(id));
        loop {
            let v = self.get(&path).await?;
            let status: SpawnStatus = serde_json::from_value(v["status"].clone())
                .map_err(|e| CtlError::Answer(format!("{path}: status: {e}")))?;
            if status.is_final() {
                return Ok((status, v));
            }
            if Instant::now() >= deadline {
                return Err(CtlError::Timeout {
                    what: format!("spawn {} with a result", clean(id)),
                    secs: wait.as_secs(),
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Follows config rollout `id` until it is over (at most `wait`); the rollout as it ended.
    pub async fn wait_rollout(&self, id: &str, wait: Duration) -> Result<Value, CtlError> {
        let deadline = Instant::now() + wait;
        let path = format!("/api/config/rollouts/{}", path_segment(id));
        loop {
            let v = self.get(&path).await?;
            let state: OperationState = serde_json::from_value(v["operation"]["state"].clone())
                .map_err(|e| CtlError::Answer(format!("{path}: state: {e}")))?;
            if !state.is_live() {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                let id = clean(id);
                return Err(CtlError::StillGoing {
                    what: format!("rollout {id}"),
                    state: state.as_str().into(),
                    secs: wait.as_secs(),
                    next: format!(
                        "follow it: ctl config status {id}; stop it: ctl config rollout cancel {id}"
                    ),
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Reads the event stream at `path`, handing each event's JSON to `each` until it returns
    /// false or the stream ends.
    pub async fn events(
        &self,
        path: &str,
        mut each: impl FnMut(Value) -> bool,
    ) -> Result<(), CtlError> {
        let req = self
            .http
            .get(self.url(path))
            .insert_header(("x-api-key", self.key.as_str()))
            .insert_header(("accept", "text/event-stream"))
            // The stream is long-lived: the request timeout covers its headers only.
            .timeout(self.timeout);
        let mut res = req.send().await.map_err(|e| self.send_error(path, &e))?;
        if !res.status().is_success() {
            let body = res.body().limit(MAX_EVENT).await.unwrap_or_default();
            return Err(api_error(res.status(), &body));
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut data = String::new();
        loop {
            let chunk = match tokio::time::timeout(EVENTS_IDLE, res.next()).await {
                Err(_) => {
                    return Err(CtlError::Timeout {
                        what: "the event stream (not even a keep-alive)".into(),
                        secs: EVENTS_IDLE.as_secs(),
                    });
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(CtlError::Answer(format!("event stream: {e}"))),
                Ok(Some(Ok(chunk))) => chunk,
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if !data.is_empty() {
                        let event = serde_json::from_str(&data)
                            .map_err(|e| CtlError::Answer(format!("an event: {e}")))?;
                        data.clear();
                        if !each(event) {
                            return Ok(());
                        }
                    }
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if pending.len() + data.len() > MAX_EVENT {
                return Err(CtlError::Answer(format!(
                    "an event over {} KiB",
                    MAX_EVENT / 1024
                )));
            }
        }
    }

    async fn answer<S>(
        &self,
        path: &str,
        mut res: awc::ClientResponse<S>,
    ) -> Result<Value, CtlError>
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let body = tokio::time::timeout(self.timeout, res.body().limit(MAX_ANSWER))
            .await
            .map_err(|_| CtlError::Timeout {
                what: path.to_owned(),
                secs: self.timeout.as_secs(),
            })?
            .map_err(|e| CtlError::Answer(format!("{path}: {e}")))?;
        if !res.status().is_success() {
            return Err(api_error(res.status(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| CtlError::Answer(format!("{path}: {e}")))
    }

    fn send_error(&self, path: &str, e: &awc::error::SendRequestError) -> CtlError {
        match e {
            awc::error::SendRequestError::Timeout => CtlError::Timeout {
                what: path.to_owned(),
                secs: self.timeout.as_secs(),
            },
            other => CtlError::Unreachable {
                url: self.base.clone(),
                reason: clean(&other.to_string()),
            },
        }
    }
}

/// The daemon's error shape (`{error, message}`), or the status alone.
fn api_error(status: StatusCode, body: &[u8]) -> CtlError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    CtlError::Api {
        status: status.as_u16(),
        code: clean(v["error"].as_str().unwrap_or("")),
        message: clean(
            v["message"]
                .as_str()
                .unwrap_or(status.canonical_reason().unwrap_or("")),
        ),
    }
}

/// A path segment, percent-encoded.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
