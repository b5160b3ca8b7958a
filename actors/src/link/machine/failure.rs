//! What a failure leads to: the socket goes, and the failure's class decides what next — the
//! v2 signature once, a recommended recovery step, a halt, a pairing wait, or a reconnect after
//! the backoff, never before the breaker allows one; the breaker counts what is a failure and
//! says when an outage begins (docs/design.md, *The link state machine*).

use std::time::{Duration, Instant};

use super::auth::Step;
use super::retry::RetryKind;
use super::{Action, LinkMachine, LinkPhase, Note, RECOVERY_DELAY};
use crate::protocol::errors::{Disposition, LinkFailure};

impl LinkMachine {
    /// Every failure ends here: the socket goes, and the failure's class decides what next —
    /// the v2 signature once, a recommended recovery step, a halt, a pairing wait, or a
    /// reconnect after the backoff (never before the breaker allows one).
    pub(super) fn fail(&mut self, failure: LinkFailure, now: Instant, jitter: f64) -> Vec<Action> {
        let was_connected = self.connected();
        let connected_for = self
            .server
            .connected_at
            .map(|t| now.saturating_duration_since(t));
        self.retry
            .link_ended(connected_for, self.phase == LinkPhase::Connecting);
        let mut actions = vec![Action::Teardown];
        self.forget_connection();
        self.health.checked = true;
        if !was_connected {
            actions.push(Action::CountHandshakeFailure(failure.label()));
        }
        if let Some(step) = self.auth.recover(&failure) {
            actions.push(Action::Log(match step {
                Step::SignV2 => Note::V2Fallback,
                Step::Recover { .. } => Note::Recovering {
                    code: failure.code.clone(),
                    recovery: failure.recovery,
                },
            }));
            if step == (Step::Recover { forget_token: true }) {
                actions.push(Action::PersistDeviceToken(None));
            }
            actions.extend(self.retry_after(RECOVERY_DELAY, failure, RetryKind::Recovery, now));
            return actions;
        }
        match failure.disposition.clone() {
            Disposition::Halt => {
                actions.push(Action::Log(Note::Halted {
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                }));
                self.phase = LinkPhase::Halted;
                self.last_error = Some(Box::new(failure));
                actions.push(Action::Report);
            }
            Disposition::Pairing { request_id } => {
                actions.push(Action::Log(Note::PairingRequired {
                    request_id: request_id.clone(),
                }));
                self.pairing_request_id = request_id.map(String::into_boxed_str);
                let delay = self.settings.pairing_retry;
                actions.extend(self.retry_after(delay, failure, RetryKind::Failure, now));
            }
            Disposition::Retry { after } => {
                let delay = self.retry.next_delay(after, jitter);
                actions.push(Action::Log(Note::Reconnecting {
                    code: failure.code.clone(),
                    delay,
                }));
                let kind = self.retry.kind_of(&failure);
                actions.extend(self.retry_after(delay, failure, kind, now));
            }
        }
        actions
    }

    fn retry_after(
        &mut self,
        delay: Duration,
        failure: LinkFailure,
        kind: RetryKind,
        now: Instant,
    ) -> Vec<Action> {
        let pairing = matches!(failure.disposition, Disposition::Pairing { .. });
        let scheduled = self.retry.schedule(delay, kind, pairing, now);
        self.phase = LinkPhase::Backoff;
        self.last_error = Some(Box::new(failure));
        let mut actions: Vec<Action> = scheduled.note.map(Action::Log).into_iter().collect();
        actions.push(Action::Report);
        actions.push(Action::ReconnectAfter {
            delay: scheduled.delay,
            poll_readiness: scheduled.poll_readiness,
        });
        actions
    }

    /// An admin removed the gateway (or changed it): the link stops for good.
    pub(super) fn stop(&mut self) -> Vec<Action> {
        self.generation += 1;
        self.phase = LinkPhase::Halted;
        self.forget_connection();
        vec![Action::Teardown]
    }

    /// What belonged to the connection that is going (the shell tears down its socket).
    fn forget_connection(&mut self) {
        self.auth.forget();
        self.keepalive.forget();
        self.unanswered = 0;
        self.sessions_retry.reset();
        self.server.disconnected();
        self.activity.clear();
    }
}
