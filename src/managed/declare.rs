//! What a managed gateway's declaration is before it is checked — `POST /api/managed`'s body
//! and a `[[managed]]` table of the configuration file alike — and the checks, each naming the
//! field that is wrong.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::ToSchema;

use super::install::Source;
use super::{Declaration, ManagedError};
use gateway_supervisor_actors::labels::Labels;

fn invalid(field: &'static str, message: impl Into<String>) -> ManagedError {
    ManagedError::Invalid {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    /// The gateway's name, also its folder under the state directory: 1-63 of
    /// `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    /// The OpenClaw release, e.g. `2026.9.6`.
    pub version: String,
    /// `npm` (the registry, the default) or the path of a package tarball on this host.
    pub source: Option<String>,
    /// A JSON merge patch over the safe default (`gateway.mode: local`, loopback, a generated
    /// token, no update check on start). `gateway.port`, `.bind` and `.auth` are the daemon's.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Unset: the first free port of `managed_runtime.port_range_start..port_range_end`.
    #[schema(minimum = 1024, maximum = 65535)]
    pub port: Option<i64>,
}

/// The first release with OpenClaw's external-supervisor contract: `OPENCLAW_SUPERVISOR_MODE
/// =external`, `openclaw database ownership claim` and `database preflight`, which a managed
/// gateway's start and upgrade use. Read from the packages: 2026.8.1's `dist` has
/// `register.database` with the ownership operations, 2026.7.35's has neither it nor the
/// mode (2026.6.35, managed before, failed its claim with the CLI's help text).
pub const MIN_MANAGED: (u32, u32, u32) = (2026, 8, 1);

pub fn version(raw: &str) -> Result<String, ManagedError> {
    let ok = (1..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if !ok {
        return Err(invalid(
            "version",
            "a release version such as `2026.9.6` (1-64 of 0-9 A-Z a-z . - +)",
        ));
    }
    if let Some((release, prerelease)) = gateway_supervisor_actors::protocol::version::release(raw)
        && (release < MIN_MANAGED || (release == MIN_MANAGED && prerelease))
    {
        let (y, m, p) = MIN_MANAGED;
        return Err(invalid(
            "version",
            format!(
                "OpenClaw {raw} cannot be managed: releases before {y}.{m}.{p} have no \
                 external-supervisor contract (OPENCLAW_SUPERVISOR_MODE=external, `openclaw \
                 database ownership claim`, `database preflight`); use {y}.{m}.{p} or later, or \
                 run it yourself and register it with POST /api/gateways"
            ),
        ));
    }
    Ok(raw.to_owned())
}

/// Where a release comes from: `npm` (the default) or a tarball's absolute path.
pub fn source(raw: Option<&str>) -> Result<Source, ManagedError> {
    match raw {
        None | Some("npm") => Ok(Source::Registry),
        Some(path) if path.starts_with('/') && path.len() <= 4096 => Ok(Source::parse(path)),
        Some(_) => Err(invalid(
            "source",
            "`npm`, or the absolute path of a package tarball",
        )),
    }
}

impl DeclareRequest {
    /// The declaration asked for, checked: the first field that is wrong, named.
    pub fn validate(self) -> Result<Declaration, ManagedError> {
        let name = crate::validate::name(&self.name).map_err(|e| invalid("name", e.message))?;
        // Also its folder's name on the host.
        let folder_safe = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !folder_safe {
            return Err(invalid(
                "name",
                "a managed gateway's name is also its folder: 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            ));
        }
        let config = match self.config {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(m)) => m,
            Some(_) => return Err(invalid("config", "a JSON object (a merge patch)")),
        };
        let port = self
            .port
            .map(|p| {
                u16::try_from(p)
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| invalid("port", "between 1024 and 65535"))
            })
            .transpose()?;
        let source = source(self.source.as_deref())?;
        let labels = self
            .labels
            .map(Labels::new)
            .transpose()
            .map_err(|e| invalid("labels", e.to_string()))?
            .unwrap_or_default();
        Ok(Declaration {
            name,
            version: version(&self.version)?,
            source,
            config,
            labels,
            port,
        })
    }
}

/// The `[[managed]]` tables of the configuration file, checked (at start, before anything
/// runs: a wrong table stops the daemon, naming it and its field).
pub fn parse_configured(tables: &[serde_json::Value]) -> Result<Vec<Declaration>, String> {
    let mut seen = std::collections::BTreeSet::new();
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let req: DeclareRequest = serde_json::from_value(table.clone())
                .map_err(|e| format!("[[managed]] #{}: {e}", i + 1))?;
            let decl = req
                .validate()
                .and_then(|d| d.check().map(|()| d))
                .map_err(|e| format!("[[managed]] #{}: {e}", i + 1))?;
            if !seen.insert(decl.name.clone()) {
                return Err(format!(
                    "[[managed]] #{}: name `{}` is declared twice",
                    i + 1,
                    decl.name
                ));
            }
            Ok(decl)
        })
        .collect()
}

/// Declares each configured gateway that is not managed yet (by name); one that is stays as it
/// runs — its release changes through an upgrade (`POST /api/fleet/upgrade`), not by editing
/// the file. The names declared now.
pub async fn apply_configured(managed: &super::Managed, decls: Vec<Declaration>) -> Vec<String> {
    let existing = match managed.list_named().await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the managed gateways: [[managed]] not applied");
            return Vec::new();
        }
    };
    let mut declared = Vec::new();
    for decl in decls {
        if let Some((_, record)) = existing.iter().find(|(name, _)| *name == decl.name) {
            if record.version != decl.version {
                tracing::warn!(name = %decl.name, configured = %decl.version, runs = %record.version,
                    "a [[managed]] gateway runs another release than the file says: upgrade it with POST /api/fleet/upgrade");
            }
            continue;
        }
        let name = decl.name.clone();
        match managed
            .declare(
                decl,
                gateway_supervisor_actors::model::Caller::system("configuration file"),
            )
            .await
        {
            Ok(_) => declared.push(name),
            Err(e) => {
                tracing::warn!(name = %name, error = %e, "cannot declare a [[managed]] gateway")
            }
        }
    }
    declared
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn releases_without_the_external_supervisor_contract_are_refused_naming_the_minimum() {
        for old in ["2026.6.35", "2026.7.35", "2026.2.25", "2026.8.1-beta.3"] {
            let e = version(old).unwrap_err().to_string();
            assert!(
                e.contains(&format!("OpenClaw {old} cannot be managed"))
                    && e.contains("before 2026.8.1"),
                "{old}: {e}"
            );
        }
        for ok in [
            "2026.8.1",
            "2026.8.2",
            "2026.9.6",
            "2026.9.6-1",
            "2027.1.1",
            "1",
        ] {
            assert_eq!(version(ok).unwrap(), ok);
        }
    }

    #[test]
    fn configured_tables_are_checked_naming_the_table_and_the_field() {
        let ok = parse_configured(&[
            json!({"name": "edge-1", "version": "2026.9.6", "labels": {"tier": "edge"}}),
            json!({"name": "edge-2", "version": "2026.9.6", "port": 19300, "source": "/srv/oc.tgz"}),
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].port, Some(19300));
        let bad = |t: serde_json::Value| {
            parse_configured(&[json!({"name": "a", "version": "1"}), t]).unwrap_err()
        };
        assert_eq!(
            bad(json!({"name": "b", "version": "latest"})),
            "[[managed]] #2: version: a release version such as `2026.9.6` (1-64 of 0-9 A-Z a-z . - +)"
        );
        assert!(
            bad(json!({"name": "b", "version": "1", "prot": 1})).contains("unknown field `prot`")
        );
        assert_eq!(
            bad(json!({"name": "a", "version": "1"})),
            "[[managed]] #2: name `a` is declared twice"
        );
        assert!(
            bad(json!({"name": "b", "version": "1", "config": {"gateway": {"port": 1}}}))
                .contains("config")
        );
    }
}
