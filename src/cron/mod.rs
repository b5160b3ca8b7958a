//! Cron across the fleet (docs/design.md, *Cron*). What is here so far is the daemon's own
//! reading of a gateway's schedules ([`schedule`]) and the rule that tells a missed fire from a
//! run and from a gateway that was down ([`missed`]): pure, checked by their unit tests, for
//! the inventory and the watchdog that will feed them from `cron.list`, `cron.runs` and the
//! `cron` event (what a real 2026.9.6 gateway answers is in
//! `testdata/openclaw-captures/2026.9.6/cron_rpc.json`).

pub mod duplicates;
pub mod job;
pub mod missed;
pub mod schedule;
pub mod sweep;

/// The captured answers of a real 2026.9.6 gateway (`tests/openclaw_e2e/cron.rs` wrote them).
#[cfg(test)]
pub(crate) fn capture() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../testdata/openclaw-captures/2026.9.6/cron_rpc.json"
    ))
    .expect("the capture is JSON")
}
