//! One daemon per state directory. `serve` holds an exclusive lock on `<state>/daemon.lock`
//! (its pid written inside) for as long as it runs; a second daemon on the same directory
//! refuses to start and names the holder, instead of overwriting `http.addr` and writing the
//! same database. The lock is the kernel's (`flock`): it goes with the process, so a crashed
//! daemon never leaves a stale one behind. `restore` takes it too (a database is never replaced
//! under a running daemon); the other commands (keys, migrations, backup) do not: an operator
//! runs them beside the daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "daemon.lock";

/// Held while the daemon runs; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gateway-supervisor (pid {pid}) is running on the state directory {}; stop it, or give this one its own state directory (--state-dir)",
        dir.display()
    )]
    Held { dir: PathBuf, pid: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the state directory's lock, or says who holds it.
pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            Ok(StateLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.take(32).read_to_string(&mut pid);
            let pid = pid.trim();
            Err(LockError::Held {
                dir: dir.to_owned(),
                pid: if pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
                    pid.to_owned()
                } else {
                    "unknown".to_owned()
                },
            })
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("--state-dir"), "{message}");
        drop(first);
        assert!(acquire(dir.path()).is_ok(), "released with its holder");
    }
}
