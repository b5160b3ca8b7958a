//! One gateway per address, checked by the database inside the write that takes the address:
//! two links to one gateway would be two owners of it. The registry checks its memory first (a
//! clear answer at once, and alone the only writer), but in a cluster two instances can each
//! find an address free in memory and both write it — the change feed brings each the other's
//! row only after — so the write checks again where every instance's rows are. On PostgreSQL
//! the writers of one address queue on a transaction-scoped advisory lock keyed by it, and each
//! then reads the rows committed before it (READ COMMITTED: a statement's snapshot starts after
//! the lock is granted); on SQLite the write lock every write takes first already queues them.
//!
//! Not a unique index: a database where that race already gave two gateways one address would
//! refuse the migration that made one, and the daemon would not start. The index of
//! `(lower(host), port)` (migration `000033`) makes the check one lookup; it runs on a create
//! and on an update that moves an address.

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::super::schema::gateways;
use super::super::{DbConn, lower};
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::store::StoreError;

/// Inside a write transaction about to give `host:port` to gateway `except` (`None`: a new
/// one): waits for any other write of that address to end, then the refusal if another
/// gateway has it (host compared without case).
pub(super) fn claim(
    c: &mut DbConn,
    host: &str,
    port: u16,
    except: Option<GatewayId>,
) -> QueryResult<Option<StoreError>> {
    if let DbConn::Postgres(pg) = c {
        let key = format!("gateway address {}:{port}", host.to_lowercase());
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(key)
            .execute(pg)?;
    }
    // Ids start at 1: -1 is no gateway's.
    let except = except.unwrap_or(GatewayId(-1));
    let holder = gateways::table
        .filter(lower(gateways::host).eq(lower(host)))
        .filter(gateways::port.eq(i32::from(port)))
        .filter(gateways::id.ne(except))
        .select((gateways::id, gateways::name, gateways::host))
        .first::<(GatewayId, String, String)>(c)
        .optional()?;
    Ok(holder.map(|(id, name, host)| StoreError::DuplicateAddress {
        id,
        name,
        host,
        port,
    }))
}
