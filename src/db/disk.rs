//! A full disk under the database (issue 61). SQLite answers a write it cannot store with
//! `SQLITE_FULL` ("database or disk is full") and keeps every committed transaction: reads go
//! on, and writes succeed again once space is freed, with no restart. So the daemon keeps
//! serving, refuses each write with a 503 that says so (`storage_full`), and logs where the
//! database is and how much space is left there, which is what an operator needs to act.
//! The database's location is process-wide (one database per daemon), recorded when it opens.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// SQLite's words for `SQLITE_FULL` (`sqlite3_errstr`), as diesel hands them on. Every layer
/// keeps its cause's text (a `DbError::Query`, the gateway store's `StoreError::backend`), so
/// the HTTP layer tells a full disk from other storage failures by them
/// (`ApiError::storage`).
const SQLITE_FULL: &str = "database or disk is full";

static LOCATION: OnceLock<PathBuf> = OnceLock::new();

/// The SQLite database file this process uses (set once, when it opens).
pub(super) fn record_location(path: &Path) {
    let _ = LOCATION.set(path.to_owned());
}

/// Whether an error's text, through any layer, is a full disk's.
pub fn is_full(cause: &str) -> bool {
    cause.contains(SQLITE_FULL)
}

/// Where the database is and the bytes free to an unprivileged writer there now, for the log
/// line of a refused write (`None`: not a file database, or the filesystem cannot be asked).
pub fn location_and_free() -> (Option<String>, Option<u64>) {
    let Some(path) = LOCATION.get() else {
        return (None, None);
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let free = nix::sys::statvfs::statvfs(dir)
        .ok()
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()));
    (Some(path.display().to_string()), free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_s_full_answer_is_recognised_through_the_layers_that_wrap_it() {
        assert!(is_full("database error: database or disk is full"));
        assert!(is_full(
            "storage failed: storage failed: database or disk is full"
        ));
        assert!(!is_full("storage failed: database is locked"));
    }
}
