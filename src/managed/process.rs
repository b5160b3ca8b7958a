//! A managed gateway's process as the daemon sees it: started through a keeper
//! ([`super::keeper`]), found again after a daemon restart by the keeper's files, checked by
//! pid *and* start time (a pid the kernel reused is not the gateway), signalled, and waited
//! for. Blocking file and /proc reads; callers run them off the async threads.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::command;
use super::policy::Exit;
use super::unit::{self, Spawner, Systemctl};

pub const KEEPER_FILE: &str = "keeper.json";
pub const EXIT_FILE: &str = "exit.json";

/// What a keeper writes once its gateway started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeeperRecord {
    pub keeper_pid: u32,
    /// Start time in clock ticks since boot (/proc/PID/stat field 22).
    pub keeper_start: u64,
    /// The gateway (PID 1 of its namespace), as seen from the host.
    pub gateway_pid: u32,
    pub gateway_start: u64,
    pub started_at_ms: i64,
}

/// What a keeper writes when its gateway ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub keeper_pid: u32,
    pub exit: Exit,
    pub at_ms: i64,
}

/// What the daemon writes for a keeper to start (0600: the environment may hold secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchFile {
    /// The gateway's command line.
    pub command: Vec<String>,
    /// Its whole environment.
    pub env: std::collections::BTreeMap<String, String>,
    /// `output.log` is rotated to `output.log.1` at this size.
    pub log_max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the keeper: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the keeper did not start the gateway within {0:?} (see keeper.log)")]
    NoRecord(Duration),
    #[error("cannot write the launch file: {0}")]
    Launch(#[source] crate::secrets::SecretsError),
    #[error("cannot start the gateway's unit: {0}")]
    Unit(String),
    #[error("cannot signal the gateway: {0}")]
    Signal(#[source] nix::Error),
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Written whole and renamed, so a reader never sees half a record.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// `/proc/PID/stat`: (state, start time in ticks). The command name may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the line, start time field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is the process that started at `start` and has not ended (a zombie has).
pub fn alive(pid: u32, start: u64) -> bool {
    matches!(stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

/// The pid the process sees itself as (the last of `NSpid:`): 1 for a gateway that is its
/// namespace's init; what `system.info.pid` reports and what a restart handoff records.
pub fn namespace_pid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Whether `pid` holds the socket listening on TCP `port` (IPv4 or IPv6): the new process owns
/// its listener, not a leftover one.
pub fn owns_listener(pid: u32, port: u16) -> bool {
    let inodes: Vec<String> = ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let local_port = f.get(1)?.rsplit(':').next()?;
                    // State 0A is LISTEN.
                    (u16::from_str_radix(local_port, 16).ok()? == port && *f.get(3)? == "0A")
                        .then(|| f.get(9).map(|s| format!("socket:[{s}]")))
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

/// The keeper's record in `dir`, if one is there.
pub fn record(dir: &Path) -> Option<KeeperRecord> {
    read_json(&dir.join(KEEPER_FILE))
}

/// How the gateway `record` names ended, once its keeper wrote it.
pub fn exit(dir: &Path, record: &KeeperRecord) -> Option<Exit> {
    read_json::<ExitRecord>(&dir.join(EXIT_FILE))
        .filter(|e| e.keeper_pid == record.keeper_pid)
        .map(|e| e.exit)
}

/// Whether the gateway of `record` still runs (its keeper may be gone: a keeper killed with
/// the daemon's whole group leaves the gateway running, then nothing records its exit).
pub fn running(record: &KeeperRecord) -> bool {
    alive(record.gateway_pid, record.gateway_start)
}

/// What a keeper reads to start its gateway (0600; removed once read).
pub const LAUNCH_FILE: &str = "launch.json";

/// Starts a keeper for `command` with exactly `env`, as `spawner` says, and waits for its
/// record. The keeper is this binary (`keep`); its output goes to `dir/keeper.log`.
pub fn spawn(
    dir: &Path,
    command: &[OsString],
    env: &[(String, OsString)],
    log_max_bytes: u64,
    within: Duration,
    (spawner, gateway): (&Spawner, &str),
) -> Result<KeeperRecord, ProcessError> {
    let prepare = |path: &Path, e| ProcessError::Prepare {
        path: path.to_owned(),
        source: e,
    };
    fs::create_dir_all(dir).map_err(|e| prepare(dir, e))?;
    for stale in [KEEPER_FILE, EXIT_FILE] {
        match fs::remove_file(dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(prepare(&dir.join(stale), e)),
        }
    }
    let launch_file = dir.join(LAUNCH_FILE);
    let launch = LaunchFile {
        command: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
            .collect(),
        log_max_bytes,
    };
    match fs::remove_file(&launch_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(prepare(&launch_file, e)),
    }
    let bytes = serde_json::to_vec(&launch).map_err(|e| prepare(&launch_file, e.into()))?;
    crate::secrets::write_private_file(&launch_file, &bytes).map_err(ProcessError::Launch)?;
    let keeper_log = dir.join("keeper.log");
    let stderr = fs::File::create(&keeper_log).map_err(|e| prepare(&keeper_log, e))?;
    let mut child = match spawner {
        Spawner::Process => Some(
            // This very binary, even after a package upgrade replaced the file (the kernel
            // keeps the running one; `current_exe` would name a path that is gone).
            Command::new("/proc/self/exe")
                .arg("keep")
                .arg("--dir")
                .arg(dir)
                .env_clear()
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .map_err(ProcessError::Spawn)?,
        ),
        Spawner::Systemd(ctl) => {
            drop(stderr);
            start_unit(ctl, gateway)?;
            None
        }
    };
    let started = Instant::now();
    let found = loop {
        if let Some(r) = record(dir) {
            break Some(r);
        }
        let ended = child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if started.elapsed() > within || ended {
            break record(dir);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if found.is_none() {
        // Never leave the environment behind a keeper that did not start.
        let _ = fs::remove_file(&launch_file);
    }
    // The keeper is this daemon's child until it ends: reap it then (a later daemon is not its
    // parent, and init reaps it).
    if let Some(mut child) = child {
        std::thread::spawn(move || child.wait());
    }
    found.ok_or(ProcessError::NoRecord(within))
}

/// The gateway's unit: its limits set for this run, then `restart` (a fresh keeper even where
/// the last one's unit has not finished going away).
fn start_unit(ctl: &Systemctl, gateway: &str) -> Result<(), ProcessError> {
    let unit = unit::unit_name(gateway);
    for args in [
        unit::set_property_args(&unit, &ctl.limits),
        Some(unit::start_args(&unit)),
    ]
    .into_iter()
    .flatten()
    {
        let mut cmd = Command::new(&ctl.program);
        cmd.args(&args);
        let done = command::run(cmd, Duration::from_secs(60))
            .map_err(|e| ProcessError::Unit(e.to_string()))?;
        if done.code != Some(0) {
            return Err(ProcessError::Unit(format!(
                "{} {} failed ({}): {}",
                ctl.program.display(),
                args.join(" "),
                done.code
                    .map_or("a signal".to_owned(), |c| format!("exit {c}")),
                done.last_words()
            )));
        }
    }
    Ok(())
}

/// Sends `signal` to the gateway of `record`, if it is still that process.
pub fn signal(record: &KeeperRecord, signal: nix::sys::signal::Signal) -> Result<(), ProcessError> {
    if !running(record) {
        return Ok(());
    }
    let pid = i32::try_from(record.gateway_pid).unwrap_or(i32::MAX);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(ProcessError::Signal)
}

/// The keeper run folder of a managed gateway's folder.
pub fn run_dir(gateway_dir: &Path) -> PathBuf {
    gateway_dir.join("run")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_by_pid_and_start_time_and_not_by_pid_alone() {
        let me = std::process::id();
        let start = start_ticks(me).unwrap();
        assert!(alive(me, start));
        assert!(
            !alive(me, start + 1),
            "the same pid with another start time"
        );
        assert!(!alive(u32::MAX - 1, start));
    }

    #[test]
    fn a_process_outside_any_new_namespace_sees_its_host_pid() {
        let me = std::process::id();
        // The test runner may itself be in a PID namespace; then NSpid's last entry is that one.
        assert!(namespace_pid(me).is_some());
    }

    #[test]
    fn a_listener_belongs_to_the_process_that_opened_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(owns_listener(std::process::id(), port));
        drop(listener);
        assert!(!owns_listener(std::process::id(), port));
    }
}
