//! Status derivation (docs/design.md, *Health semantics*), a pure function of what the link knows.

use crate::model::GatewayStatus;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthFacts {
    /// Anything was ever observed (a connect, a probe, a failure).
    pub checked: bool,
    pub connected: bool,
    /// No handshake ever succeeded on the link (since the daemon started it).
    pub never_connected: bool,
    /// Stopped on a non-retryable error.
    pub halted: bool,
    /// The circuit breaker is open (or half-open, trial pending).
    pub breaker_tripped: bool,
    pub last_probe_timed_out: bool,
    pub consecutive_failures: u32,
    pub latency_ms: Option<u64>,
    pub degraded_latency_ms: u64,
    /// The gateway's own health report says it is not ok.
    pub reports_unhealthy: bool,
    /// A secondary check failed while the socket and the `health` RPC answer (HTTP `/health`).
    pub secondary_failing: bool,
    /// The stuck-session watchdog found a stalled session it could not recover.
    pub sessions_unrecovered: bool,
}

pub fn derive(f: &HealthFacts) -> GatewayStatus {
    if f.halted || f.breaker_tripped {
        return GatewayStatus::Offline;
    }
    if !f.checked {
        return GatewayStatus::Unknown;
    }
    if f.last_probe_timed_out {
        return GatewayStatus::Timeout;
    }
    // Failing before it was ever reached: nothing says it is up, and `degraded` ("up, with a
    // problem") would say it is. Offline, with the link's last error as the reason.
    if f.never_connected && !f.connected {
        return GatewayStatus::Offline;
    }
    let slow = f.latency_ms.is_some_and(|l| l > f.degraded_latency_ms);
    if f.connected
        && !slow
        && !f.reports_unhealthy
        && !f.secondary_failing
        && !f.sessions_unrecovered
        && f.consecutive_failures == 0
    {
        GatewayStatus::Online
    } else {
        // Connected but slow, self-reported unhealthy, failing a secondary check, holding a
        // session the watchdog could not recover, or failing below the threshold.
        GatewayStatus::Degraded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GatewayStatus::*;

    fn healthy() -> HealthFacts {
        HealthFacts {
            checked: true,
            connected: true,
            latency_ms: Some(3),
            degraded_latency_ms: 500,
            ..HealthFacts::default()
        }
    }

    #[test]
    fn each_status_from_its_cause() {
        assert_eq!(derive(&HealthFacts::default()), Unknown);
        assert_eq!(derive(&healthy()), Online);
        assert_eq!(
            derive(&HealthFacts {
                secondary_failing: true,
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                sessions_unrecovered: true,
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                latency_ms: None,
                ..healthy()
            }),
            Online
        );
        assert_eq!(
            derive(&HealthFacts {
                latency_ms: Some(501),
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                latency_ms: Some(500),
                ..healthy()
            }),
            Online
        );
        assert_eq!(
            derive(&HealthFacts {
                reports_unhealthy: true,
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                consecutive_failures: 1,
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                connected: false,
                consecutive_failures: 2,
                ..healthy()
            }),
            Degraded
        );
        assert_eq!(
            derive(&HealthFacts {
                last_probe_timed_out: true,
                ..healthy()
            }),
            Timeout
        );
        assert_eq!(
            derive(&HealthFacts {
                breaker_tripped: true,
                ..healthy()
            }),
            Offline
        );
        assert_eq!(
            derive(&HealthFacts {
                halted: true,
                ..healthy()
            }),
            Offline
        );
    }

    #[test]
    fn offline_wins_over_everything() {
        let f = HealthFacts {
            breaker_tripped: true,
            last_probe_timed_out: true,
            checked: false,
            ..healthy()
        };
        assert_eq!(derive(&f), Offline);
        let f = HealthFacts {
            halted: true,
            checked: false,
            ..HealthFacts::default()
        };
        assert_eq!(derive(&f), Offline);
    }

    #[test]
    fn timeout_only_while_the_breaker_is_closed() {
        let f = HealthFacts {
            last_probe_timed_out: true,
            consecutive_failures: 2,
            connected: false,
            ..healthy()
        };
        assert_eq!(derive(&f), Timeout);
        let f = HealthFacts {
            breaker_tripped: true,
            ..f
        };
        assert_eq!(derive(&f), Offline);
    }

    /// Exhaustive over the boolean inputs: the result always follows the precedence
    /// offline > unknown > timeout > never reached (offline) > degraded/online.
    #[test]
    fn exhaustive_precedence() {
        for bits in 0u32..(1 << 10) {
            let b = |i: u32| bits & (1 << i) != 0;
            let f = HealthFacts {
                checked: b(0),
                connected: b(1),
                halted: b(2),
                breaker_tripped: b(3),
                last_probe_timed_out: b(4),
                consecutive_failures: u32::from(b(5)),
                latency_ms: Some(if b(6) { 900 } else { 5 }),
                degraded_latency_ms: 500,
                reports_unhealthy: false,
                secondary_failing: b(7),
                sessions_unrecovered: b(8),
                never_connected: b(9),
            };
            let want = if f.halted || f.breaker_tripped {
                Offline
            } else if !f.checked {
                Unknown
            } else if f.last_probe_timed_out {
                Timeout
            } else if f.never_connected && !f.connected {
                Offline
            } else if f.connected && f.consecutive_failures == 0 && !b(6) && !b(7) && !b(8) {
                Online
            } else {
                Degraded
            };
            assert_eq!(derive(&f), want, "{f:?}");
        }
    }
}
