//! Hosts as stored (docs/design.md, *Managed gateways*): what each host's daemon last said of
//! itself (a JSON document: releases installed, CPUs, memory, load), and on PostgreSQL which
//! live instances run on each host.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::hosts;
use super::{DbConn, DbError, Store};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = hosts)]
pub struct HostRecord {
    pub host_id: String,
    pub info: String,
    pub updated_at_ms: i64,
}

#[derive(QueryableByName)]
struct HostInstance {
    #[diesel(sql_type = Text)]
    instance_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    advertise_url: Option<String>,
}

#[derive(QueryableByName)]
struct LiveInstance {
    #[diesel(sql_type = Text)]
    host_id: String,
    #[diesel(sql_type = Text)]
    instance_id: String,
}

impl Store {
    /// Records what host `record.host_id` says of itself now.
    pub fn put_host(&self, record: &HostRecord) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let updated = diesel::update(hosts::table.find(&record.host_id))
            .set(record)
            .execute(&mut conn)?;
        if updated == 0 {
            // Two instances of one host may both insert: the loser's next round updates.
            let _ = diesel::insert_into(hosts::table)
                .values(record)
                .execute(&mut conn);
        }
        Ok(())
    }

    pub fn hosts(&self) -> Result<Vec<HostRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(hosts::table
            .order(hosts::host_id)
            .select(HostRecord::as_select())
            .load(&mut conn)?)
    }

    /// In a cluster, the live instances (a heartbeat within `ttl`, not stopping) of each host;
    /// `None` on SQLite, where this daemon is the only one.
    pub fn live_hosts(
        &self,
        ttl: Duration,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, DbError> {
        let mut conn = self.conn()?;
        let DbConn::Postgres(c) = &mut *conn else {
            return Ok(None);
        };
        let rows: Vec<LiveInstance> = diesel::sql_query(
            "SELECT host_id, instance_id FROM cluster_instances \
             WHERE host_id IS NOT NULL AND NOT stopping \
             AND heartbeat_at > now() - $1 * interval '1 millisecond' ORDER BY instance_id",
        )
        .bind::<BigInt, _>(super::cluster::millis(ttl))
        .load(c)?;
        let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            hosts.entry(r.host_id).or_default().push(r.instance_id);
        }
        Ok(Some(hosts))
    }

    /// A live instance of host `host_id` (the first by id) and where it listens; `None` when
    /// none is up, or on SQLite.
    pub fn host_instance(
        &self,
        host_id: &str,
        ttl: Duration,
    ) -> Result<Option<(String, Option<String>)>, DbError> {
        let mut conn = self.conn()?;
        let DbConn::Postgres(c) = &mut *conn else {
            return Ok(None);
        };
        let row: Option<HostInstance> = diesel::sql_query(
            "SELECT instance_id, advertise_url FROM cluster_instances \
             WHERE host_id = $1 AND NOT stopping \
             AND heartbeat_at > now() - $2 * interval '1 millisecond' \
             ORDER BY instance_id LIMIT 1",
        )
        .bind::<Text, _>(host_id)
        .bind::<BigInt, _>(super::cluster::millis(ttl))
        .get_result(c)
        .optional()?;
        Ok(row.map(|r| (r.instance_id, r.advertise_url)))
    }
}
