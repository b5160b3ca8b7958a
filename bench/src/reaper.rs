//! A `gs-bench` stopped by a signal leaves nothing running. Its children (the daemon, the fake
//! hosts, the static server) are stopped in `Drop`, which a signal skips: a terminal's Ctrl-C
//! reached them anyway (one process group), but a `kill` or a `timeout` of `gs-bench` alone left
//! a daemon and thousands of fake gateways running. So the signals that stop a run are taken by
//! a thread of their own, which sends every child still running `SIGTERM` (the `real`
//! scenario's OpenClaw `SIGKILL`, see [`kill_on_signal`]) and exits as the signal would have
//! (128 + its number).

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

/// What a signal stops: a child spawned here (`SIGTERM`: the daemon drains), or a process
/// started elsewhere whose death ends what it runs (`SIGKILL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Child(u32),
    Killed(u32),
}

/// The children spawned through [`spawn`] and not yet waited for, and the processes
/// [`kill_on_signal`] was given and not yet [`forget`]-ed.
static CHILDREN: Mutex<BTreeSet<Target>> = Mutex::new(BTreeSet::new());

fn children() -> MutexGuard<'static, BTreeSet<Target>> {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the stopping signals from here on, with handlers (tokio's), not a blocked mask: a
/// child inherits its parent's mask through `Command` (every signal of a daemon started from a
/// thread that blocked them stayed pending, 2026-11-28), while a handler is reset by `exec`.
pub fn take_signals() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // Installed here, before `main` goes on to start anything.
    let (int, term, hup) = {
        let _in = rt.enter();
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        )
    };
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (int, term, hup) else {
        return;
    };
    std::thread::spawn(move || {
        let number = rt.block_on(async {
            tokio::select! {
                _ = int.recv() => Signal::SIGINT,
                _ = term.recv() => Signal::SIGTERM,
                _ = hup.recv() => Signal::SIGHUP,
            }
        });
        for target in std::mem::take(&mut *children()) {
            let (pid, signal) = match target {
                Target::Child(pid) => (pid, Signal::SIGTERM),
                Target::Killed(pid) => (pid, Signal::SIGKILL),
            };
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
        std::process::exit(128 + number as i32);
    });
}

/// Spawns `cmd` as a child to stop on a signal. The set is held across the spawn, so a signal
/// cannot fall between the two.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut children = children();
    let child = cmd.spawn()?;
    children.insert(Target::Child(child.id()));
    Ok(child)
}

/// `child` was waited for: its pid may be another process's from now on.
pub fn reaped(child: &Child) {
    children().remove(&Target::Child(child.id()));
}

/// The process `pid`, started by someone else, gets `SIGKILL` on a signal, until [`forget`]: the
/// real scenario's `unshare --kill-child`, whose death kills the OpenClaw gateway in its PID
/// namespace. A `SIGTERM` would not do: `unshare` ignores it while it waits, and the gateway,
/// PID 1 of its namespace, ignores every signal it has no handler for yet (one sent during its
/// start-up was lost, 2026-11-28).
pub fn kill_on_signal(pid: u32) {
    children().insert(Target::Killed(pid));
}

/// `pid` is being stopped by its owner: its number may be another's from now on.
pub fn forget(pid: u32) {
    children().remove(&Target::Killed(pid));
}

/// Kills `child` (`SIGKILL`) and waits for it: what the bench's handles do when dropped.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    reaped(child);
}
