//! What a gateway's `gateway.suspend.prepare` / `gateway.suspend.status` answer says, read in
//! one place (2026.9.6's suspend coordinator: `ready`, `draining`, `busy`, `conflict`, and
//! `running` when nothing is held). Anything else is [`SuspendStatus::Unexpected`].

use serde_json::Value;

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
}
