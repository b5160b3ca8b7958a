//! A `gs-bench` stopped by a signal leaves nothing running. Its children (the daemon, the fake
//! hosts, the static server) are stopped in `Drop`, which a signal skips: a terminal's Ctrl-C
//! reached them anyway (one process group), but a `kill` or a `timeout` of `gs-bench` alone left
//! a daemon and thousands of fake gateways running. So the signals that stop a run are taken by
//! a thread of their own, which sends every child still running `SIGTERM` and exits as the
//! signal would have (128 + its number).

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

/// The children spawned through [`spawn`] and not yet waited for, by pid.
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn children() -> MutexGuard<'static, BTreeSet<u32>> {
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
        for pid in std::mem::take(&mut *children()) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
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
    children.insert(child.id());
    Ok(child)
}

/// `child` was waited for: its pid may be another process's from now on.
pub fn reaped(child: &Child) {
    children().remove(&child.id());
}

/// Kills `child` (`SIGKILL`) and waits for it: what the bench's handles do when dropped.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    reaped(child);
}
