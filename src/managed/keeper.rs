//! `gateway-supervisor keep`: the small process between the daemon and one managed gateway,
//! as podman's conmon is between podman and a container (docs/design.md, *Managed gateways*).
//!
//! The daemon cannot be the gateway's parent: a parent that dies (kill -9, an upgrade) takes
//! the exit status with it, and the next daemon could not tell a requested restart (exit 0 and
//! a handoff) from a refusal (78) or a crash. So the daemon starts a keeper in a session of
//! its own; the keeper starts the gateway (in its own PID namespace, `unshare`), writes
//! `keeper.json` (its pid, the gateway's pid, both with their start times so a reused pid is
//! never mistaken for them), copies the gateway's output into `output.log` (rotated at a size,
//! one old file kept), and when the gateway ends writes `exit.json` and exits. A daemon —
//! this one or the next — reads those files; the keeper never decides anything.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::policy::Exit;
use super::process::{self, ExitRecord, KeeperRecord, LaunchFile};

/// The arguments of `gateway-supervisor keep`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeepArgs {
    /// The gateway's run folder: `launch.json` (read and removed at start), then keeper.json,
    /// exit.json, output.log.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Output copied into `output.log`, rotated at `max` bytes.
struct Rotating {
    path: PathBuf,
    file: fs::File,
    written: u64,
    max: u64,
}

impl Rotating {
    fn open(path: PathBuf, max: u64) -> std::io::Result<Rotating> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let written = file.metadata()?.len();
        Ok(Rotating {
            path,
            file,
            written,
            max,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.written > 0 && self.written + bytes.len() as u64 > self.max {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            fs::rename(&self.path, old)?;
            self.file = fs::File::create(&self.path)?;
            self.written = 0;
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

fn copy_into(mut from: impl Read, to: Arc<Mutex<Rotating>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Ok(mut log) = to.lock() {
            // A full disk loses output, never the gateway.
            let _ = log.write(&buf[..n]);
        }
    }
}

/// Runs the keeper until its gateway ends; an error goes to its stderr (`keeper.log`, opened
/// by the daemon) through the command line's error path.
pub fn run(args: &KeepArgs) -> Result<(), String> {
    // A session of its own: no hangup or group signal aimed at the daemon reaches it.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let launch = read_launch(&args.dir.join(process::LAUNCH_FILE))?;
    let log = Rotating::open(args.dir.join("output.log"), launch.log_max_bytes)
        .map_err(|e| format!("output.log: {e}"))?;
    let log = Arc::new(Mutex::new(log));
    let (program, rest) = launch.command.split_first().ok_or("no command")?;
    let mut child = Command::new(program)
        .args(rest)
        .env_clear()
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {}: {e}", Path::new(program).display()))?;
    let copiers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|from| {
        let to = log.clone();
        std::thread::spawn(move || copy_into(from, to))
    })
    .collect();
    let me = std::process::id();
    let gateway = namespace_init(child.id(), Duration::from_secs(10)).unwrap_or(child.id());
    let record = KeeperRecord {
        keeper_pid: me,
        keeper_start: process::start_ticks(me).unwrap_or(0),
        gateway_pid: gateway,
        gateway_start: process::start_ticks(gateway).unwrap_or(0),
        started_at_ms: process::now_ms(),
    };
    process::write_json(&args.dir.join(process::KEEPER_FILE), &record)?;
    forward_sigterm(record);
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    for c in copiers {
        let _ = c.join();
    }
    let exit = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Unknown,
    };
    process::write_json(
        &args.dir.join(process::EXIT_FILE),
        &ExitRecord {
            keeper_pid: me,
            exit,
            at_ms: process::now_ms(),
        },
    )
}

/// The launch file; removed once read (its environment may hold secrets).
fn read_launch(path: &Path) -> Result<LaunchFile, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = fs::remove_file(path);
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A SIGTERM to the keeper goes to the gateway, which drains and exits; the keeper then records
/// the exit as always. Under systemd that is how `systemctl stop openclaw-gateway@<name>` (and
/// a host's shutdown) stops a gateway: `KillMode=mixed` signals the keeper alone. A gateway
/// that has ended is not signalled (its pid may be another process's by then).
fn forward_sigterm(record: KeeperRecord) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            while term.recv().await.is_some() {
                let _ = process::signal(&record, nix::sys::signal::Signal::SIGTERM);
            }
        });
    });
}

/// The process `unshare --fork` started: PID 1 of the new namespace, as seen from here; `None`
/// when `unshare` ended or started nothing within `within`.
fn namespace_init(unshare: u32, within: Duration) -> Option<u32> {
    let started = Instant::now();
    while started.elapsed() < within {
        let children =
            fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_rotated_at_its_size_and_one_old_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut log = Rotating::open(path.clone(), 10).unwrap();
        log.write(b"12345678").unwrap();
        log.write(b"abcdef").unwrap(); // would pass 10: the first goes to .1
        log.write(b"XYZW").unwrap(); // 10 exactly: stays
        log.write(b"!").unwrap(); // past 10 again: .1 is replaced
        assert_eq!(std::fs::read(&path).unwrap(), b"!");
        assert_eq!(
            std::fs::read(dir.path().join("output.log.1")).unwrap(),
            b"abcdefXYZW"
        );
        // Reopened (a keeper after a restart), it counts what is there.
        let mut again = Rotating::open(path.clone(), 10).unwrap();
        again.write(b"123456789A").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("output.log.1")).unwrap(),
            b"!"
        );
    }
}
