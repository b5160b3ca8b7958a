//! What a host's daemon says of its host for `GET /api/hosts`: the releases installed for its
//! managed gateways, CPUs, memory and load, read from `/proc` each round and stored, so every
//! instance of a cluster can answer for every host.

use serde::{Deserialize, Serialize};

/// A host as its daemon last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostInfo {
    /// OpenClaw releases installed side by side for managed gateways.
    pub releases: Vec<String>,
    /// CPUs this daemon may use.
    pub cpus: u32,
    /// `MemTotal` and `MemAvailable` of `/proc/meminfo`.
    pub memory_total_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    /// The one-minute load average.
    pub load_1m: Option<f64>,
    /// Where its managed gateways run: `systemd` (a unit each, `openclaw-gateway@<name>`) or
    /// `process` (children of the daemon in sessions of their own).
    #[serde(default)]
    pub backend: String,
}

/// A `/proc/meminfo` line's value in bytes (`MemTotal:  16318412 kB`).
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

impl HostInfo {
    /// Reads this host now (blocking: two small files).
    pub fn read(releases: Vec<String>, backend: &str) -> HostInfo {
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        HostInfo {
            releases,
            cpus: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            memory_total_bytes: meminfo(&mem, "MemTotal:"),
            memory_available_bytes: meminfo(&mem, "MemAvailable:"),
            load_1m: load.split_whitespace().next().and_then(|l| l.parse().ok()),
            backend: backend.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_in_bytes_from_meminfo_lines() {
        let text = "MemTotal:       16318412 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(meminfo(text, "MemTotal:"), Some(16_318_412 * 1024));
        assert_eq!(meminfo(text, "MemAvailable:"), Some(8_000_000 * 1024));
        assert_eq!(meminfo(text, "SwapTotal:"), None);
    }

    #[test]
    fn this_host_reports_its_cpus_and_memory() {
        let info = HostInfo::read(vec!["2026.9.6".into()], "process");
        assert!(info.cpus >= 1);
        assert!(info.memory_total_bytes.is_some_and(|m| m > 0));
        assert_eq!(info.releases, ["2026.9.6"]);
    }
}
