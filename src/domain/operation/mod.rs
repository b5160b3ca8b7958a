//! What a fleet operation is, as stored and as the API shows it: its kind, its state, its
//! parameters (`params.rs`), and each gateway's progress through the steps. Plain data with serde; what
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

mod params;
pub use params::{
    DrainParams, DrainTimeoutPolicy, KindParams, ManagedRelease, OperationParams, ParamsRecord,
    RolloutParams, UpgradeParams,
};

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
