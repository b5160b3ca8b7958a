//! `[managed_runtime]`: how this daemon runs the OpenClaw gateways it manages (docs/design.md,
//! *Managed gateways*) — which Node and npm, where releases are installed, which ports it hands
//! out, how long a start, a stop and a CLI call may take, how much output is kept, and the crash
//! policy (systemd's `Restart=on-failure` with a start limit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedRuntimeConfig {
    /// The Node.js that runs gateways; unset: `node` on PATH. Checked against each release's
    /// `engines.node` (2026.9.6 asks for `>=24.16.0 <25 || >=26.1.0`).
    pub node: Option<PathBuf>,
    /// The npm that installs releases; unset: `npm` on PATH.
    pub npm: Option<PathBuf>,
    /// Where releases are installed, one folder per version; unset: `<state.dir>/managed/releases`.
    /// Daemons on one host may share it.
    pub releases_dir: Option<PathBuf>,
    /// Ports handed to managed gateways that do not ask for one, 200 apart (a gateway also
    /// listens on ports derived from its own, up to its own + 110; `openclaw fleet` starts at
    /// 19100).
    pub port_range_start: u16,
    pub port_range_end: u16,
    /// How long a new process has to own its listener and report `/startupz` `started`.
    #[serde(with = "duration")]
    pub start_timeout: Duration,
    /// How long a SIGTERM'd gateway may drain before SIGKILL (2026.9.6's own stop policy under
    /// systemd is 330 s).
    #[serde(with = "duration")]
    pub stop_timeout: Duration,
    /// How long an `openclaw` CLI call (ownership, handoff) may take; a cold start takes ~8 s.
    #[serde(with = "duration")]
    pub cli_timeout: Duration,
    #[serde(with = "duration")]
    pub install_timeout: Duration,
    /// A gateway's output is rotated at this size (one old file kept).
    pub log_max_bytes: u64,
    /// Crashes within `restart_interval` that make the daemon give up.
    pub restart_burst: u32,
    #[serde(with = "duration")]
    pub restart_interval: Duration,
    /// The delay before a restart after a crash, doubled per crash in a row up to
    /// `restart_max_delay`.
    #[serde(with = "duration")]
    pub restart_delay: Duration,
    #[serde(with = "duration")]
    pub restart_max_delay: Duration,
    /// A start that stays up this long ends a run of crashes (the delay starts over).
    #[serde(with = "duration")]
    pub stable_after: Duration,
    /// Extra environment for every gateway and CLI process (e.g. `OPENCLAW_SKIP_CHANNELS`).
    pub env: BTreeMap<String, String>,
    /// Where each gateway's keeper runs: `systemd`, an instance of the packaged
    /// `openclaw-gateway@.service` per gateway, which `systemctl restart gateway-supervisor`
    /// leaves running; `process`, a session of its own (containers, tests); `auto`, systemd
    /// when this daemon itself runs under systemd.
    pub backend: ManagedBackend,
    /// The `systemctl` the systemd backend calls; unset: on PATH.
    pub systemctl: Option<PathBuf>,
    /// Per gateway (its unit's `MemoryMax=`), in bytes; systemd backend only.
    pub memory_max: Option<u64>,
    /// Per gateway (`CPUQuota=`), in percent of one CPU; systemd backend only.
    pub cpu_quota_percent: Option<u32>,
    /// Per gateway (`TasksMax=`); systemd backend only.
    pub tasks_max: Option<u32>,
}

/// `[managed_runtime] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBackend {
    #[default]
    Auto,
    Systemd,
    Process,
}

impl Default for ManagedRuntimeConfig {
    fn default() -> Self {
        ManagedRuntimeConfig {
            node: None,
            npm: None,
            releases_dir: None,
            port_range_start: 19100,
            port_range_end: 29099,
            start_timeout: Duration::from_secs(240),
            stop_timeout: Duration::from_secs(330),
            cli_timeout: Duration::from_secs(60),
            install_timeout: Duration::from_secs(900),
            log_max_bytes: 16 * 1024 * 1024,
            restart_burst: 5,
            restart_interval: Duration::from_secs(600),
            restart_delay: Duration::from_secs(1),
            restart_max_delay: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            env: BTreeMap::new(),
            backend: ManagedBackend::Auto,
            systemctl: None,
            memory_max: None,
            cpu_quota_percent: None,
            tasks_max: None,
        }
    }
}

impl ManagedRuntimeConfig {
    pub fn releases_dir(&self, state_dir: &Path) -> PathBuf {
        self.releases_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("managed/releases"))
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let (s, h) = (Duration::from_secs, |n: u64| Duration::from_secs(n * 3600));
        duration_in(
            "managed_runtime.start_timeout",
            self.start_timeout,
            s(5),
            h(1),
        )?;
        duration_in(
            "managed_runtime.stop_timeout",
            self.stop_timeout,
            s(1),
            h(1),
        )?;
        duration_in(
            "managed_runtime.cli_timeout",
            self.cli_timeout,
            s(5),
            s(600),
        )?;
        duration_in(
            "managed_runtime.install_timeout",
            self.install_timeout,
            s(30),
            h(2),
        )?;
        duration_in(
            "managed_runtime.restart_interval",
            self.restart_interval,
            s(1),
            h(24),
        )?;
        duration_in(
            "managed_runtime.restart_delay",
            self.restart_delay,
            Duration::from_millis(100),
            h(1),
        )?;
        duration_in(
            "managed_runtime.restart_max_delay",
            self.restart_max_delay,
            self.restart_delay,
            h(1),
        )?;
        duration_in(
            "managed_runtime.stable_after",
            self.stable_after,
            s(1),
            h(24),
        )?;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.port_range_start < 1024 || self.port_range_end < self.port_range_start {
            return invalid(format!(
                "managed_runtime.port_range_start..port_range_end must be a range of ports from 1024 up (got {}..{})",
                self.port_range_start, self.port_range_end
            ));
        }
        if !(1..=1000).contains(&self.restart_burst) {
            return invalid(format!(
                "managed_runtime.restart_burst must be between 1 and 1000 (got {})",
                self.restart_burst
            ));
        }
        if !(64 * 1024..=1 << 30).contains(&self.log_max_bytes) {
            return invalid(format!(
                "managed_runtime.log_max_bytes must be between 64 KiB and 1 GiB (got {})",
                self.log_max_bytes
            ));
        }
        if let Some(m) = self.memory_max.filter(|m| *m < 64 << 20) {
            return invalid(format!(
                "managed_runtime.memory_max must be at least 64 MiB (got {m} bytes; a gateway needs ~300 MB)"
            ));
        }
        if let Some(c) = self
            .cpu_quota_percent
            .filter(|c| !(1..=100_000).contains(c))
        {
            return invalid(format!(
                "managed_runtime.cpu_quota_percent must be between 1 and 100000 (got {c})"
            ));
        }
        if let Some(t) = self.tasks_max.filter(|t| !(16..=4_194_304).contains(t)) {
            return invalid(format!(
                "managed_runtime.tasks_max must be between 16 and 4194304 (got {t})"
            ));
        }
        if let Some(k) = self.env.keys().find(|k| {
            k.is_empty()
                || k.contains('=')
                || k.starts_with("OPENCLAW_SUPERVISOR")
                || *k == "OPENCLAW_NO_RESPAWN"
        }) {
            return invalid(format!(
                "managed_runtime.env cannot set `{}` (the daemon sets the supervisor contract's variables, and OPENCLAW_NO_RESPAWN breaks its restarts)",
                k.escape_default()
            ));
        }
        Ok(())
    }
}
