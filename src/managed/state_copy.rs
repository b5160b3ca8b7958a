//! Copies of a managed gateway's state for an upgrade: a consistent copy of its state database
//! while it runs (for the target release's `database preflight`: SQLite's `VACUUM INTO`, one
//! read transaction, WAL included — a plain file copy of a WAL database can miss committed
//! pages), and a snapshot of the whole state folder once it stopped, put back by a rollback
//! (a target that started may have migrated the state, and the previous release then refuses
//! it with exit 78). Blocking.

use std::path::{Path, PathBuf};

use diesel::{Connection, RunQueryDsl, SqliteConnection};

/// The state database under a gateway's `OPENCLAW_STATE_DIR` (2026.9.6).
pub fn state_db(state_dir: &Path) -> PathBuf {
    state_dir.join("state/openclaw.sqlite")
}

/// A consistent copy of SQLite database `db` at `into` (which must not exist), read-only.
pub fn consistent_copy(db: &Path, into: &Path) -> Result<(), String> {
    let uri = format!("file:{}?mode=ro", db.display());
    let mut conn =
        SqliteConnection::establish(&uri).map_err(|e| format!("{}: {e}", db.display()))?;
    // A string literal: single quotes doubled.
    let target = into.display().to_string().replace('\'', "''");
    diesel::sql_query(format!("VACUUM INTO '{target}'"))
        .execute(&mut conn)
        .map(|_| ())
        .map_err(|e| format!("copying {}: {e}", db.display()))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            bytes += copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else {
            bytes += std::fs::copy(&src, &dst)?;
        }
    }
    Ok(bytes)
}

/// Copies the (stopped) gateway's state folder to `into`, replacing an older snapshot; the
/// bytes copied.
pub fn snapshot(state_dir: &Path, into: &Path) -> Result<u64, String> {
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(|e| format!("{}: {e}", into.display()))?;
    }
    copy_tree(state_dir, into).map_err(|e| format!("snapshot of {}: {e}", state_dir.display()))
}

/// Puts `snapshot` back as the state folder; the state it replaces is kept beside it
/// (`state.rolled-back-<ms>`), for whoever wants to see what the target did.
pub fn restore(snapshot: &Path, state_dir: &Path, now_ms: i64) -> Result<(), String> {
    let mut aside = state_dir.as_os_str().to_owned();
    aside.push(format!(".rolled-back-{now_ms}"));
    if state_dir.exists() {
        std::fs::rename(state_dir, &aside).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    }
    copy_tree(snapshot, state_dir)
        .map(|_| ())
        .map_err(|e| format!("restoring {}: {e}", state_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    /// A WAL database with rows only in its WAL (no checkpoint), held open like a live gateway
    /// holds it.
    fn live_wal_db(dir: &Path) -> (PathBuf, SqliteConnection) {
        let db = dir.join("state/openclaw.sqlite");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let mut conn = SqliteConnection::establish(&db.display().to_string()).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('committed-in-wal');",
        )
        .unwrap();
        (db, conn)
    }

    fn rows(db: &Path) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = SqliteConnection::establish(&db.display().to_string()).unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<N>(&mut conn)
            .unwrap()
            .n
    }

    #[test]
    fn a_running_database_is_copied_with_what_only_its_wal_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _live) = live_wal_db(dir.path());
        let copy = dir.path().join("copy.sqlite");
        consistent_copy(&db, &copy).unwrap();
        assert_eq!(rows(&copy), 1);
        assert!(
            consistent_copy(&dir.path().join("missing.sqlite"), &dir.path().join("c2")).is_err()
        );
    }

    #[test]
    fn a_snapshot_put_back_replaces_what_the_target_wrote_and_keeps_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (db, live) = live_wal_db(&state);
        drop(live); // stopped
        std::fs::write(state.join("agent.json"), b"before").unwrap();
        let snap = dir.path().join("snapshot");
        assert!(snapshot(&state, &snap).unwrap() > 0);
        // The target migrates.
        std::fs::write(state.join("agent.json"), b"migrated").unwrap();
        let mut conn = SqliteConnection::establish(&db.display().to_string()).unwrap();
        conn.batch_execute("INSERT INTO t VALUES ('by the target')")
            .unwrap();
        drop(conn);
        assert_eq!(rows(&db), 2);
        restore(&snap, &state, 7).unwrap();
        assert_eq!(rows(&db), 1);
        assert_eq!(std::fs::read(state.join("agent.json")).unwrap(), b"before");
        assert_eq!(
            std::fs::read(dir.path().join("state.rolled-back-7/agent.json")).unwrap(),
            b"migrated"
        );
    }
}
