//! What the gateway said of itself in its last `hello-ok`: protocol, release, process, build,
//! methods and capabilities (bounded), its uptime then, and its own suspension phase — the
//! facts calls are fenced on and the API shows.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::bounded;
use crate::link::messages::CallError;
use crate::protocol::frames::HelloOk;
use crate::protocol::suspend::SuspensionPhase;

/// Methods kept from a `hello-ok` (the 2026.9 gateway advertises about 150).
const MAX_METHODS: usize = 1024;

/// The advertised methods (or capabilities) worth keeping: plausible names, at most
/// [`MAX_METHODS`].
fn bounded_names(names: &[String]) -> Arc<Vec<String>> {
    crate::intern::names(
        names
            .iter()
            .filter(|m| bounded::identifier(m).is_some_and(|m| m.len() <= bounded::SHORT))
            .take(MAX_METHODS)
            .cloned()
            .collect(),
    )
}

#[derive(Debug, Default)]
pub(super) struct Server {
    pub(super) protocol: Option<u32>,
    /// Boxed strings (16 bytes, not a `String`'s 24), as the pairing id and the probe's
    /// error: every link's task holds them inline.
    pub(super) version: Option<Box<str>>,
    /// The process the socket is connected to (`hello-ok.server.bootId`), where the release
    /// names it.
    pub(super) boot_id: Option<Box<str>>,
    /// Its build (`hello-ok.server.buildId`), where the release names it.
    pub(super) build_id: Option<Box<str>>,
    pub(super) methods: Arc<Vec<String>>,
    /// `hello-ok.features.capabilities`, bounded like the methods.
    pub(super) capabilities: Arc<Vec<String>>,
    /// The gateway's own suspension phase, as its hello and `gateway.suspension` events say
    /// (none from a release before 2026.9).
    pub(super) suspension: Option<SuspensionPhase>,
    uptime_at_connect_ms: Option<u64>,
    /// When the current connection's handshake went through.
    pub(super) connected_at: Option<Instant>,
}

impl Server {
    /// The `hello-ok` of a connection that went through at `now`.
    pub(super) fn hello(&mut self, hello: &HelloOk, now: Instant) {
        self.protocol = Some(hello.protocol);
        self.version = Some(bounded::text(&hello.server.version, bounded::SHORT).into());
        let short = |s: &Option<String>| {
            s.as_deref()
                .map(|s| bounded::text(s, bounded::SHORT).into_boxed_str())
        };
        self.boot_id = short(&hello.server.boot_id);
        self.build_id = short(&hello.server.build_id);
        self.methods = bounded_names(&hello.features.methods);
        self.capabilities = bounded_names(&hello.features.capabilities);
        self.connected_at = Some(now);
        let snapshot = hello.snapshot.as_ref();
        self.uptime_at_connect_ms = snapshot
            .and_then(|s| s.get("uptimeMs"))
            .and_then(Value::as_u64);
        self.suspension = snapshot
            .and_then(|s| s.get("suspension"))
            .and_then(SuspensionPhase::in_payload);
    }

    /// The connection went.
    pub(super) fn disconnected(&mut self) {
        self.connected_at = None;
    }

    pub(super) fn supports(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// The gateway's uptime at `now`, from what it said at the handshake.
    pub(super) fn uptime_ms(&self, now: Instant) -> Option<u64> {
        self.uptime_at_connect_ms
            .zip(self.connected_at)
            .map(|(up, at)| up + now.saturating_duration_since(at).as_millis() as u64)
    }

    /// Whether a call decided on the process `expected` may go out on a socket that is
    /// `connected`: only to that very process (a socket does not outlive its process, so a
    /// reconnect to a restarted gateway has another `bootId`). `None`: no condition.
    pub(super) fn fence(&self, connected: bool, expected: Option<&str>) -> Result<(), CallError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        if !connected {
            return Err(CallError::NotConnected);
        }
        if self.boot_id.as_deref() == Some(expected) {
            return Ok(());
        }
        Err(CallError::AnotherProcess {
            expected: expected.to_owned(),
            now: self.boot_id.as_deref().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::captures::{at, capture};
    use std::time::Duration;

    fn real_hello() -> HelloOk {
        serde_json::from_value(at(&capture("ok_v3.json"), &["connectResponse", "payload"]))
            .expect("the captured hello-ok of 2026.9.6")
    }

    #[test]
    fn the_real_hello_names_the_process_its_methods_and_its_uptime() {
        let now = Instant::now();
        let mut server = Server::default();
        server.hello(&real_hello(), now);
        assert_eq!(server.protocol, Some(4));
        assert!(
            server
                .version
                .as_deref()
                .is_some_and(|v| v.starts_with("2026.9"))
        );
        assert!(server.boot_id.is_some());
        assert!(server.supports("sessions.list") && server.supports("health"));
        assert!(!server.supports("no.such.method"));
        let at_hello = server.uptime_ms(now).expect("2026.9.6 reports its uptime");
        assert_eq!(
            server.uptime_ms(now + Duration::from_secs(2)),
            Some(at_hello + 2000)
        );
        server.disconnected();
        assert_eq!(server.uptime_ms(now), None);
    }

    #[test]
    fn a_call_fenced_on_a_process_goes_only_to_that_process() {
        let mut server = Server::default();
        server.hello(&real_hello(), Instant::now());
        let boot = server.boot_id.as_deref().unwrap().to_owned();
        assert!(server.fence(true, None).is_ok());
        assert!(server.fence(true, Some(&boot)).is_ok());
        assert!(matches!(
            server.fence(false, Some(&boot)),
            Err(CallError::NotConnected)
        ));
        assert!(matches!(
            server.fence(true, Some("another")),
            Err(CallError::AnotherProcess { now: Some(n), .. }) if n == boot
        ));
    }

    #[test]
    fn hostile_method_names_are_dropped_and_the_list_is_bounded() {
        let mut hello = real_hello();
        hello.features.methods = (0..2000).map(|i| format!("m{i}")).collect();
        hello.features.methods.push("bad name\n".into());
        hello
            .features
            .methods
            .insert(0, "x".repeat(bounded::SHORT + 1));
        let mut server = Server::default();
        server.hello(&hello, Instant::now());
        assert_eq!(server.methods.len(), MAX_METHODS);
        assert!(server.methods.iter().all(|m| m.len() <= bounded::SHORT));
    }
}
