//! What a fleet operation is, as stored and as the API shows it: its kind, its state, its
//! parameters, and each gateway's progress through the steps. Plain data with serde; what
//! happens next is decided in `fleet/operation/rule.rs`.

use serde::{Deserialize, Serialize};

use gateway_supervisor_actors::model::GatewayId;

/// What an operation does to each of its gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Cordon, then suspend with `drain` and watch the blockers until the gateway is idle.
    Drain,
    /// For each gateway in turn: drain, restart the verified process, wait until it is back
    /// and healthy, uncordon.
    RollingRestart,
    /// Hold every gateway's pending automatic update (`update.hold`), all at once.
    UpdateHold,
    /// Canary first: for each gateway in turn, cordon, ask the verified process to update
    /// itself (`update.run`), follow the gateway's own run record until it is over, wait until
    /// the new process is back and healthy, uncordon; the rest only once the canaries are done
    /// and have stayed up through their bake.
    Upgrade,
    /// Desired configuration, a few gateways at a time (canaries first): `config.get`, then
    /// `config.patch` over its hash, through the restart where the gateway needs one, healthy
    /// for `min_healthy_time` and read back; the first unhealthy gateway stops it, and with
    /// `auto_revert` every changed gateway gets its previous values back. Carried out by the
    /// `fleet_config` module.
    ConfigRollout,
    /// A declared cron job, a few gateways at a time (canaries first): `cron.add` with the
    /// declaration's key on each gateway it picks (enabled on one only when it fires once per
    /// group), `cron.remove` on each that carries it and should not, each write read back.
    /// Carried out by the `cron` module.
    CronDeclaration,
}

impl OperationKind {
    pub const ALL: [OperationKind; 6] = [
        OperationKind::Drain,
        OperationKind::RollingRestart,
        OperationKind::UpdateHold,
        OperationKind::Upgrade,
        OperationKind::ConfigRollout,
        OperationKind::CronDeclaration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Drain => "drain",
            OperationKind::RollingRestart => "rolling_restart",
            OperationKind::UpdateHold => "update_hold",
            OperationKind::Upgrade => "upgrade",
            OperationKind::ConfigRollout => "config_rollout",
            OperationKind::CronDeclaration => "cron_declaration",
        }
    }
}

/// Where an operation is. `running` until every gateway is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Running,
    /// An operator cancelled it: no gateway is started any more, a drain in progress is
    /// released; a restart already sent is seen through.
    Cancelling,
    /// Every gateway done.
    Succeeded,
    /// A gateway failed (with `abort_on_failure`, the ones after it were left untouched).
    Failed,
    /// Cancelled, and every gateway over.
    Cancelled,
    /// A config rollout an operator paused: no gateway is started until it is resumed; those
    /// started go on.
    Paused,
    /// A config rollout's canaries are done and `auto_promote` is off: the rest wait for an
    /// operator's promote.
    AwaitingPromotion,
    /// A config rollout stopped at an unhealthy gateway: the gateways it changed are being put
    /// back (`auto_revert`).
    Reverting,
    /// Stopped and put back: every changed gateway has its previous values again.
    Reverted,
}

impl OperationState {
    pub const ALL: [OperationState; 9] = [
        OperationState::Running,
        OperationState::Cancelling,
        OperationState::Succeeded,
        OperationState::Failed,
        OperationState::Cancelled,
        OperationState::Paused,
        OperationState::AwaitingPromotion,
        OperationState::Reverting,
        OperationState::Reverted,
    ];

    /// Still carried out (not over).
    pub const LIVE: [&'static str; 5] = [
        "running",
        "cancelling",
        "paused",
        "awaiting_promotion",
        "reverting",
    ];

    /// An operator may cancel it in this state: every live one but `cancelling` itself (a
    /// cancel while reverting stops the revert where it is).
    pub const CANCELLABLE: [&'static str; 4] =
        ["running", "paused", "awaiting_promotion", "reverting"];

    pub fn is_live(self) -> bool {
        matches!(
            self,
            OperationState::Running
                | OperationState::Cancelling
                | OperationState::Paused
                | OperationState::AwaitingPromotion
                | OperationState::Reverting
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Running => "running",
            OperationState::Cancelling => "cancelling",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Cancelled => "cancelled",
            OperationState::Paused => "paused",
            OperationState::AwaitingPromotion => "awaiting_promotion",
            OperationState::Reverting => "reverting",
            OperationState::Reverted => "reverted",
        }
    }
}

use crate::domain::{UnknownWord, parse_word};

impl std::str::FromStr for OperationKind {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        parse_word(
            &OperationKind::ALL,
            OperationKind::as_str,
            "operation kind",
            s,
        )
    }
}

impl std::str::FromStr for OperationState {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        parse_word(
            &OperationState::ALL,
            OperationState::as_str,
            "operation state",
            s,
        )
    }
}

/// How an operation goes about it (checked when the request is validated): what every kind
/// shares, and what is its kind's own ([`KindParams`]). Stored and shown as a
/// [`ParamsRecord`], the flat form every operation was stored in before the kinds had their
/// own parameters, so an operation an older daemon stored reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationParams {
    /// How many gateways may be out of service at once (a rollout's `max_parallel`).
    pub max_unavailable: u32,
    /// How long a restarted, updated or written gateway has to come back healthy (seconds; a
    /// rollout's `healthy_deadline`).
    pub wait_ready_s: u64,
    /// Stop at the first gateway that fails, leaving the others untouched.
    pub abort_on_failure: bool,
    /// The first `canary` gateways go first; the others wait until every canary is done (a
    /// failed canary always stops the rest).
    pub canary: u32,
    /// The kind's own.
    pub of: KindParams,
}

/// What one kind of operation alone is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindParams {
    /// A drain, and a rolling restart's drain before each restart.
    Drain(DrainParams),
    /// An update hold: nothing of its own.
    Hold,
    Upgrade(UpgradeParams),
    Rollout(RolloutParams),
    /// A cron declaration's rollout: the declaration it writes (read from the store at each
    /// round, as it is then).
    Cron {
        declaration: String,
    },
}

/// A drain's own parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainParams {
    /// How long a drain may wait for the gateway's work to finish (seconds).
    pub drain_timeout_s: u64,
    /// A restart whose drain times out is asked anyway, past the work that held the drain
    /// (`skipDeferral`: a wedged run must not keep its gateway from the restart that would free
    /// it), instead of failing.
    pub force_after_drain: bool,
    /// What a drain that times out does (unless `force_after_drain` restarts past it).
    pub on_drain_timeout: DrainTimeoutPolicy,
}

/// An upgrade's own parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeParams {
    /// How long an upgraded canary must stay up, as the same process and healthy, before it
    /// is done (seconds).
    pub canary_bake_s: u64,
    /// The target for managed gateways (this daemon swaps their release itself).
    pub release: Option<ManagedRelease>,
}

impl OperationParams {
    /// A drain's parameters; those of no drain (0 s, no force, release) for a kind that does
    /// not drain.
    pub fn drain(&self) -> DrainParams {
        match &self.of {
            KindParams::Drain(d) => *d,
            _ => DrainParams::default(),
        }
    }

    /// An upgrade's parameters, when it is one.
    pub fn upgrade(&self) -> Option<&UpgradeParams> {
        match &self.of {
            KindParams::Upgrade(u) => Some(u),
            _ => None,
        }
    }

    /// A config rollout's parameters, when it is one.
    pub fn rollout(&self) -> Option<&RolloutParams> {
        match &self.of {
            KindParams::Rollout(r) => Some(r),
            _ => None,
        }
    }

    /// A cron declaration's name, when it is one's rollout.
    pub fn declaration(&self) -> Option<&str> {
        match &self.of {
            KindParams::Cron { declaration } => Some(declaration),
            _ => None,
        }
    }

    /// Whether an operation of these parameters may hold a gateway while one of `other`'s
    /// does: only the rollouts of two different cron declarations may (each writes its own
    /// job, and writes to a gateway are paced per gateway whoever makes them); every other
    /// pair is refused, so no two operations undo each other's steps.
    pub fn may_share_gateways_with(&self, other: &OperationParams) -> bool {
        matches!(
            (self.declaration(), other.declaration()),
            (Some(a), Some(b)) if a != b
        )
    }

    /// The flat form stored and shown: a field that is not the kind's reads as nothing
    /// (0, false, `release`, absent).
    pub fn record(&self) -> ParamsRecord {
        let drain = self.drain();
        let upgrade = self.upgrade().cloned().unwrap_or_default();
        ParamsRecord {
            max_unavailable: self.max_unavailable,
            wait_ready_s: self.wait_ready_s,
            drain_timeout_s: drain.drain_timeout_s,
            abort_on_failure: self.abort_on_failure,
            canary: self.canary,
            canary_bake_s: upgrade.canary_bake_s,
            force_after_drain: drain.force_after_drain,
            on_drain_timeout: drain.on_drain_timeout,
            rollout: self.rollout().cloned(),
            release: upgrade.release,
            declaration: self.declaration().map(str::to_owned),
        }
    }

    /// Operation `kind`'s parameters from their stored form (as any daemon stored them: the
    /// fields of other kinds it filled then are not read).
    pub fn from_record(kind: OperationKind, r: ParamsRecord) -> Self {
        let of = match kind {
            OperationKind::Drain | OperationKind::RollingRestart => {
                KindParams::Drain(DrainParams {
                    drain_timeout_s: r.drain_timeout_s,
                    force_after_drain: r.force_after_drain,
                    on_drain_timeout: r.on_drain_timeout,
                })
            }
            OperationKind::UpdateHold => KindParams::Hold,
            OperationKind::Upgrade => KindParams::Upgrade(UpgradeParams {
                canary_bake_s: r.canary_bake_s,
                release: r.release,
            }),
            OperationKind::ConfigRollout => match r.rollout {
                Some(rp) => KindParams::Rollout(rp),
                // Never stored so; read as a rollout that cannot go on rather than refused.
                None => KindParams::Hold,
            },
            OperationKind::CronDeclaration => match r.declaration {
                Some(declaration) => KindParams::Cron { declaration },
                None => KindParams::Hold,
            },
        };
        OperationParams {
            max_unavailable: r.max_unavailable,
            wait_ready_s: r.wait_ready_s,
            abort_on_failure: r.abort_on_failure,
            canary: r.canary,
            of,
        }
    }
}

/// An operation's parameters as stored and shown: every kind's fields side by side (those not
/// of its kind read as nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OperationParams)]
pub struct ParamsRecord {
    /// How many gateways may be out of service at once.
    pub max_unavailable: u32,
    /// How long a restarted gateway has to come back healthy (seconds).
    pub wait_ready_s: u64,
    /// How long a drain may wait for the gateway's work to finish (seconds).
    pub drain_timeout_s: u64,
    /// Stop at the first gateway that fails, leaving the others untouched.
    pub abort_on_failure: bool,
    /// An upgrade's canaries: its first `canary` gateways go first; the others wait until
    /// every canary is done (a failed canary always stops the rest).
    #[serde(default)]
    pub canary: u32,
    /// How long an upgraded canary must stay up, as the same process and healthy, before it
    /// is done (seconds).
    #[serde(default)]
    pub canary_bake_s: u64,
    /// A restart whose drain times out is asked anyway, past the work that held the drain
    /// (`skipDeferral`: a wedged run must not keep its gateway from the restart that would free
    /// it), instead of failing.
    #[serde(default)]
    pub force_after_drain: bool,
    /// What a drain that times out does (unless `force_after_drain` restarts past it).
    #[serde(default)]
    pub on_drain_timeout: DrainTimeoutPolicy,
    /// A config rollout's own knobs (`max_unavailable` is its `max_parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutParams>,
    /// An upgrade's target for managed gateways (this daemon swaps their release itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ManagedRelease>,
    /// A cron declaration's rollout: the declaration it writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<String>,
}

/// The release an upgrade swaps managed gateways to (observer-mode gateways update
/// themselves to their channel's newest, `update.run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManagedRelease {
    pub version: String,
    /// `npm`, or the absolute path of a package tarball on the gateway's host.
    pub source: String,
    /// How long the target must run (owning its listener, `/startupz` `started`) before the
    /// swap is done; an exit before then puts the previous release back (seconds).
    pub min_healthy_s: u64,
}

/// How a config rollout judges and stops (Nomad's `update` stanza).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutParams {
    /// How long a changed gateway must stay healthy (connected, breaker closed, the same
    /// process) before it is read back and done (seconds).
    pub min_healthy_time_s: u64,
    /// How long a gateway has, from its start, to be done; past it, it is unhealthy (seconds).
    pub healthy_deadline_s: u64,
    /// On the first unhealthy gateway, put every changed gateway back.
    pub auto_revert: bool,
    /// Go on past the canaries without an operator's promote.
    pub auto_promote: bool,
    /// An operator promoted it.
    #[serde(default)]
    pub promoted: bool,
    /// How many times a gateway's write is tried when another write comes between its
    /// `config.get` and its `config.patch`.
    pub max_attempts: u32,
}

/// What a drain does when its timeout comes with work still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrainTimeoutPolicy {
    /// Give up: the suspension is released, the gateway stays cordoned, it is `failed`.
    #[default]
    Release,
    /// Abort the runs still going (the gateway refuses `sessions.abort` while suspended: the
    /// suspension is released, each run aborted, the gateway suspended again) and wait up to
    /// `wait_ready` more for it to be idle.
    AbortRuns,
}

impl DrainTimeoutPolicy {
    pub const ALL: [DrainTimeoutPolicy; 2] =
        [DrainTimeoutPolicy::Release, DrainTimeoutPolicy::AbortRuns];

    pub fn as_str(self) -> &'static str {
        match self {
            DrainTimeoutPolicy::Release => "release",
            DrainTimeoutPolicy::AbortRuns => "abort_runs",
        }
    }
}

impl std::str::FromStr for DrainTimeoutPolicy {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        parse_word(
            &DrainTimeoutPolicy::ALL,
            DrainTimeoutPolicy::as_str,
            "operation drain timeout policy",
            s,
        )
    }
}

/// A run that holds a drain: its session, and the run and spawn when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockingRun {
    pub session_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The spawn that started it, when it came through this daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub spawn_id: Option<crate::domain::SpawnId>,
}

/// One gateway's step. Stored and shown as `step` with the step's own fields beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Not started.
    Pending,
    /// Started: to be cordoned and its process noted by the instance that links it.
    Admitted,
    /// Cordoned; `gateway.suspend.prepare {drain: true}` asked (again at each round, which also
    /// keeps the suspension from lapsing) until the gateway says `ready`.
    Draining {
        /// The gateway deduplicates suspensions by it: asking again renews the same one.
        request_id: String,
        /// Once the gateway has answered with one.
        suspension_id: Option<String>,
        since_ms: i64,
    },
    /// Drained: the suspension is to be released (a 2026.9 gateway refuses a plain restart
    /// request while suspended; idle, its restart does not wait) and a restart requested of the
    /// process noted at the start, by `since_ms` + `wait_ready`.
    Restarting {
        suspension_id: Option<String>,
        since_ms: i64,
        /// The drain timed out with `force_after_drain`: the restart is asked past the
        /// gateway's active-work deferral (`skipDeferral`).
        #[serde(default)]
        forced: bool,
    },
    /// Restart requested: waiting for another process, a `health` RPC and `/readyz`.
    Returning {
        since_ms: i64,
    },
    /// Cordoned, its process noted: `update.run` to be asked of that process (once no run is
    /// active there already), then the gateway's run record (`update.runs.get`) followed
    /// until it is over, by `since_ms` + `wait_ready`.
    Updating {
        /// The gateway's durable id for the update, once it has given one.
        run_id: Option<String>,
        since_ms: i64,
    },
    /// A managed gateway's release being swapped by the daemon on its host (install, preflight
    /// a copy of its state, stop, snapshot, start the target, settle; a target that fails is
    /// stopped, the snapshot put back and the previous release started again).
    Swapping {
        since_ms: i64,
    },
    /// An upgraded canary, back and healthy: it must stay the same process and healthy until
    /// `until_ms`, then it is checked once more.
    Baking {
        until_ms: i64,
    },
    Done,
    Failed,
    /// Left untouched (an earlier gateway failed).
    Skipped,
    /// A config rollout's write: `config.get`, then `config.patch` over its hash, not before
    /// `not_before_ms` (paced under the gateway's write limit, or when it said to retry);
    /// `attempts` writes lost a race so far.
    Writing {
        attempts: u32,
        not_before_ms: i64,
    },
    /// Written; the gateway restarts to apply it: waiting for another process.
    Applying {
        since_ms: i64,
    },
    /// Written and applied: healthy since `healthy_since_ms` (absent while it is not); read
    /// back once it has been for `min_healthy_time`.
    Settling {
        healthy_since_ms: Option<i64>,
    },
    /// A changed gateway being put back: its previous values written by the same
    /// compare-and-set path.
    Reverting {
        attempts: u32,
        not_before_ms: i64,
        since_ms: i64,
    },
    /// Put back.
    Reverted,
}

impl Step {
    /// Started and not over: the gateway counts against `max_unavailable`.
    pub fn in_flight(&self) -> bool {
        matches!(
            self,
            Step::Admitted
                | Step::Draining { .. }
                | Step::Restarting { .. }
                | Step::Returning { .. }
                | Step::Updating { .. }
                | Step::Swapping { .. }
                | Step::Baking { .. }
                | Step::Writing { .. }
                | Step::Applying { .. }
                | Step::Settling { .. }
                | Step::Reverting { .. }
        )
    }

    pub fn is_over(&self) -> bool {
        matches!(
            self,
            Step::Done | Step::Failed | Step::Skipped | Step::Reverted
        )
    }

    /// The step's name, as events and logs show it.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Pending => "pending",
            Step::Admitted => "admitted",
            Step::Draining { .. } => "draining",
            Step::Restarting { .. } => "restarting",
            Step::Returning { .. } => "returning",
            Step::Updating { .. } => "updating",
            Step::Swapping { .. } => "swapping",
            Step::Baking { .. } => "baking",
            Step::Done => "done",
            Step::Failed => "failed",
            Step::Skipped => "skipped",
            Step::Writing { .. } => "writing",
            Step::Applying { .. } => "applying",
            Step::Settling { .. } => "settling",
            Step::Reverting { .. } => "reverting",
            Step::Reverted => "reverted",
        }
    }
}

/// One gateway of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayProgress {
    pub gateway_id: GatewayId,
    #[serde(flatten)]
    pub step: Step,
    /// The process the operation acts on (`bootId`), noted when the gateway was admitted.
    pub boot_id_before: Option<String>,
    /// The process it came back as.
    pub boot_id_after: Option<String>,
    /// An upgrade's canary (goes before the others).
    #[serde(default)]
    pub canary: bool,
    /// The release it ran when it was admitted, and the one it came back as (an upgrade).
    #[serde(default)]
    pub version_before: Option<String>,
    #[serde(default)]
    pub version_after: Option<String>,
    /// What it is waiting for, or why it failed (bounded, escaped).
    pub detail: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The runs this daemon knows of on the gateway while its drain waits (its session cache
    /// and the spawns it started there; the gateway's own blockers only count them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking_runs: Vec<BlockingRun>,
    /// When an operator asked to abort the runs holding the drain (`POST
    /// /api/operations/{id}/abort-runs`), and when they last were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_runs_asked_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_aborted_at: Option<i64>,
    /// A config rollout wrote its patch here: a revert puts it back.
    #[serde(default, skip_serializing_if = "is_false")]
    pub written: bool,
    /// The paths the gateway said its write changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_paths: Vec<String>,
    /// A managed gateway's swap failed and its previous release runs again on its restored
    /// state: the operation ends `reverted`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rolled_back: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl GatewayProgress {
    pub fn pending(gateway_id: GatewayId) -> Self {
        GatewayProgress {
            gateway_id,
            step: Step::Pending,
            boot_id_before: None,
            boot_id_after: None,
            canary: false,
            version_before: None,
            version_after: None,
            detail: None,
            started_at: None,
            finished_at: None,
            blocking_runs: Vec::new(),
            abort_runs_asked_at: None,
            runs_aborted_at: None,
            written: false,
            changed_paths: Vec::new(),
            rolled_back: false,
        }
    }
}

/// An `operation.progress` event's payload, whatever the kind (made by
/// `fleet/operation/progress.rs`, read typed by the alerts): an operation's start or a change of
/// its state (with its `detail`, and every gateway once it is over), or one gateway's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub operation_id: crate::domain::OperationId,
    pub kind: OperationKind,
    pub state: OperationState,
    /// Why it stopped where it did, when that needs saying (a change of state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The gateway whose step moved (the event's `gateway_id` names it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayProgress>,
    /// Every gateway, once the operation is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<GatewayProgress>>,
}

impl ProgressEvent {
    /// An `operation.progress` event's payload read back (`None`: not one).
    pub fn read(payload: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(payload.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters as main stored them on 2026-11-28 (every kind's fields filled, those not its
    /// kind's with unused defaults), read as each kind's own.
    #[test]
    fn parameters_an_older_daemon_stored_read_as_their_kind_s_own() {
        let stored = |extra: serde_json::Value| -> ParamsRecord {
            let mut v = serde_json::json!({"max_unavailable": 2, "wait_ready_s": 600,
                "drain_timeout_s": 300, "abort_on_failure": true, "canary": 1,
                "canary_bake_s": 30, "force_after_drain": false, "on_drain_timeout": "release"});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            serde_json::from_value(v).unwrap()
        };
        let restart = OperationParams::from_record(
            OperationKind::RollingRestart,
            stored(
                serde_json::json!({"force_after_drain": true, "on_drain_timeout": "abort_runs"}),
            ),
        );
        assert_eq!(
            restart.of,
            KindParams::Drain(DrainParams {
                drain_timeout_s: 300,
                force_after_drain: true,
                on_drain_timeout: DrainTimeoutPolicy::AbortRuns,
            })
        );
        let release =
            serde_json::json!({"version": "2026.9.6", "source": "npm", "min_healthy_s": 10});
        let upgrade = OperationParams::from_record(
            OperationKind::Upgrade,
            stored(serde_json::json!({"release": release})),
        );
        assert_eq!(upgrade.upgrade().unwrap().canary_bake_s, 30);
        assert_eq!(
            upgrade.upgrade().unwrap().release.as_ref().unwrap().version,
            "2026.9.6"
        );
        assert_eq!(
            upgrade.drain(),
            DrainParams::default(),
            "an upgrade does not drain"
        );
        let rollout = OperationParams::from_record(
            OperationKind::ConfigRollout,
            stored(
                serde_json::json!({"rollout": {"min_healthy_time_s": 5, "healthy_deadline_s": 60,
                "auto_revert": true, "auto_promote": false, "max_attempts": 5}}),
            ),
        );
        assert!(!rollout.rollout().unwrap().auto_promote);
        assert_eq!(
            OperationParams::from_record(OperationKind::UpdateHold, stored(serde_json::json!({})))
                .of,
            KindParams::Hold
        );
        // Shared: the same for every kind.
        assert_eq!(
            (
                upgrade.max_unavailable,
                upgrade.wait_ready_s,
                upgrade.canary
            ),
            (2, 600, 1)
        );
    }

    #[test]
    fn only_two_declarations_rollouts_share_a_gateway() {
        let of = |of: KindParams| OperationParams {
            max_unavailable: 1,
            wait_ready_s: 60,
            abort_on_failure: true,
            canary: 0,
            of,
        };
        let cron = |name: &str| {
            of(KindParams::Cron {
                declaration: name.into(),
            })
        };
        assert!(cron("a").may_share_gateways_with(&cron("b")));
        assert!(!cron("a").may_share_gateways_with(&cron("a")));
        assert!(!cron("a").may_share_gateways_with(&of(KindParams::Hold)));
        assert!(!of(KindParams::Hold).may_share_gateways_with(&cron("a")));
    }

    /// Stored again, a kind's parameters read back the same, and a field that is not its
    /// kind's reads as nothing.
    #[test]
    fn a_kind_s_parameters_are_stored_and_read_back_the_same() {
        let upgrade = OperationParams {
            max_unavailable: 1,
            wait_ready_s: 900,
            abort_on_failure: true,
            canary: 1,
            of: KindParams::Upgrade(UpgradeParams {
                canary_bake_s: 60,
                release: None,
            }),
        };
        let record = upgrade.record();
        assert_eq!(
            (record.drain_timeout_s, record.force_after_drain),
            (0, false)
        );
        let text = serde_json::to_string(&record).unwrap();
        let back: ParamsRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(
            OperationParams::from_record(OperationKind::Upgrade, back),
            upgrade
        );
    }
}
