//! Storage: one diesel `MultiConnection` over SQLite and PostgreSQL, an r2d2 pool, embedded
//! migrations for both backends. Blocking: call it from `web::block`/`spawn_blocking`.

pub mod agents;
pub mod alerts;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod budgets;
pub mod cluster;
pub mod config_profiles;
pub mod config_rollouts;
pub mod cron;
pub mod cron_declarations;
pub mod disk;
pub mod gateways;
pub mod health;
pub mod hosts;
pub mod managed;
pub mod operations;
pub mod rotations;
pub mod schema;
pub mod schema_check;
pub mod secrets;
pub mod spawns;
pub mod spend;
pub mod usage;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

diesel::define_sql_function! {
    /// SQL's `lower`, the same on both backends (a case-blind name search, a host compared
    /// without case).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

pub type Pool = r2d2::Pool<ConnManager>;
pub type PooledConn = r2d2::PooledConnection<ConnManager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url `{0}` is not supported; use sqlite://PATH or postgres://…")]
    BadUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error(
        "the SQLite database's directory {} does not exist: create it, or correct database.url",
        .0.display()
    )]
    SqliteDirectory(PathBuf),
    #[error("migrations failed: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Query(#[source] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(#[source] r2d2::PoolError),
    /// Stored data that cannot be what it claims to be.
    #[error("stored data is damaged: {0}")]
    Damaged(&'static str),
    /// The blocking pool running a storage call went away.
    #[error("the storage call was cancelled: {0}")]
    Cancelled(#[source] actix_web::error::BlockingError),
    /// A storage call ([`Store::call`]) did not finish.
    #[error("the storage call did not finish: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => DbError::NotFound,
            other => DbError::Query(other),
        }
    }
}

impl From<r2d2::PoolError> for DbError {
    fn from(err: r2d2::PoolError) -> Self {
        DbError::Pool(err)
    }
}

/// Which backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::BadUrl(url.to_owned()));
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_owned()))
        } else {
            Err(DbError::BadUrl(redact_url(url)))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// For logs: the URL without a password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(path) => format!("sqlite://{}", path.display()),
            Backend::Postgres(url) => redact_url(url),
        }
    }
}

/// Removes a password from `scheme://user:password@host/…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[unparseable url]".into();
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:********@{host}"),
            // No password: nothing to hide, and stars would say there is one.
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_owned(),
    };
    // libpq also takes the password as a parameter: `?password=…`.
    let rest = match rest.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=********"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

/// Pragmas applied to every SQLite connection: WAL so readers never block the writer, foreign
/// keys on, a busy timeout instead of instant SQLITE_BUSY, and full sync so an acknowledged
/// write survives power loss.
/// `busy_timeout` comes first so that the pool's connections, opened in parallel, wait for each
/// other while the first one switches the file to WAL.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";

#[derive(Debug, Clone)]
pub struct ConnManager {
    backend: Backend,
}

impl ManageConnection for ConnManager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        match &self.backend {
            Backend::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres(url) => PgConnection::establish(url)
                .map(DbConn::Postgres)
                // libpq's messages never contain the password.
                .map_err(|e| DbError::Connect(e.to_string())),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    /// A connection given back during a panic, or one whose transaction manager is left in a
    /// broken state (a failed rollback, an unfinished transaction), is dropped rather than
    /// reused — as diesel's own pool manager does.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        std::thread::panicking()
            || match conn {
                DbConn::Sqlite(c) => c.is_broken(),
                DbConn::Postgres(c) => c.is_broken(),
            }
    }
}

/// Opens the pool and checks one connection. A SQLite file's directory must exist: a
/// mistyped path fails naming the directory, rather than creating directories where nobody
/// looks for the fleet's data (the state directory, the default's home, is made at start).
pub fn open(url: &str, pool_size: u32) -> Result<(Pool, Backend), DbError> {
    let backend = Backend::from_url(url)?;
    if let Backend::Sqlite(path) = &backend {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(DbError::SqliteDirectory(parent.to_owned()));
        }
        disk::record_location(path);
    }
    let size = match (pool_size, &backend) {
        (0, Backend::Sqlite(_)) => 4,
        (0, Backend::Postgres(_)) => 8,
        (n, _) => n,
    };
    let manager = ConnManager {
        backend: backend.clone(),
    };
    // One connection first, alone: it creates a new SQLite file and switches it to WAL before
    // the pool opens its connections in parallel (which raced into "database is locked"), and a
    // corrupt, truncated or unreachable database fails here with one line instead of r2d2
    // retrying for 10 s and logging every attempt.
    let mut first = manager.connect()?;
    let check = match &backend {
        // Reads the schema: a file that is not a database fails here, not at the first query.
        Backend::Sqlite(_) => "SELECT count(*) FROM sqlite_master",
        Backend::Postgres(_) => "SELECT 1",
    };
    first
        .batch_execute(check)
        .map_err(|e| DbError::Connect(format!("{} is not usable: {e}", backend.describe())))?;
    if let Backend::Sqlite(path) = &backend {
        restrict_sqlite_files(path)?;
    }
    drop(first);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|e| DbError::Connect(e.to_string()))?;
    Ok((pool, backend))
}

/// The database file and its WAL and shared-memory files: owner only (they hold encrypted
/// tokens, API key hashes and the audit log).
fn restrict_sqlite_files(path: &std::path::Path) -> Result<(), DbError> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| DbError::Connect(format!("{}: {e}", file.display())))?;
        }
    }
    Ok(())
}

/// At a clean stop: moves everything from SQLite's WAL into the database file, so that a copy
/// of the `.db` file alone is a complete backup. Nothing to do for PostgreSQL.
pub fn checkpoint(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    match &mut *conn {
        DbConn::Sqlite(c) => c
            .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(DbError::from),
        DbConn::Postgres(_) => Ok(()),
    }
}

/// SQLite's own check of a whole database file, on a connection of its own: `ok`, or the
/// first of what it found.
pub fn sqlite_integrity_check(conn: &mut diesel::SqliteConnection) -> Result<String, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let found: Vec<Found> = diesel::sql_query("PRAGMA integrity_check(1)").load(conn)?;
    Ok(found
        .into_iter()
        .next()
        .map_or_else(|| "no answer".to_owned(), |f| f.integrity_check))
}

/// Readiness: a write that changes nothing, so a read-only or full database reads as not
/// ready (a plain `SELECT 1` answered ready while every write failed).
pub fn check_writable(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    conn.batch_execute("UPDATE secrets SET updated_at = updated_at WHERE name = 'master_key_check'")
        .map_err(DbError::from)
}

/// The advisory lock key of a shared database's setup: "gs-setup" as a number.
const SETUP_LOCK_KEY: i64 = 0x6773_2d73_6574_7570;

/// How long an instance waits for another one's setup (migrations included) of a shared
/// database before it gives up with a clear error.
const SETUP_LOCK_WAIT: &str = "120s";

/// Held while an instance sets up a shared PostgreSQL database — migrations, the master key's
/// check value, the first admin key, the device identity — so that instances started together
/// on an empty database do it one after the other: the first sets up, the others find it done.
/// Without it two concurrent `CREATE TABLE`s of the first migration collided in PostgreSQL's
/// catalogue (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`) and
/// one instance died. A session-level advisory lock on a connection of its own (not the pool's:
/// a pool of one would wait for itself), released when dropped or when the process dies.
/// Nothing to do on SQLite: the state directory's lock already allows one daemon per file.
pub struct SetupLock(Option<PgConnection>);

impl SetupLock {
    pub fn take(backend: &Backend) -> Result<SetupLock, DbError> {
        let Backend::Postgres(url) = backend else {
            return Ok(SetupLock(None));
        };
        let mut conn = PgConnection::establish(url).map_err(|e| DbError::Connect(e.to_string()))?;
        conn.batch_execute(&format!(
            "SET lock_timeout = '{SETUP_LOCK_WAIT}'; SELECT pg_advisory_lock({SETUP_LOCK_KEY}); \
             SET lock_timeout = 0"
        ))
        .map_err(|e| {
            DbError::Migrate(format!(
                "another instance has been setting up this database for over {SETUP_LOCK_WAIT} \
                 (its advisory lock {SETUP_LOCK_KEY} is held): {e}"
            ))
        })?;
        Ok(SetupLock(Some(conn)))
    }
}

impl Drop for SetupLock {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            // Closing the connection releases it too; unlocking first says so at once.
            let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({SETUP_LOCK_KEY})"));
        }
    }
}

/// Runs pending migrations; returns how many ran. On a shared database, hold a [`SetupLock`].
pub fn migrate(pool: &Pool) -> Result<usize, DbError> {
    let mut conn = pool.get()?;
    let ran = match &mut *conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    ran.map_err(|e| DbError::Migrate(e.to_string()))
}

/// The first statement of a transaction that reads and then writes: on SQLite it takes the
/// write lock at once. A deferred transaction that reads first and writes later fails with
/// SQLITE_BUSY as soon as another connection committed a write in between (the writer thread
/// does, all the time) — `busy_timeout` cannot help, the read snapshot is stale. On PostgreSQL
/// it does nothing.
pub fn lock_for_write(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => c.batch_execute("UPDATE secrets SET updated_at = updated_at WHERE 0"),
        DbConn::Postgres(_) => Ok(()),
    }
}

/// A transaction that writes: [`lock_for_write`] first, then `f`. Every write transaction in
/// `db/` goes through here, so none can read a snapshot another connection (the writer
/// thread, the `keys` command beside a running daemon) makes stale before it writes.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|c| {
        lock_for_write(c)?;
        f(c)
    })
}

/// Cheap liveness query for `/readyz`.
pub fn ping(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}

/// Unix seconds now (one clock for the whole daemon).
pub use gateway_supervisor_actors::unix_now;

/// Whether a diesel error is a unique-constraint violation (same meaning on both backends).
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A migrated SQLite database in a temporary directory.
    pub fn sqlite_pool() -> (Pool, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (pool, _) = open(&url, 2).unwrap();
        migrate(&pool).unwrap();
        (pool, dir)
    }

    /// A store over [`sqlite_pool`], with a fixed key.
    pub fn sqlite_store() -> (Store, tempfile::TempDir) {
        let (pool, dir) = sqlite_pool();
        let key = secrecy::SecretBox::new(Box::new([7u8; 32]));
        let cipher = std::sync::Arc::new(crate::secrets::Cipher::new(&key));
        (Store { pool, cipher }, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_left_inside_a_transaction_is_not_reused() {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let dir = tempfile::tempdir().unwrap();
        let manager = ConnManager {
            backend: Backend::Sqlite(dir.path().join("t.db")),
        };
        let mut conn = manager.connect().unwrap();
        assert!(!manager.has_broken(&mut conn), "a fresh connection is fine");
        let DbConn::Sqlite(inner) = &mut conn else {
            unreachable!()
        };
        AnsiTransactionManager::begin_transaction(inner).unwrap();
        assert!(
            manager.has_broken(&mut conn),
            "an open transaction breaks it"
        );
    }

    #[test]
    fn url_selects_backend() {
        assert_eq!(
            Backend::from_url("sqlite://./data/x.db").unwrap(),
            Backend::Sqlite(PathBuf::from("./data/x.db"))
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap().name(),
            "postgres"
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap().name(),
            "postgres"
        );
        assert!(Backend::from_url("mysql://x").is_err());
        assert!(Backend::from_url("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/gs"),
            "postgres://app:********@db:5432/gs"
        );
        // Without a password nothing is starred; a password parameter is.
        assert_eq!(
            redact_url("postgres://app@db:5432/gs"),
            "postgres://app@db:5432/gs"
        );
        assert_eq!(
            redact_url("postgres:///gs?host=/run/pg&password=s3cret&user=app"),
            "postgres:///gs?host=/run/pg&password=********&user=app"
        );
        assert_eq!(
            redact_url("postgres://app:p@ss@db/gs"),
            "postgres://app:********@db/gs"
        );
        let err = Backend::from_url("mysql://app:s3cret@db/gs")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn migration_folders_have_identical_names() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("sqlite"), names("postgres"));
    }

    #[test]
    fn sqlite_migrations_run_revert_and_rerun() {
        let (pool, _dir) = test_support::sqlite_pool();
        let mut conn = pool.get().unwrap();
        let DbConn::Sqlite(c) = &mut *conn else {
            unreachable!()
        };
        let all = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .count();
        c.revert_all_migrations(SQLITE_MIGRATIONS).unwrap();
        assert_eq!(
            c.run_pending_migrations(SQLITE_MIGRATIONS).unwrap().len(),
            all
        );
        let mode: Vec<String> = diesel::sql_query("PRAGMA journal_mode")
            .load::<JournalMode>(c)
            .unwrap()
            .into_iter()
            .map(|r| r.journal_mode)
            .collect();
        assert_eq!(mode, vec!["wal".to_string()]);
    }

    #[test]
    fn a_read_then_write_transaction_survives_a_write_committed_in_between() {
        let (pool, _dir) = test_support::sqlite_pool();
        let (mut a, mut b) = (pool.get().unwrap(), pool.get().unwrap());
        b.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        let write = "INSERT INTO cluster_instances (instance_id) VALUES";
        // Deferred: read, another connection commits, then write — refused (the pitfall).
        let deferred = a.transaction::<_, diesel::result::Error, _>(|a| {
            a.batch_execute("SELECT count(*) FROM agents")?;
            b.batch_execute(&format!("{write} ('b1')")).unwrap();
            a.batch_execute(&format!("{write} ('a1')"))
        });
        assert!(deferred.is_err(), "a stale read snapshot cannot write");
        // With the write lock taken first, the other writer waits its turn and this one
        // writes.
        let locked = a.transaction::<_, diesel::result::Error, _>(|a| {
            lock_for_write(a)?;
            a.batch_execute("SELECT count(*) FROM agents")?;
            assert!(
                b.batch_execute(&format!("{write} ('b2')")).is_err(),
                "the lock is held"
            );
            a.batch_execute(&format!("{write} ('a2')"))
        });
        assert!(locked.is_ok(), "{locked:?}");
    }

    #[derive(QueryableByName)]
    struct JournalMode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
}

/// The daemon's storage: the pool plus the cipher for secrets at rest.
#[derive(Clone)]
pub struct Store {
    pub pool: Pool,
    pub cipher: std::sync::Arc<crate::secrets::Cipher>,
}

impl Store {
    pub fn conn(&self) -> Result<PooledConn, DbError> {
        Ok(self.pool.get()?)
    }

    /// The one async hop into the store: `f` runs on the blocking pool (a connection's
    /// checkout and its queries block) and its result comes back; a call that did not finish
    /// (its thread panicked, or the runtime is stopping) is [`DbError::Interrupted`]. Every
    /// layer calls this and maps [`DbError`] into its own error once.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| E::from(DbError::Interrupted(e)))?
    }
}
