//! How an operation goes about it: what every kind shares and what is each kind's own, stored
//! and shown in one flat form ([`ParamsRecord`]) so an operation an older daemon stored reads
//! the same. Plain data with serde; checked when the request is validated.

use serde::{Deserialize, Serialize};

use super::OperationKind;
use crate::domain::{UnknownWord, parse_word};

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
