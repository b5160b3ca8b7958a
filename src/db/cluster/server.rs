//! Which PostgreSQL server answers: its cluster's system identifier and its WAL timeline, read
//! at every heartbeat. A physical replica shares the primary's system identifier, and its
//! promotion starts a new timeline, so a failover (Patroni's, or `pg_promote()` by hand behind
//! a multi-host URL with `target_session_attrs=read-write`) shows as a new timeline, and a
//! different database restored under the same URL as a new system identifier. Both are
//! readable by any role (PostgreSQL 15: `pg_control_system()`, `pg_current_wal_lsn()`), cost
//! one index-free read a round, and need no superuser. docs/design.md, *Cluster*.

use diesel::prelude::*;
use diesel::sql_types::Text;

/// The server a heartbeat went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `pg_control_system().system_identifier`: one value for a primary and its physical
    /// replicas, another for any other database cluster.
    pub system: String,
    /// The WAL timeline it writes: grows by one at every promotion.
    pub timeline: u32,
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "system {} timeline {}", self.system, self.timeline)
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    system: String,
    #[diesel(sql_type = Text)]
    wal: String,
}

/// The WAL file name's first 8 hex digits are its timeline (`000000020000000000000003`).
fn timeline_of(wal: &str) -> Option<u32> {
    u32::from_str_radix(wal.get(..8)?, 16).ok()
}

/// The identity of the server `c` is connected to (a primary: `pg_current_wal_lsn` is refused
/// on a standby, as the heartbeat's write would be).
pub(super) fn read(c: &mut diesel::pg::PgConnection) -> QueryResult<ServerIdentity> {
    let row: Row = diesel::sql_query(
        "SELECT system_identifier::text AS system, pg_walfile_name(pg_current_wal_lsn()) AS wal \
         FROM pg_control_system()",
    )
    .get_result(c)?;
    let timeline = timeline_of(&row.wal).ok_or_else(|| {
        diesel::result::Error::DeserializationError(
            "the server's WAL file name carries no timeline".into(),
        )
    })?;
    Ok(ServerIdentity {
        system: row.system,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::timeline_of;

    #[test]
    fn the_timeline_is_the_wal_file_name_s_first_eight_hex_digits() {
        assert_eq!(timeline_of("000000010000000000000001"), Some(1));
        assert_eq!(timeline_of("0000000A0000000000000003"), Some(10));
        assert_eq!(timeline_of("0000001"), None);
        assert_eq!(timeline_of("zzzzzzzz0000000000000001"), None);
    }
}
