//! Agents (the registry of agent definitions; the full API comes with agent sync).

use diesel::prelude::*;

use super::schema::agents;
use super::{DbError, Store};

impl Store {
    /// The agent's `config` JSON, by name.
    pub fn agent_config(&self, name: &str) -> Result<Option<serde_json::Value>, DbError> {
        let mut conn = self.conn()?;
        let text: Option<String> = agents::table
            .filter(agents::name.eq(name))
            .select(agents::config)
            .first(&mut conn)
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
