//! Where a managed gateway's keeper runs (docs/design.md, *Managed gateways*, "Under systemd").
//!
//! Under systemd a daemon's processes live in its unit's cgroup, and `systemctl stop` or
//! `restart gateway-supervisor` kills the whole cgroup (`KillMode=control-group`): a keeper in
//! a session of its own would die with the daemon. So under systemd each keeper runs as an
//! instance of the packaged template, `openclaw-gateway@<name>.service`, which outlives the
//! daemon, carries the gateway's resource limits (`MemoryMax=`, `CPUQuota=`, `TasksMax=` on the
//! cgroup of keeper and gateway together, set per run with `systemctl set-property --runtime`)
//! and shows in `systemctl status`. A template, not `systemd-run`: systemd up to 255 asks polkit
//! about a transient unit without naming it, so allowing the daemon's user to create one would
//! allow it any unit, as root; an instance's start, stop and properties are asked about by name,
//! and the package's rule allows `openclaw-gateway@*` only. Without systemd (containers,
//! tests) a keeper is this daemon's child in a session of its own. Either way the keeper reads
//! the same launch file (0600, removed once read): the environment never goes through a unit's
//! properties, which any local user can read.

use std::path::{Path, PathBuf};

use crate::config::{ManagedBackend, ManagedRuntimeConfig};

/// Limits on one gateway's unit (keeper, namespace and gateway together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_max: Option<u64>,
    pub cpu_quota_percent: Option<u32>,
    pub tasks_max: Option<u32>,
}

impl Limits {
    /// The limits `[managed_runtime]` sets.
    pub fn of(cfg: &ManagedRuntimeConfig) -> Limits {
        Limits {
            memory_max: cfg.memory_max,
            cpu_quota_percent: cfg.cpu_quota_percent,
            tasks_max: cfg.tasks_max,
        }
    }

    pub fn any(&self) -> bool {
        *self != Limits::default()
    }
}

/// The systemd backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Systemctl {
    pub program: PathBuf,
    pub limits: Limits,
}

/// How keepers are started on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spawner {
    /// This daemon's child, in a session of its own.
    Process,
    /// An instance of `openclaw-gateway@.service` per gateway.
    Systemd(Systemctl),
}

/// Whether this daemon runs as a systemd service: systemd sets `INVOCATION_ID` in every unit it
/// starts, and `/run/systemd/system` exists only when systemd is the init system.
pub fn under_systemd() -> bool {
    std::env::var_os("INVOCATION_ID").is_some() && Path::new("/run/systemd/system").is_dir()
}

impl Spawner {
    pub fn choose(cfg: &ManagedRuntimeConfig, under_systemd: bool) -> Spawner {
        let systemd = match cfg.backend {
            ManagedBackend::Systemd => true,
            ManagedBackend::Process => false,
            ManagedBackend::Auto => under_systemd,
        };
        if !systemd {
            return Spawner::Process;
        }
        Spawner::Systemd(Systemctl {
            program: cfg
                .systemctl
                .clone()
                .unwrap_or_else(|| PathBuf::from("systemctl")),
            limits: Limits::of(cfg),
        })
    }

    /// `process` or `systemd`, as `GET /api/hosts` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Spawner::Process => "process",
            Spawner::Systemd(_) => "systemd",
        }
    }
}

/// The unit of the gateway named `gateway` (names are `A-Z a-z 0-9 . _ -`, all valid in an
/// instance name as they are).
pub fn unit_name(gateway: &str) -> String {
    format!("openclaw-gateway@{gateway}.service")
}

/// `systemctl set-property --runtime` with the limits (none: nothing to run). Runtime: they
/// last until the host reboots, and each start sets them again from the configuration.
pub fn set_property_args(unit: &str, limits: &Limits) -> Option<Vec<String>> {
    if !limits.any() {
        return None;
    }
    let mut args = vec![
        "set-property".to_owned(),
        "--runtime".into(),
        unit.to_owned(),
    ];
    args.extend(limits.memory_max.map(|m| format!("MemoryMax={m}")));
    args.extend(limits.cpu_quota_percent.map(|c| format!("CPUQuota={c}%")));
    args.extend(limits.tasks_max.map(|t| format!("TasksMax={t}")));
    Some(args)
}

/// `systemctl restart`: a fresh keeper, also where the last one's unit is still going away
/// (`start` would merge into the running unit and start nothing).
pub fn start_args(unit: &str) -> Vec<String> {
    vec!["restart".to_owned(), unit.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(backend: ManagedBackend) -> ManagedRuntimeConfig {
        ManagedRuntimeConfig {
            backend,
            memory_max: Some(1 << 30),
            cpu_quota_percent: Some(150),
            tasks_max: Some(512),
            ..ManagedRuntimeConfig::default()
        }
    }

    #[test]
    fn auto_uses_systemd_only_when_the_daemon_runs_under_it() {
        assert_eq!(
            Spawner::choose(&cfg(ManagedBackend::Auto), false),
            Spawner::Process
        );
        assert_eq!(
            Spawner::choose(&cfg(ManagedBackend::Auto), true).name(),
            "systemd"
        );
        assert_eq!(
            Spawner::choose(&cfg(ManagedBackend::Process), true),
            Spawner::Process
        );
        assert_eq!(
            Spawner::choose(&cfg(ManagedBackend::Systemd), false).name(),
            "systemd"
        );
    }

    #[test]
    fn a_gateway_is_an_instance_of_the_template_with_its_limits_set_for_the_run() {
        let Spawner::Systemd(ctl) = Spawner::choose(&cfg(ManagedBackend::Systemd), false) else {
            panic!("systemd")
        };
        assert_eq!(ctl.program, Path::new("systemctl"));
        let unit = unit_name("edge-1.a_b");
        assert_eq!(unit, "openclaw-gateway@edge-1.a_b.service");
        assert_eq!(
            set_property_args(&unit, &ctl.limits).unwrap(),
            [
                "set-property",
                "--runtime",
                "openclaw-gateway@edge-1.a_b.service",
                "MemoryMax=1073741824",
                "CPUQuota=150%",
                "TasksMax=512"
            ]
        );
        assert_eq!(
            start_args(&unit),
            ["restart", "openclaw-gateway@edge-1.a_b.service"]
        );
    }

    #[test]
    fn without_limits_nothing_is_set() {
        let limits = Limits::default();
        assert!(!limits.any());
        assert_eq!(set_property_args("u", &limits), None);
        let one = Limits {
            tasks_max: Some(64),
            ..Limits::default()
        };
        assert_eq!(
            set_property_args("u", &one).unwrap(),
            ["set-property", "--runtime", "u", "TasksMax=64"]
        );
    }
}
