//! `[labels]`: which labels only a platform key may set (docs/design.md, *Tenancy*). `tenant`
//! is always one of them; `reserved` adds every key under these prefixes
//! (`["platform.example.com/"]`). A key's selector may name reserved labels only, so a scoped
//! key cannot label its way into another's gateways.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::tenancy::Reserved;

/// The most reserved prefixes.
const MAX_PREFIXES: usize = 32;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Label-key prefixes only a platform key sets (`tenant` is reserved besides them). Each
    /// ends with `/` or `.` so that `team` does not also reserve `teamwork`.
    pub reserved: Vec<String>,
}

impl LabelsConfig {
    pub fn reserved(&self) -> Reserved {
        Reserved::new(self.reserved.clone())
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if self.reserved.len() > MAX_PREFIXES {
            return Err(ConfigError::Invalid(format!(
                "labels.reserved: at most {MAX_PREFIXES} prefixes"
            )));
        }
        for p in &self.reserved {
            let ok = p.len() > 1
                && p.len() <= 254
                && (p.ends_with('/') || p.ends_with('.'))
                && p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'/')
                });
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "labels.reserved: `{}` is not a label-key prefix ending in `/` or `.` \
                     (lower-case letters, digits, `-`, `.`)",
                    gateway_supervisor_actors::bounded::text(p, 64)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_prefix_must_end_a_key_part() {
        let ok = LabelsConfig {
            reserved: vec!["platform.example.com/".into(), "team.".into()],
        };
        assert!(ok.check().is_ok());
        for bad in ["team", "Team/", "/", "a b/"] {
            let cfg = LabelsConfig {
                reserved: vec![bad.into()],
            };
            assert!(cfg.check().is_err(), "{bad}");
        }
        assert!(ok.reserved().holds("tenant"));
        assert!(ok.reserved().holds("team.name"));
        assert!(!ok.reserved().holds("teamwork"));
    }
}
