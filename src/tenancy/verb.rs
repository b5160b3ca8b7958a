//! What a key may do, as verbs: each route declares the one it needs (`http/api_routes.rs`), a
//! key holds a set of them. A verb narrows a role, never widens it — a viewer key given
//! `spawn` still cannot spawn, the route's role refuses it first.

use std::fmt;
use std::str::FromStr;

/// One thing a key may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Read: lists, objects, streams, logs.
    Read,
    /// Start runs (spawns, agent connections and heartbeats).
    Spawn,
    /// Steer a session's run (abort, reset, compact…).
    SessionControl,
    /// Answer approvals.
    Approve,
    /// Config profiles and their rollouts.
    Config,
    /// Fleet operations and holds: drain, restart, upgrade, cordon, maintenance, probes.
    Operate,
    /// Register, change and remove gateways; keys; the audit log.
    Admin,
}

impl Verb {
    pub const ALL: [Verb; 7] = [
        Verb::Read,
        Verb::Spawn,
        Verb::SessionControl,
        Verb::Approve,
        Verb::Config,
        Verb::Operate,
        Verb::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Spawn => "spawn",
            Verb::SessionControl => "session_control",
            Verb::Approve => "approve",
            Verb::Config => "config",
            Verb::Operate => "operate",
            Verb::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verb {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown verb `{}` (one of {})",
                    gateway_supervisor_actors::bounded::text(s, 32),
                    Verb::ALL.map(Verb::as_str).join(", ")
                )
            })
    }
}

/// A set of verbs (a byte; every verb by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerbSet(u8);

impl Default for VerbSet {
    fn default() -> Self {
        VerbSet::all()
    }
}

impl VerbSet {
    pub fn all() -> VerbSet {
        VerbSet(Verb::ALL.iter().fold(0, |acc, v| acc | v.bit()))
    }

    pub fn contains(self, verb: Verb) -> bool {
        self.0 & verb.bit() != 0
    }

    pub fn is_all(self) -> bool {
        self == VerbSet::all()
    }

    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL.into_iter().filter(move |v| self.contains(*v))
    }

    /// `read,spawn`: the stored and shown form.
    pub fn to_words(self) -> String {
        self.iter().map(Verb::as_str).collect::<Vec<_>>().join(",")
    }

    /// Comma-separated verbs (spaces allowed around them); at least one.
    pub fn parse(text: &str) -> Result<VerbSet, String> {
        let mut set = 0u8;
        for word in text.split(',').map(str::trim) {
            set |= word.parse::<Verb>()?.bit();
        }
        if set == 0 {
            return Err("name at least one verb".into());
        }
        Ok(VerbSet(set))
    }
}

impl FromIterator<Verb> for VerbSet {
    fn from_iter<I: IntoIterator<Item = Verb>>(iter: I) -> Self {
        VerbSet(iter.into_iter().fold(0, |acc, v| acc | v.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_read_back_as_written_and_a_wrong_one_is_named() {
        for v in Verb::ALL {
            assert_eq!(v.as_str().parse::<Verb>().unwrap(), v);
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        let set = VerbSet::parse("read, spawn").unwrap();
        assert!(set.contains(Verb::Read) && set.contains(Verb::Spawn));
        assert!(!set.contains(Verb::Admin));
        assert_eq!(set.to_words(), "read,spawn");
        assert_eq!(VerbSet::parse(&set.to_words()).unwrap(), set);
        assert!(
            VerbSet::parse("read,delete")
                .unwrap_err()
                .contains("`delete`")
        );
        assert!(VerbSet::parse("").is_err());
        assert!(VerbSet::all().is_all() && !set.is_all());
    }
}
