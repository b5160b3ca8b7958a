//! Whether a SQLite file holds only what this program's migrations make. A restored backup is
//! opened by the daemon, and SQLite runs whatever its schema holds: a trigger added to a copy
//! with plain SQL fired inside the running daemon after a restore. So a copy is compared,
//! object by object (type, name and the SQL that made it), with an empty database migrated
//! in memory to the same migrations the copy records; anything else — a trigger, a view, a
//! table, an index, a table whose definition was changed — is named and the copy refused.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::MigrationHarness;

use super::{DbError, SQLITE_MIGRATIONS};

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Object {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    sql: Option<String>,
}

/// Every object of a schema but SQLite's own (`sqlite_%`: its sequences, statistics and the
/// indexes it makes for constraints, which the SQL of their tables already says) and diesel's
/// table of applied migrations (read for what it holds; a trigger on it is an object too).
fn objects(conn: &mut SqliteConnection) -> Result<Vec<Object>, DbError> {
    let mut found: Vec<Object> = diesel::sql_query(
        "SELECT type AS kind, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
         AND NOT (type = 'table' AND name = '__diesel_schema_migrations')",
    )
    .load(conn)?;
    found.sort();
    Ok(found)
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// The objects of the file on `conn` that this program's migrations do not make, each as
/// `<type> <name>` (empty: the schema is ours). A migration the file records that this
/// program does not know is named too.
pub fn foreign_objects(conn: &mut SqliteConnection) -> Result<Vec<String>, DbError> {
    let recorded: Vec<String> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load::<Version>(conn)
        .map_err(not_ours)?
        .into_iter()
        .map(|v| v.version)
        .collect();
    let known = MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS)
        .map_err(|e| DbError::Migrate(e.to_string()))?;
    let mut foreign: Vec<String> = recorded
        .iter()
        .filter(|v| !known.iter().any(|m| m.name().version().to_string() == **v))
        .map(|v| format!("migration {}", bounded(v)))
        .collect();
    let mut reference =
        SqliteConnection::establish(":memory:").map_err(|e| DbError::Connect(e.to_string()))?;
    // Where `run_migration` records each one (as diesel's own setup makes it).
    reference.batch_execute(
        "PRAGMA foreign_keys = ON; CREATE TABLE __diesel_schema_migrations (\
         version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )?;
    for m in known
        .iter()
        .filter(|m| recorded.contains(&m.name().version().to_string()))
    {
        reference
            .run_migration(&**m)
            .map_err(|e| DbError::Migrate(e.to_string()))?;
    }
    let ours = objects(&mut reference)?;
    foreign.extend(
        objects(conn)?
            .into_iter()
            .filter(|o| !ours.contains(o))
            .map(|o| format!("{} {}", bounded(&o.kind), bounded(&o.name))),
    );
    Ok(foreign)
}

fn bounded(s: &str) -> String {
    gateway_supervisor_actors::bounded::text(s, 64)
}

/// A file with no migrations table is not one of ours.
fn not_ours(_: diesel::result::Error) -> DbError {
    DbError::Damaged("it has no migrations table (not a gateway-supervisor database)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> (SqliteConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
        (conn, dir)
    }

    #[test]
    fn a_migrated_database_is_all_ours_at_every_migration() {
        let (mut conn, _dir) = migrated();
        assert_eq!(foreign_objects(&mut conn).unwrap(), Vec::<String>::new());
        // An older backup (fewer migrations) is ours too.
        conn.revert_last_migration(SQLITE_MIGRATIONS).unwrap();
        conn.revert_last_migration(SQLITE_MIGRATIONS).unwrap();
        assert_eq!(foreign_objects(&mut conn).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn triggers_views_tables_and_changed_tables_are_named() {
        let (mut conn, _dir) = migrated();
        conn.batch_execute(
            "CREATE TRIGGER leak AFTER UPDATE ON gateways BEGIN \
               UPDATE gateways SET host = '203.0.113.9'; END; \
             CREATE VIEW peek AS SELECT * FROM gateways; \
             CREATE TABLE extra (x INTEGER); \
             CREATE INDEX gateways_by_host ON gateways (host); \
             ALTER TABLE api_keys ADD COLUMN note TEXT; \
             INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
        )
        .unwrap();
        let mut found = foreign_objects(&mut conn).unwrap();
        found.sort();
        assert_eq!(
            found,
            [
                "index gateways_by_host",
                "migration 29990101000000",
                "table api_keys",
                "table extra",
                "trigger leak",
                "view peek"
            ]
        );
    }
}
