//! Agents and direct CLI connections.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::schema::{agents, direct_connections};
use super::{DbError, Store, audit, unix_now};
use crate::domain::{AgentStatus, ConnectionStatus};
use gateway_supervisor_actors::model::{Caller, GatewayId};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    pub id: i64,
    pub name: String,
    pub role: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: AgentStatus,
    pub gateway_id: Option<GatewayId>,
    #[serde(skip)]
    pub config: String,
    pub source: String,
    pub session_key: Option<String>,
    pub last_seen: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AgentRow {
    pub fn config_json(&self) -> Value {
        serde_json::from_str(&self.config).unwrap_or(Value::Object(Default::default()))
    }
}

/// One agent as a gateway's `agents.list` describes it.
pub struct GatewayAgent {
    pub name: String,
    pub details: Value,
}

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub synced: usize,
    pub created: usize,
    pub updated: usize,
    pub agents: Vec<Value>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = direct_connections)]
pub struct ConnectionRow {
    pub id: i64,
    pub agent_id: i64,
    pub tool_name: String,
    pub tool_version: Option<String>,
    pub connection_id: String,
    #[diesel(deserialize_as = String)]
    pub status: ConnectionStatus,
    pub last_heartbeat: Option<i64>,
    pub metadata: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub last_model: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// The agent's `config` JSON, by name.
    pub fn agent_config(&self, name: &str) -> Result<Option<Value>, DbError> {
        Ok(self.agent_by_name(name)?.map(|a| a.config_json()))
    }

    pub fn agent_by_name(&self, name: &str) -> Result<Option<AgentRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(agents::table
            .filter(agents::name.eq(name))
            .select(AgentRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    pub fn agents(&self) -> Result<Vec<AgentRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(agents::table
            .order(agents::name)
            .select(AgentRow::as_select())
            .load(&mut conn)?)
    }

    pub fn agent(&self, id: i64) -> Result<Option<AgentRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(agents::table
            .find(id)
            .select(AgentRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    pub fn update_agent(
        &self,
        id: i64,
        config: Option<&Value>,
        role: Option<&str>,
        by: &Caller,
    ) -> Result<Option<AgentRow>, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let n = diesel::update(agents::table.find(id))
                .set((
                    config.map(|v| agents::config.eq(v.to_string())),
                    role.map(|r| agents::role.eq(r)),
                    agents::updated_at.eq(now),
                ))
                .execute(c)?;
            if n == 0 {
                return Ok(None);
            }
            let details = serde_json::json!({"config": config.is_some(), "role": role});
            audit::record(
                c,
                by,
                "agent.update",
                "agent",
                Some(id.to_string()),
                Some(&details),
            )?;
            Ok(Some(
                agents::table
                    .find(id)
                    .select(AgentRow::as_select())
                    .first(c)?,
            ))
        })
    }

    /// Upserts the gateway's agents by name, in one transaction. Unchanged agents count as
    /// neither created nor updated, so a repeated sync reports zeros.
    pub fn sync_agents(
        &self,
        gateway_id: GatewayId,
        list: &[GatewayAgent],
        by: &Caller,
    ) -> Result<SyncReport, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let mut report = SyncReport {
                synced: list.len(),
                ..SyncReport::default()
            };
            for agent in list {
                let existing: Option<AgentRow> = agents::table
                    .filter(agents::name.eq(&agent.name))
                    .select(AgentRow::as_select())
                    .first(c)
                    .optional()?;
                let action = match existing {
                    None => {
                        let config = serde_json::json!({"gateway_agent": agent.details});
                        diesel::insert_into(agents::table)
                            .values((
                                agents::name.eq(&agent.name),
                                agents::status.eq(AgentStatus::Offline.as_str()),
                                agents::gateway_id.eq(gateway_id),
                                agents::config.eq(config.to_string()),
                                agents::source.eq("gateway"),
                                agents::created_at.eq(now),
                                agents::updated_at.eq(now),
                            ))
                            .execute(c)?;
                        report.created += 1;
                        "created"
                    }
                    Some(row) => {
                        let mut config = row.config_json();
                        let same = config.get("gateway_agent") == Some(&agent.details)
                            && row.gateway_id == Some(gateway_id);
                        if same {
                            "unchanged"
                        } else {
                            config["gateway_agent"] = agent.details.clone();
                            diesel::update(agents::table.find(row.id))
                                .set((
                                    agents::config.eq(config.to_string()),
                                    agents::gateway_id.eq(gateway_id),
                                    agents::updated_at.eq(now),
                                ))
                                .execute(c)?;
                            report.updated += 1;
                            "updated"
                        }
                    }
                };
                report
                    .agents
                    .push(serde_json::json!({"name": agent.name, "action": action}));
            }
            let details = serde_json::json!({"gateway_id": gateway_id, "synced": report.synced, "created": report.created, "updated": report.updated});
            audit::record(c, by, "agent.sync", "agent", None, Some(&details))?;
            Ok(report)
        })
    }

    /// Registers a CLI connection: creates the agent if needed, retires its older connections.
    pub fn connect_cli(
        &self,
        agent_name: &str,
        tool_name: &str,
        tool_version: Option<&str>,
        metadata: Option<&Value>,
        connection_id: &str,
    ) -> Result<(AgentRow, ConnectionRow), DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            // Write first so SQLite takes the write lock at once.
            let touched = diesel::update(agents::table.filter(agents::name.eq(agent_name)))
                .set((
                    agents::status.eq(AgentStatus::Online.as_str()),
                    agents::last_seen.eq(now),
                    agents::updated_at.eq(now),
                ))
                .execute(c)?;
            if touched == 0 {
                diesel::insert_into(agents::table)
                    .values((
                        agents::name.eq(agent_name),
                        agents::status.eq(AgentStatus::Online.as_str()),
                        agents::config.eq("{}"),
                        agents::source.eq("cli"),
                        agents::last_seen.eq(now),
                        agents::created_at.eq(now),
                        agents::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            let agent: AgentRow = agents::table
                .filter(agents::name.eq(agent_name))
                .select(AgentRow::as_select())
                .first(c)?;
            diesel::update(
                direct_connections::table
                    .filter(direct_connections::agent_id.eq(agent.id))
                    .filter(direct_connections::status.eq(ConnectionStatus::Connected.as_str())),
            )
            .set((
                direct_connections::status.eq(ConnectionStatus::Disconnected.as_str()),
                direct_connections::updated_at.eq(now),
            ))
            .execute(c)?;
            diesel::insert_into(direct_connections::table)
                .values((
                    direct_connections::agent_id.eq(agent.id),
                    direct_connections::tool_name.eq(tool_name),
                    direct_connections::tool_version.eq(tool_version),
                    direct_connections::connection_id.eq(connection_id),
                    direct_connections::status.eq(ConnectionStatus::Connected.as_str()),
                    direct_connections::last_heartbeat.eq(now),
                    direct_connections::metadata.eq(metadata.map(Value::to_string)),
                    direct_connections::created_at.eq(now),
                    direct_connections::updated_at.eq(now),
                ))
                .execute(c)?;
            let row = direct_connections::table
                .filter(direct_connections::connection_id.eq(connection_id))
                .select(ConnectionRow::as_select())
                .first(c)?;
            Ok((agent, row))
        })
    }

    pub fn connections(&self) -> Result<Vec<(ConnectionRow, AgentRow)>, DbError> {
        let mut conn = self.conn()?;
        Ok(direct_connections::table
            .inner_join(agents::table)
            .order(direct_connections::id.desc())
            .select((ConnectionRow::as_select(), AgentRow::as_select()))
            .load(&mut conn)?)
    }

    /// Marks a connection disconnected; the agent goes offline when it has no live connection.
    /// Returns false for an unknown connection id.
    pub fn disconnect_cli(&self, connection_id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let n = diesel::update(
                direct_connections::table
                    .filter(direct_connections::connection_id.eq(connection_id)),
            )
            .set((
                direct_connections::status.eq(ConnectionStatus::Disconnected.as_str()),
                direct_connections::updated_at.eq(now),
            ))
            .execute(c)?;
            if n == 0 {
                return Ok(false);
            }
            offline_if_no_live_connection(c, now)?;
            Ok(true)
        })
    }

    /// A heartbeat with optional token usage. `Ok(None)` when the connection is unknown or
    /// belongs to another agent.
    pub fn heartbeat(
        &self,
        agent_id: i64,
        connection_id: &str,
        tokens: Option<(i64, i64, Option<&str>)>,
    ) -> Result<Option<ConnectionRow>, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let target = direct_connections::table
                .filter(direct_connections::connection_id.eq(connection_id))
                .filter(direct_connections::agent_id.eq(agent_id));
            let (input, output, model) = tokens.unwrap_or((0, 0, None));
            let n = diesel::update(target)
                .set((
                    direct_connections::status.eq(ConnectionStatus::Connected.as_str()),
                    direct_connections::last_heartbeat.eq(now),
                    direct_connections::input_tokens.eq(direct_connections::input_tokens + input),
                    direct_connections::output_tokens
                        .eq(direct_connections::output_tokens + output),
                    direct_connections::updated_at.eq(now),
                ))
                .execute(c)?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(m) = model {
                diesel::update(
                    direct_connections::table
                        .filter(direct_connections::connection_id.eq(connection_id)),
                )
                .set(direct_connections::last_model.eq(m))
                .execute(c)?;
            }
            diesel::update(agents::table.find(agent_id))
                .set((
                    agents::status.eq(AgentStatus::Online.as_str()),
                    agents::last_seen.eq(now),
                ))
                .execute(c)?;
            Ok(Some(
                direct_connections::table
                    .filter(direct_connections::connection_id.eq(connection_id))
                    .select(ConnectionRow::as_select())
                    .first(c)?,
            ))
        })
    }

    /// The reaper: connections silent for longer than `timeout_secs` become disconnected;
    /// returns how many.
    pub fn reap_connections(&self, timeout_secs: i64) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let n = diesel::update(
                direct_connections::table
                    .filter(direct_connections::status.eq(ConnectionStatus::Connected.as_str()))
                    .filter(direct_connections::last_heartbeat.lt(now - timeout_secs)),
            )
            .set((
                direct_connections::status.eq(ConnectionStatus::Disconnected.as_str()),
                direct_connections::updated_at.eq(now),
            ))
            .execute(c)?;
            if n > 0 {
                offline_if_no_live_connection(c, now)?;
            }
            Ok(n)
        })
    }
}

fn offline_if_no_live_connection(c: &mut super::DbConn, now: i64) -> Result<(), DbError> {
    let live = direct_connections::table
        .filter(direct_connections::status.eq(ConnectionStatus::Connected.as_str()))
        .select(direct_connections::agent_id);
    let with_connections = direct_connections::table.select(direct_connections::agent_id);
    diesel::update(
        agents::table
            .filter(agents::status.eq(AgentStatus::Online.as_str()))
            .filter(agents::id.eq_any(with_connections))
            .filter(diesel::dsl::not(agents::id.eq_any(live))),
    )
    .set((
        agents::status.eq(AgentStatus::Offline.as_str()),
        agents::updated_at.eq(now),
    ))
    .execute(c)?;
    Ok(())
}
