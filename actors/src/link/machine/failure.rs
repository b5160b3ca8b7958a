//! What a failure leads to: the socket goes, and the failure's class decides what next — the
//! v2 signature once, a recommended recovery step, a halt, a pairing wait, or a reconnect after
//! the backoff, never before the breaker allows one; the breaker counts what is a failure and
//! says when an outage begins (docs/design.md, *The link state machine*).

use std::time::{Duration, Instant};

use super::{Action, LinkMachine, LinkPhase, Note, RECOVERY_DELAY};
use crate::breaker::Opening;
use crate::handshake::AuthChoice;
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{Disposition, LinkFailure, Recovery};

/// What a scheduled reconnect follows, for the breaker and the `/readyz` shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A corrective step the gateway recommended (a v2 proof, the device token): no failure,
    /// no readiness polls.
    Recovery,
    /// A failure: counted by the breaker.
    Failure,
    /// The gateway's own word that it is not taking links now, taken at its word
    /// ([`crate::backoff::taken_at_its_word`]): not counted, its `/readyz` watched.
    NotNow,
}

impl LinkMachine {
    /// Every failure ends here: the socket goes, and the failure's class decides what next —
    /// the v2 signature once, a recommended recovery step, a halt, a pairing wait, or a
    /// reconnect after the backoff (never before the breaker allows one).
    pub fn fail(&mut self, failure: LinkFailure, now: Instant, jitter: f64) -> Vec<Action> {
        let was_connected = self.phase == LinkPhase::Connected;
        self.failed_before_upgrade = self.phase == LinkPhase::Connecting;
        if crate::backoff::stable_link(self.connected_at.map(|t| now.saturating_duration_since(t)))
        {
            self.backoff.reset();
            self.words_not_now = 0;
            self.breaker.record_success();
        }
        let mut actions = vec![Action::Teardown];
        self.forget_connection();
        self.checked = true;
        if !was_connected {
            actions.push(Action::CountHandshakeFailure(failure.label()));
        }
        // The gateway refused the v3 signature (a release before 2026.2.26 verifies only v2):
        // offer the v2 form once.
        if failure.recovery == Recovery::SignWithV2 && !self.v2_fallback_used {
            self.v2_fallback_used = true;
            self.signature_version = SignatureVersion::V2;
            actions.push(Action::Log(Note::V2Fallback));
            actions.extend(self.retry_after(RECOVERY_DELAY, failure, Retry::Recovery, now));
            return actions;
        }
        if failure.disposition == Disposition::Halt && self.recoveries_left > 0 {
            let recovered = match failure.recovery {
                Recovery::RetryWithDeviceToken if self.device_token.is_some() => {
                    self.auth_choice = AuthChoice::DeviceTokenOnly;
                    true
                }
                Recovery::DropDeviceToken if self.device_token.is_some() => {
                    self.device_token = None;
                    self.auth_choice = AuthChoice::SharedTokenFirst;
                    actions.push(Action::PersistDeviceToken(None));
                    true
                }
                _ => false,
            };
            if recovered {
                self.recoveries_left -= 1;
                actions.push(Action::Log(Note::Recovering {
                    code: failure.code.clone(),
                    recovery: failure.recovery,
                }));
                actions.extend(self.retry_after(RECOVERY_DELAY, failure, Retry::Recovery, now));
                return actions;
            }
        }
        match failure.disposition.clone() {
            Disposition::Halt => {
                actions.push(Action::Log(Note::Halted {
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                }));
                self.phase = LinkPhase::Halted;
                self.last_error = Some(failure);
                actions.push(Action::Report);
            }
            Disposition::Pairing { request_id } => {
                actions.push(Action::Log(Note::PairingRequired {
                    request_id: request_id.clone(),
                }));
                self.pairing_request_id = request_id;
                let delay = self.settings.pairing_retry;
                actions.extend(self.retry_after(delay, failure, Retry::Failure, now));
            }
            Disposition::Retry { after } => {
                let hint = after.or(self.restart_hint.take());
                let delay = self.backoff.next_delay(jitter, hint);
                actions.push(Action::Log(Note::Reconnecting {
                    code: failure.code.clone(),
                    delay,
                }));
                let kind = self.retry_kind(&failure);
                actions.extend(self.retry_after(delay, failure, kind, now));
            }
        }
        actions
    }

    /// A failure the backoff retries: the gateway's "not now", counted among its words and
    /// taken at its word while they last, or a failure.
    fn retry_kind(&mut self, failure: &LinkFailure) -> Retry {
        let not_now = failure.says_not_now();
        if not_now {
            self.words_not_now = self.words_not_now.saturating_add(1);
        }
        if crate::backoff::taken_at_its_word(not_now, self.words_not_now) {
            Retry::NotNow
        } else {
            Retry::Failure
        }
    }

    fn retry_after(
        &mut self,
        delay: Duration,
        failure: LinkFailure,
        kind: Retry,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if kind == Retry::Failure {
            let failures = self.breaker.consecutive_failures() + 1;
            match self.breaker.record_failure(now) {
                Opening::Opened => {
                    actions.push(Action::Log(Note::BreakerOpened { failures }));
                }
                Opening::Reopened => {
                    actions.push(Action::Log(Note::BreakerReopened { failures }));
                }
                Opening::No => {}
            }
        }
        // While open, wait for the half-open trial.
        let delay = delay.max(self.breaker.wait(now));
        let pairing = matches!(failure.disposition, Disposition::Pairing { .. });
        self.phase = LinkPhase::Backoff;
        self.last_error = Some(failure);
        actions.push(Action::Report);
        // A pairing approval gives no readiness signal; a WebSocket that broke after the
        // upgrade is not mended by a ready HTTP side (the breaker decides); a gateway that was
        // unreachable, or said it was going away or starting, may come back early.
        let poll_readiness = kind != Retry::Recovery
            && crate::backoff::readiness_shortcut(
                self.failed_before_upgrade,
                kind == Retry::NotNow,
                pairing,
            );
        actions.push(Action::ReconnectAfter {
            delay,
            poll_readiness,
        });
        actions
    }

    /// An admin removed the gateway (or changed it): the link stops for good.
    pub fn stop(&mut self) -> Vec<Action> {
        self.generation += 1;
        self.phase = LinkPhase::Halted;
        self.forget_connection();
        vec![Action::Teardown]
    }

    /// What belonged to the connection that is going (the shell tears down its socket).
    fn forget_connection(&mut self) {
        self.connect_request_id = None;
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.gateway_pinged = false;
        self.unanswered = 0;
        self.sessions_retry.reset();
        self.connected_at = None;
        self.activity.clear();
    }
}
