//! What a gateway's `gateway.suspend.prepare` / `gateway.suspend.status` answer says, read in
//! one place (2026.9.6's suspend coordinator: `ready`, `draining`, `busy`, and `running` when
//! nothing is held). Anything else is [`SuspendStatus::Unexpected`]. The coordinator's
//! `conflict` (another suspension holds the gateway) reaches the wire as a refusal, not an
//! answer — `UNAVAILABLE` "another gateway suspension is already prepared" with `details.reason`
//! `gateway-suspension-conflict` and when it lapses (captured:
//! `testdata/openclaw-captures/2026.9.6/suspension_drain_abort.json`) — read by
//! [`SuspendStatus::of_refusal`].

use serde_json::Value;

use super::frames::ErrorShape;

/// `details.reason` of 2026.9.6's refusal when another suspension holds the gateway.
const CONFLICT_REASON: &str = "gateway-suspension-conflict";
/// `details.reason` of 2026.9.6's refusal of any other method while a suspension is held
/// (`UNAVAILABLE "<method> unavailable during gateway suspension"`, captured in the same file).
const SUSPENDING_REASON: &str = "gateway-suspending";

fn reason(refused: &ErrorShape) -> Option<&str> {
    refused
        .details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
}

/// Whether the gateway refused a call because a suspension is held: it runs only the
/// suspension's own methods then (`sessions.abort`, `sessions.list` and the rest are refused).
pub fn refused_while_suspended(refused: &ErrorShape) -> bool {
    reason(refused) == Some(SUSPENDING_REASON)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendStatus {
    /// Suspended and idle.
    Ready,
    /// Suspended with `drain`: work in progress goes on (`blockers`).
    Draining,
    /// Refused for now: work in progress and no `drain`, or admission taken.
    Busy,
    /// Another suspension (another request id) holds the gateway.
    Conflict,
    /// Nothing is suspended.
    Running,
    /// An answer out of protocol.
    Unexpected,
}

impl SuspendStatus {
    pub fn of(answer: &Value) -> SuspendStatus {
        match answer.get("status").and_then(Value::as_str) {
            Some("ready") => SuspendStatus::Ready,
            Some("draining") => SuspendStatus::Draining,
            Some("busy") => SuspendStatus::Busy,
            Some("conflict") => SuspendStatus::Conflict,
            Some("running") => SuspendStatus::Running,
            _ => SuspendStatus::Unexpected,
        }
    }

    /// [`SuspendStatus::Conflict`] for the refusal 2026.9.6 sends when another suspension holds
    /// the gateway; `None` for any other refusal.
    pub fn of_refusal(refused: &ErrorShape) -> Option<SuspendStatus> {
        (reason(refused) == Some(CONFLICT_REASON)).then_some(SuspendStatus::Conflict)
    }
}

/// Where a gateway's own suspension admission is, as it reports it (2026.9.6: the hello
/// snapshot's `suspension.phase` and `gateway.suspension {phase}` events), whoever suspended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspensionPhase {
    /// Not suspended: it takes work.
    Accepting,
    /// A suspension is being prepared.
    Preparing,
    /// Held with `drain`: its work in progress goes on, nothing new starts.
    Draining,
    /// Held, idle.
    Prepared,
}

impl SuspensionPhase {
    pub fn of(phase: &str) -> Option<SuspensionPhase> {
        Some(match phase {
            "accepting" => SuspensionPhase::Accepting,
            "preparing" => SuspensionPhase::Preparing,
            "draining" => SuspensionPhase::Draining,
            "prepared" => SuspensionPhase::Prepared,
            _ => return None,
        })
    }

    /// From a payload holding `phase` (an event's, or the snapshot's `suspension`).
    pub fn in_payload(payload: &Value) -> Option<SuspensionPhase> {
        payload
            .get("phase")
            .and_then(Value::as_str)
            .and_then(Self::of)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SuspensionPhase::Accepting => "accepting",
            SuspensionPhase::Preparing => "preparing",
            SuspensionPhase::Draining => "draining",
            SuspensionPhase::Prepared => "prepared",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_answer_of_2026_9_6_is_read() {
        let of = |s: &str| SuspendStatus::of(&json!({"status": s}));
        assert_eq!(of("ready"), SuspendStatus::Ready);
        assert_eq!(of("draining"), SuspendStatus::Draining);
        assert_eq!(of("busy"), SuspendStatus::Busy);
        assert_eq!(of("conflict"), SuspendStatus::Conflict);
        assert_eq!(of("running"), SuspendStatus::Running);
        assert_eq!(SuspendStatus::of(&json!({})), SuspendStatus::Unexpected);
    }

    #[test]
    fn another_suspension_is_read_from_the_refusal_2026_9_6_sends() {
        let capture: Value = serde_json::from_str(include_str!(
            "../../../testdata/openclaw-captures/2026.9.6/suspension_drain_abort.json"
        ))
        .unwrap();
        for case in ["prepare other request", "status other id"] {
            let refused: ErrorShape =
                serde_json::from_value(capture[case]["error"].clone()).unwrap();
            assert_eq!(
                SuspendStatus::of_refusal(&refused),
                Some(SuspendStatus::Conflict),
                "{case}"
            );
        }
        let other: ErrorShape =
            serde_json::from_value(capture["sessions.abort during"]["error"].clone()).unwrap();
        assert_eq!(SuspendStatus::of_refusal(&other), None);
        // That one is the refusal of a method while the suspension is held.
        assert!(refused_while_suspended(&other));
        let conflict: ErrorShape =
            serde_json::from_value(capture["prepare other request"]["error"].clone()).unwrap();
        assert!(!refused_while_suspended(&conflict));
    }
}
