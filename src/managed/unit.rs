//! Where a managed gateway's keeper runs (docs/design.md, *Managed gateways*, "What survives
//! what").
//!
//! Under systemd a daemon's processes live in its unit's cgroup, and `systemctl stop` or
//! `restart gateway-supervisor` kills the whole cgroup (`KillMode=control-group`): a keeper in
//! a session of its own would die with the daemon. So under systemd each keeper is started in a
//! transient unit of its own, `openclaw-gateway-<name>.service` (`systemd-run --collect`), which
//! outlives the daemon, carries the gateway's resource limits (`MemoryMax=`, `CPUQuota=`,
//! `TasksMax=` on the cgroup of keeper and gateway together), and shows in `systemctl status`.
//! Without systemd (containers, tests) a keeper is this daemon's child in a session of its own.
//! Either way the keeper, its files and the gateway's environment are the same: the environment
//! goes through a 0600 file the keeper reads and removes, never through the unit's properties,
//! which any local user can read (`systemctl show -p Environment`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ManagedBackend, ManagedRuntimeConfig};

/// Limits on one gateway's unit (keeper, namespace and gateway together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_max: Option<u64>,
    pub cpu_quota_percent: Option<u32>,
    pub tasks_max: Option<u32>,
}

impl Limits {
    pub fn any(&self) -> bool {
        *self != Limits::default()
    }
}

/// The systemd backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdRun {
    pub program: PathBuf,
    pub limits: Limits,
    /// The unit's `TimeoutStopSec=`: systemd's SIGKILL comes after the gateway's drain.
    pub stop_timeout: Duration,
}

/// How keepers are started on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spawner {
    /// This daemon's child, in a session of its own.
    Process,
    /// A transient systemd unit per gateway.
    Systemd(SystemdRun),
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
        Spawner::Systemd(SystemdRun {
            program: cfg
                .systemd_run
                .clone()
                .unwrap_or_else(|| PathBuf::from("systemd-run")),
            limits: Limits {
                memory_max: cfg.memory_max,
                cpu_quota_percent: cfg.cpu_quota_percent,
                tasks_max: cfg.tasks_max,
            },
            stop_timeout: cfg.stop_timeout,
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

/// The unit of the gateway named `gateway` (names are `A-Z a-z 0-9 . _ -`, all valid in a unit
/// name).
pub fn unit_name(gateway: &str) -> String {
    format!("openclaw-gateway-{gateway}.service")
}

/// `systemd-run`'s arguments that start `keeper` (this binary and its `keep` arguments) as the
/// unit of `gateway`, running as `uid`:`gid` (this daemon's user: it signals the gateway, and
/// the gateway's files are its) in `dir`, its output appended to `log`.
pub fn systemd_run_args(
    run: &SystemdRun,
    gateway: &str,
    (uid, gid): (u32, u32),
    dir: &Path,
    log: &Path,
    keeper: &[OsString],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        format!("--unit={}", unit_name(gateway)).into(),
        format!("--description=OpenClaw gateway {gateway} (gateway-supervisor)").into(),
        "--collect".into(),
        "--quiet".into(),
        format!("--uid={uid}").into(),
        format!("--gid={gid}").into(),
    ];
    let mut property = |p: OsString| {
        args.push("--property".into());
        args.push(p);
    };
    // `exec`: systemd-run answers once the keeper runs, and fails when it cannot.
    property("Type=exec".into());
    // SIGTERM to the keeper alone, which passes it to the gateway (its drain); SIGKILL to all
    // that is left once the drain's time is up.
    property("KillMode=mixed".into());
    property(format!("TimeoutStopSec={}s", run.stop_timeout.as_secs().max(1)).into());
    let path_property = |key: &str, value: &Path| {
        let mut p = OsString::from(key);
        p.push(value);
        p
    };
    let (wd, out, err) = (
        path_property("WorkingDirectory=", dir),
        path_property("StandardOutput=append:", log),
        path_property("StandardError=append:", log),
    );
    for p in [wd, out, err] {
        property(p);
    }
    if let Some(m) = run.limits.memory_max {
        property(format!("MemoryMax={m}").into());
    }
    if let Some(c) = run.limits.cpu_quota_percent {
        property(format!("CPUQuota={c}%").into());
    }
    if let Some(t) = run.limits.tasks_max {
        property(format!("TasksMax={t}").into());
    }
    args.push("--".into());
    args.extend(keeper.iter().cloned());
    args
}

/// This binary's path as systemd must exec it: `/proc/self/exe` would name systemd itself
/// there. After a package upgrade replaced the file, its new version is what a keeper runs.
pub fn this_binary() -> std::io::Result<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
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
    fn a_unit_carries_the_limits_the_drain_and_no_environment() {
        let Spawner::Systemd(run) = Spawner::choose(&cfg(ManagedBackend::Systemd), false) else {
            panic!("systemd")
        };
        let args = systemd_run_args(
            &run,
            "alpha",
            (998, 997),
            Path::new("/var/lib/gs/managed/alpha/run"),
            Path::new("/var/lib/gs/managed/alpha/run/keeper.log"),
            &["/usr/bin/gateway-supervisor".into(), "keep".into()],
        );
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let props: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--property")
            .map(|w| w[1].as_str())
            .collect();
        assert!(args.contains(&"--unit=openclaw-gateway-alpha.service".to_owned()));
        assert!(args.contains(&"--collect".to_owned()));
        assert!(args.contains(&"--uid=998".to_owned()) && args.contains(&"--gid=997".to_owned()));
        for p in [
            "Type=exec",
            "KillMode=mixed",
            "TimeoutStopSec=330s",
            "MemoryMax=1073741824",
            "CPUQuota=150%",
            "TasksMax=512",
            "WorkingDirectory=/var/lib/gs/managed/alpha/run",
            "StandardError=append:/var/lib/gs/managed/alpha/run/keeper.log",
        ] {
            assert!(props.contains(&p), "{p} in {props:?}");
        }
        assert!(
            !args.iter().any(|a| a.starts_with("--setenv")
                || a.starts_with("-E")
                || a.contains("Environment")),
            "the environment never goes through the unit: {args:?}"
        );
        let tail = args.iter().skip_while(|a| *a != "--").collect::<Vec<_>>();
        assert_eq!(tail, ["--", "/usr/bin/gateway-supervisor", "keep"]);
    }

    #[test]
    fn without_limits_a_unit_sets_none() {
        let Spawner::Systemd(run) = Spawner::choose(
            &ManagedRuntimeConfig {
                backend: ManagedBackend::Systemd,
                ..ManagedRuntimeConfig::default()
            },
            false,
        ) else {
            panic!("systemd")
        };
        assert!(!run.limits.any());
        let args = systemd_run_args(&run, "a", (0, 0), Path::new("/d"), Path::new("/l"), &[]);
        assert!(!args.iter().any(|a| {
            let a = a.to_string_lossy();
            a.starts_with("MemoryMax") || a.starts_with("CPUQuota") || a.starts_with("TasksMax")
        }));
    }
}
