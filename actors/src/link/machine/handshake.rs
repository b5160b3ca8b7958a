//! Getting a link up: the dial, the upgrade, the challenge and the `connect` it is answered
//! with, the `hello-ok` (or the refusal), and where every frame the pump passes on goes.

use std::time::Instant;

use serde_json::Value;

use super::{Action, LinkMachine, LinkPhase, Note, Now};
use crate::bounded;
use crate::protocol::approvals::ApprovalNews;
use crate::protocol::errors::{LinkFailure, classify_error};
use crate::protocol::frames::{Challenge, ErrorShape, Frame, HelloOk};

impl LinkMachine {
    /// A dial: at the start (`None`), or when the reconnect of `generation` falls due (a timer,
    /// or the gateway's `/readyz` said it is back) while the link still backs off.
    pub(super) fn dial(&mut self, due: Option<u64>) -> Vec<Action> {
        if due.is_some_and(|generation| !self.is_current(generation, LinkPhase::Backoff)) {
            return Vec::new();
        }
        self.generation += 1;
        self.phase = LinkPhase::Connecting;
        let reconnect = self.retry.dial();
        vec![
            Action::Report,
            Action::Dial {
                generation: self.generation,
                reconnect,
            },
        ]
    }

    /// The WebSocket is upgraded; the handshake starts.
    pub(super) fn socket_opened(&mut self, now: Instant) -> Vec<Action> {
        self.phase = LinkPhase::Handshaking;
        self.keepalive.opened(now);
        vec![
            Action::ArmHandshakeTimeout(self.settings.handshake_timeout),
            Action::Report,
        ]
    }

    /// A frame the pump passed on: the handshake's, a response, or an event.
    pub(super) fn frame(&mut self, frame: Frame, now: Now, jitter: f64) -> Vec<Action> {
        match (self.phase, frame) {
            (LinkPhase::Handshaking, Frame::Event { event, payload, .. })
                if event == "connect.challenge" =>
            {
                self.challenge(payload, now.at, jitter)
            }
            (
                LinkPhase::Handshaking,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) if self.auth.is_connect_response(&id) => {
                if ok {
                    return self.hello(payload, now, jitter);
                }
                let error = error
                    .unwrap_or_else(|| ErrorShape::unknown("connect refused without an error"));
                self.fail(classify_error(&error), now.at, jitter)
            }
            (
                LinkPhase::Connected,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) => vec![Action::Resolve {
                id,
                ok,
                payload,
                error,
            }],
            (LinkPhase::Connected, Frame::Event { event, payload, .. }) => {
                let ended = payload
                    .as_ref()
                    .and_then(|p| self.activity.note(&event, p, now.unix_ms));
                let mut actions = self.event(&event, payload);
                actions.extend(ended.map(Action::RunEnded));
                actions
            }
            (_, Frame::Req { method, .. }) => vec![Action::Log(Note::IgnoredRequest {
                method: bounded::text(&method, bounded::SHORT),
            })],
            (phase, other) => vec![Action::Log(Note::UnexpectedFrame {
                phase,
                frame: bounded::text(&format!("{other:?}"), bounded::SHORT),
            })],
        }
    }

    /// `connect.challenge`: the `connect` to answer it with, or why the link fails.
    fn challenge(&mut self, payload: Option<Value>, now: Instant, jitter: f64) -> Vec<Action> {
        let challenge: Challenge = match payload.map(serde_json::from_value) {
            Some(Ok(c)) => c,
            _ => {
                let failure = LinkFailure::protocol("connect.challenge without a nonce");
                return self.fail(failure, now, jitter);
            }
        };
        let plan = self
            .auth
            .plan(challenge, self.generation, self.approval_client);
        vec![Action::SendConnect(plan)]
    }

    /// `hello-ok` for our `connect`.
    fn hello(&mut self, payload: Option<Value>, now: Now, jitter: f64) -> Vec<Action> {
        let hello: HelloOk = match payload.map(serde_json::from_value) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                let failure = LinkFailure::protocol(format!("unreadable hello-ok: {e}"));
                return self.fail(failure, now.at, jitter);
            }
            None => {
                let failure = LinkFailure::protocol("hello-ok without a payload");
                return self.fail(failure, now.at, jitter);
            }
        };
        let mut actions = vec![Action::HandshakeDone];
        self.phase = LinkPhase::Connected;
        let failures = self.retry.breaker.consecutive_failures();
        if self.retry.handshake_ok() {
            actions.push(Action::Log(Note::BackAfterOutage { failures }));
        }
        self.last_error = None;
        self.pairing_request_id = None;
        self.server.hello(&hello, now.at);
        self.health.connected(now.unix());
        self.keepalive.connected(hello.policy.tick_interval_ms);
        if let Some(health) = hello.snapshot.as_ref().and_then(|s| s.get("health")) {
            self.health.apply(health);
        }
        let token = hello.auth.as_ref().and_then(|a| a.device_token.as_deref());
        if let Some(token) = self.auth.accepted(token) {
            actions.push(Action::PersistDeviceToken(Some(token)));
        }
        let auth = hello
            .auth
            .as_ref()
            .and_then(|a| a.method.as_deref())
            .unwrap_or("?");
        actions.push(Action::Log(Note::Connected {
            protocol: hello.protocol,
            version: self
                .server
                .version
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            auth: bounded::text(auth, bounded::SHORT),
        }));
        actions.push(Action::ArmHeartbeat { first: true });
        actions.push(Action::Report);
        if self.supports("sessions.subscribe") {
            actions.push(Action::SubscribeSessions);
        }
        actions.push(Action::RefreshCounts);
        // As its approval client, to this process: the inbox reads what is pending now.
        if self.approval_client {
            actions.push(Action::Approvals(ApprovalNews::Connected {
                boot_id: self.server.boot_id.as_deref().map(str::to_owned),
            }));
        }
        actions
    }
}
