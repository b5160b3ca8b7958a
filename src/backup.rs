//! `gateway-supervisor backup <DIR>`: a copy of the database an operator can restore, taken
//! while the daemon runs; `gateway-supervisor restore <FILE>` puts one back, with the daemon
//! stopped (it takes the daemon's state lock) and the database it replaces kept beside it.
//!
//! SQLite: `VACUUM INTO` writes a consistent snapshot (one read transaction; the daemon keeps
//! writing meanwhile) as a new file, mode 0600, in `DIR`. The copy is then opened on its own
//! and proven usable: `PRAGMA integrity_check` answers `ok` and the master key in use decrypts
//! its key check, so the backup can be restored with the key the operator has today. The key
//! itself is never put beside the data: a backup that carried its key would hand every
//! gateway's token to whoever reads the backup; the outcome names where the key is, for the
//! operator to keep elsewhere. PostgreSQL: the database is the operator's, and so is its
//! backup tool; the outcome is the `pg_dump` / `pg_restore` recipe, the password masked.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use diesel::Connection;
use diesel::connection::SimpleConnection;

use crate::config::Config;
use crate::db::{self, Backend, DbError};
use crate::secrets::{Cipher, KeySource, SecretsError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}: nothing to back up")]
    NoDatabase(PathBuf),
    #[error("backup directory {path}: {reason}")]
    Directory { path: PathBuf, reason: String },
    #[error("{0} and 98 files after it already exist: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("writing the snapshot to {path}")]
    Snapshot {
        path: PathBuf,
        #[source]
        cause: DbError,
    },
    #[error("the copy {path} failed its check ({found}); it was removed")]
    Corrupt { path: PathBuf, found: String },
    #[error(
        "the master key in use does not decrypt the copy {0}: it was removed (the key and \
         the database do not belong together; see `gateway-supervisor check-config`)"
    )]
    WrongKey(PathBuf),
    #[error(
        "the copy {path} holds what this program's migrations do not make ({objects}); it is \
         refused: SQLite would run it inside the daemon"
    )]
    Foreign { path: PathBuf, objects: String },
    #[error(
        "restore works on SQLite; a PostgreSQL database is restored with pg_restore (`gateway-supervisor backup` prints the command)"
    )]
    NotSqlite,
    #[error("{0} is not a file")]
    NoBackup(PathBuf),
    #[error("restoring into {path}: {reason}")]
    Replace { path: PathBuf, reason: String },
    #[error(transparent)]
    Lock(#[from] crate::state_lock::LockError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a backup produced.
#[derive(Debug)]
pub enum Backup {
    /// A checked copy of the SQLite database, and where the key that reads it comes from.
    Sqlite {
        file: PathBuf,
        bytes: u64,
        key: KeySource,
    },
    /// The commands that back up and restore a PostgreSQL database (password masked).
    Postgres { dump: String, restore: String },
}

/// Takes the backup `cfg`'s database into `dir`, stamped with `now`.
pub fn run(cfg: &Config, dir: &Path, now: SystemTime) -> Result<Backup, BackupError> {
    let stamp = stamp(now);
    match Backend::from_url(&cfg.database.url)? {
        Backend::Postgres(url) => {
            let url = db::redact_url(&url);
            let file = dir.join(format!("supervisor-{stamp}.dump"));
            Ok(Backup::Postgres {
                dump: format!(
                    "pg_dump --format=custom --file '{}' '{url}'",
                    file.display()
                ),
                restore: format!(
                    "pg_restore --clean --if-exists --dbname '{url}' '{}'",
                    file.display()
                ),
            })
        }
        Backend::Sqlite(source) => {
            if !source.is_file() {
                return Err(BackupError::NoDatabase(source));
            }
            let (cipher, key_source) = key_in_use(cfg)?;
            prepare_dir(dir)?;
            let file = free_name(dir, &stamp)?;
            snapshot(&cfg.database.url, &file)?;
            if let Err(e) = check(&file, &cipher) {
                let _ = std::fs::remove_file(&file);
                return Err(e);
            }
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            Ok(Backup::Sqlite {
                file,
                bytes,
                key: key_source,
            })
        }
    }
}

/// Puts the backup `from` in place of `cfg`'s SQLite database, after the same checks a backup
/// gets, with no daemon running on the state directory. The database it replaces is kept as
/// `<database>.before-restore-<stamp>` (its WAL folded in first), never deleted. Returns where
/// that copy is, if there was a database to replace.
pub fn restore(cfg: &Config, from: &Path, now: SystemTime) -> Result<Option<PathBuf>, BackupError> {
    let Backend::Sqlite(target) = Backend::from_url(&cfg.database.url)? else {
        return Err(BackupError::NotSqlite);
    };
    if !from.is_file() {
        return Err(BackupError::NoBackup(from.to_owned()));
    }
    let _lock = crate::state_lock::acquire(&cfg.state.dir)?;
    let (cipher, _) = key_in_use(cfg)?;
    check(from, &cipher)?;
    let fail = |reason: String| BackupError::Replace {
        path: target.clone(),
        reason,
    };
    let staged = PathBuf::from(format!("{}.restoring", target.display()));
    std::fs::copy(from, &staged).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    let kept = if target.exists() {
        // Fold the WAL into the file it belongs to, so the kept copy is whole.
        let mut conn = diesel::SqliteConnection::establish(&target.display().to_string())
            .map_err(|e| fail(e.to_string()))?;
        conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| fail(e.to_string()))?;
        drop(conn);
        let kept = PathBuf::from(format!(
            "{}.before-restore-{}",
            target.display(),
            stamp(now)
        ));
        std::fs::rename(&target, &kept).map_err(|e| fail(e.to_string()))?;
        Some(kept)
    } else {
        None
    };
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::rename(&staged, &target).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(kept)
}

/// The master key the daemon would use now, and where it comes from. Never a new one: a
/// database with encrypted data needs the key it was made with.
fn key_in_use(cfg: &Config) -> Result<(Cipher, KeySource), BackupError> {
    let (key, source) = crate::daemon::master_key(cfg, false)?;
    Ok((Cipher::new(&key), source))
}

/// `20261123T230500Z`: sorts by time, no characters a shell or a file system minds.
fn stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "")
}

/// `supervisor-<stamp>.db`, or `-2`, `-3`… after it when backups come within one second.
fn free_name(dir: &Path, stamp: &str) -> Result<PathBuf, BackupError> {
    let first = dir.join(format!("supervisor-{stamp}.db"));
    std::iter::once(first.clone())
        .chain((2..100).map(|n| dir.join(format!("supervisor-{stamp}-{n}.db"))))
        .find(|f| !f.exists())
        .ok_or(BackupError::Exists(first))
}

fn prepare_dir(dir: &Path) -> Result<(), BackupError> {
    let err = |e: std::io::Error| BackupError::Directory {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    if !dir.is_dir() {
        return Err(BackupError::Directory {
            path: dir.to_owned(),
            reason: "not a directory".into(),
        });
    }
    Ok(())
}

/// One snapshot of the live database into `file`, readable by its owner only.
fn snapshot(url: &str, file: &Path) -> Result<(), BackupError> {
    let failed = |cause: DbError| BackupError::Snapshot {
        path: file.to_owned(),
        cause,
    };
    let (pool, _) = db::open(url, 1).map_err(failed)?;
    let mut conn = pool.get().map_err(|e| failed(e.into()))?;
    // A string literal: single quotes doubled. The path is the operator's own argument.
    let target = file.display().to_string().replace('\'', "''");
    conn.batch_execute(&format!("VACUUM INTO '{target}'"))
        .map_err(|e| failed(e.into()))?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        BackupError::Directory {
            path: file.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// The copy reads as a whole database, holds only what the migrations make
/// ([`db::schema_check`]), and the key in use decrypts it. On a plain connection,
/// closed when done: the copy stays one file, in the journal mode `VACUUM INTO` gave it.
fn check(file: &Path, cipher: &Cipher) -> Result<(), BackupError> {
    let mut conn = diesel::SqliteConnection::establish(&file.display().to_string())
        .map_err(|e| DbError::Connect(format!("{}: {e}", file.display())))?;
    let found = db::sqlite_integrity_check(&mut conn)?;
    if found != "ok" {
        return Err(BackupError::Corrupt {
            path: file.to_owned(),
            found: gateway_supervisor_actors::bounded::text(&found, 200),
        });
    }
    let foreign = db::schema_check::foreign_objects(&mut conn)?;
    if !foreign.is_empty() {
        return Err(BackupError::Foreign {
            path: file.to_owned(),
            objects: foreign.join(", "),
        });
    }
    match db::secrets::key_reads_sqlite_file(&mut conn, cipher) {
        Ok(()) => Ok(()),
        Err(DbError::Secrets(SecretsError::Decrypt)) => Err(BackupError::WrongKey(file.to_owned())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_utc_second_without_separators() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_474_000);
        assert_eq!(stamp(t), "20261123T224640Z");
    }

    #[test]
    fn backups_within_one_second_get_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = free_name(dir.path(), "S").unwrap();
        assert!(first.ends_with("supervisor-S.db"));
        std::fs::write(&first, b"x").unwrap();
        let second = free_name(dir.path(), "S").unwrap();
        assert!(second.ends_with("supervisor-S-2.db"), "{second:?}");
    }
}
