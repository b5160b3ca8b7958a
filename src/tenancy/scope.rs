//! A key's scope and the rule that says what it reaches. Pure: the key cache builds a [`Scope`]
//! from the key's row (`auth.rs`), the HTTP layer asks it (`http/roles.rs` for the verb,
//! `http/visible.rs` for each gateway), and the tests below are its contract.

use std::collections::BTreeSet;

use gateway_supervisor_actors::labels::{Labels, Selector, is_dns_label};
use serde::Serialize;

use super::verb::{Verb, VerbSet};

/// The label that names a gateway's tenant. Always reserved.
pub const TENANT_LABEL: &str = "tenant";
/// The tenant of a gateway without a `tenant` label: every gateway before tenancy.
pub const DEFAULT_TENANT: &str = "default";
/// The most agents a key may be narrowed to.
const MAX_AGENTS: usize = 64;
/// The longest agent id a key names (OpenClaw's agent ids are short slugs).
const MAX_AGENT_LEN: usize = 64;

/// A gateway's tenant: its `tenant` label, or [`DEFAULT_TENANT`].
pub fn tenant_of(labels: &Labels) -> &str {
    labels
        .get(TENANT_LABEL)
        .filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TENANT)
}

/// The labels only a platform key may set: `tenant` and every key under a prefix of
/// `labels.reserved`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reserved {
    prefixes: Vec<String>,
}

impl Reserved {
    pub fn new(prefixes: Vec<String>) -> Reserved {
        Reserved { prefixes }
    }

    pub fn holds(&self, key: &str) -> bool {
        key == TENANT_LABEL || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// The reserved prefixes, as configured (`tenant` is reserved besides them).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
}

/// Why a scope cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("tenant `{0}`: a tenant is a DNS label (1–63 lower-case letters, digits and `-`)")]
    Tenant(String),
    #[error(
        "selector requirement on `{0}`: a key's selector may name reserved labels only \
         (`tenant` and the prefixes in `labels.reserved`): a label the key could set itself \
         would be no boundary"
    )]
    UnreservedLabel(String),
    #[error("selector: {0}")]
    Selector(String),
    #[error("a key narrowed by a selector needs a tenant")]
    SelectorWithoutTenant,
    #[error("agents: {0}")]
    Agents(String),
    #[error("verbs: {0}")]
    Verbs(String),
}

/// What a key reaches: a tenant (or every tenant), narrowed by a selector over reserved labels,
/// a set of verbs and a set of agents. The default is the whole fleet, every verb, every agent
/// — every key made before tenancy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Scope {
    /// `None`: every tenant (a platform key, with no selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    /// Over reserved labels only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shown")]
    #[schema(value_type = Option<String>)]
    selector: Option<Selector>,
    #[serde(serialize_with = "words")]
    #[schema(value_type = Vec<Verb>)]
    verbs: VerbSet,
    /// `None`: every agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<BTreeSet<String>>,
}

fn shown<S: serde::Serializer>(s: &Option<Selector>, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(&s.as_ref().map(ToString::to_string).unwrap_or_default())
}

fn words<S: serde::Serializer>(v: &VerbSet, out: S) -> Result<S::Ok, S::Error> {
    out.collect_seq(v.iter())
}

impl Scope {
    /// The whole fleet, every verb, every agent.
    pub fn platform() -> Scope {
        Scope::default()
    }

    /// A scope from its parts as a key is made or read back (text, as stored): each checked.
    pub fn new(
        tenant: Option<&str>,
        selector: Option<&str>,
        verbs: Option<&str>,
        agents: Option<&str>,
        reserved: &Reserved,
    ) -> Result<Scope, ScopeError> {
        let tenant = tenant
            .map(|t| {
                if is_dns_label(t) {
                    Ok(t.to_owned())
                } else {
                    Err(ScopeError::Tenant(
                        gateway_supervisor_actors::bounded::text(t, 64),
                    ))
                }
            })
            .transpose()?;
        let selector = selector
            .filter(|s| !s.trim().is_empty())
            .map(|s| Selector::parse(s).map_err(|e| ScopeError::Selector(e.to_string())))
            .transpose()?;
        if let Some(sel) = &selector {
            if tenant.is_none() {
                return Err(ScopeError::SelectorWithoutTenant);
            }
            if let Some(r) = sel.requirements().iter().find(|r| !reserved.holds(&r.key)) {
                return Err(ScopeError::UnreservedLabel(r.key.clone()));
            }
        }
        let verbs = verbs
            .map(VerbSet::parse)
            .transpose()
            .map_err(ScopeError::Verbs)?
            .unwrap_or_default();
        let agents = agents.map(parse_agents).transpose()?;
        Ok(Scope {
            tenant,
            selector,
            verbs,
            agents,
        })
    }

    /// A key of the whole fleet: no tenant, no selector (its verbs and agents may be narrowed).
    /// Only such a key sets reserved labels and reads the platform's own objects.
    pub fn is_platform(&self) -> bool {
        self.tenant.is_none() && self.selector.is_none()
    }

    /// Whether a gateway with these labels is in scope.
    pub fn sees(&self, labels: &Labels) -> bool {
        self.tenant
            .as_deref()
            .is_none_or(|t| t == tenant_of(labels))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }

    pub fn allows(&self, verb: Verb) -> bool {
        self.verbs.contains(verb)
    }

    /// Whether a run of `agent` (`None`: the gateway's default agent) may be started or steered.
    pub fn allows_agent(&self, agent: Option<&str>) -> bool {
        match (&self.agents, agent) {
            (None, _) => true,
            (Some(set), Some(a)) => set.contains(a),
            // The default agent is whichever the gateway says: not one the key was given.
            (Some(_), None) => false,
        }
    }

    /// Whether this key may set or remove the label `key`.
    pub fn may_set_label(&self, key: &str, reserved: &Reserved) -> bool {
        self.is_platform() || !reserved.holds(key)
    }

    /// The labels a gateway this key registers gets: `given` with the key's tenant added. A
    /// scoped key names no reserved label, and a key narrowed by a selector registers none (the
    /// gateway would carry none of the reserved labels its selector picks: it could not see it).
    pub fn labels_for_new(&self, given: &Labels, reserved: &Reserved) -> Result<Labels, String> {
        let Some(tenant) = self.tenant.as_deref() else {
            return Ok(given.clone());
        };
        if self.selector.is_some() {
            return Err(
                "a key narrowed by a selector registers no gateway: ask a platform key".into(),
            );
        }
        if let Some((key, _)) = given.iter().find(|(k, _)| reserved.holds(k)) {
            return Err(format!(
                "label `{key}` is reserved: only a platform key sets it"
            ));
        }
        let mut map = given.to_map();
        map.insert(TENANT_LABEL.to_owned(), tenant.to_owned());
        Labels::new(map).map_err(|e| e.to_string())
    }

    /// Whether this key may replace a gateway's labels `old` with `new`: every label it
    /// changes, adds or removes is one it may set.
    pub fn may_relabel(
        &self,
        old: &Labels,
        new: &Labels,
        reserved: &Reserved,
    ) -> Result<(), String> {
        if self.is_platform() {
            return Ok(());
        }
        let changed = old
            .iter()
            .filter(|(k, v)| new.get(k) != Some(*v))
            .chain(new.iter().filter(|(k, v)| old.get(k) != Some(*v)))
            .map(|(k, _)| k);
        match changed.into_iter().find(|k| reserved.holds(k)) {
            Some(key) => Err(format!(
                "label `{key}` is reserved: only a platform key sets it"
            )),
            None => Ok(()),
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    pub fn selector(&self) -> Option<&Selector> {
        self.selector.as_ref()
    }

    pub fn verbs(&self) -> VerbSet {
        self.verbs
    }

    pub fn agents(&self) -> Option<&BTreeSet<String>> {
        self.agents.as_ref()
    }

    /// The stored columns: tenant, selector, verbs (`None`: all), agents (`None`: all).
    pub fn to_columns(&self) -> KeyScope {
        KeyScope {
            tenant: self.tenant.clone(),
            selector: self.selector.as_ref().map(ToString::to_string),
            verbs: (!self.verbs.is_all()).then(|| self.verbs.to_words()),
            agents: self
                .agents
                .as_ref()
                .map(|a| a.iter().cloned().collect::<Vec<_>>().join(",")),
        }
    }
}

/// A scope as stored beside its key (`api_keys`): text, `None` for "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyScope {
    pub tenant: Option<String>,
    pub selector: Option<String>,
    pub verbs: Option<String>,
    pub agents: Option<String>,
}

fn parse_agents(text: &str) -> Result<BTreeSet<String>, ScopeError> {
    let agents: BTreeSet<String> = text
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if agents.is_empty() {
        return Err(ScopeError::Agents("name at least one agent".into()));
    }
    if agents.len() > MAX_AGENTS {
        return Err(ScopeError::Agents(format!("at most {MAX_AGENTS} agents")));
    }
    if let Some(bad) = agents.iter().find(|a| {
        a.len() > MAX_AGENT_LEN
            || !a
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }) {
        return Err(ScopeError::Agents(format!(
            "`{}` is not an agent id (1–{MAX_AGENT_LEN} letters, digits, `-`, `_`, `.`)",
            gateway_supervisor_actors::bounded::text(bad, 64)
        )));
    }
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::of(pairs.iter().copied()).unwrap()
    }

    fn reserved() -> Reserved {
        Reserved::new(vec!["platform.example.com/".into()])
    }

    /// Tenant `blue` narrowed to the reserved zone `eu`.
    fn blue_eu() -> Scope {
        Scope::new(
            Some("blue"),
            Some("platform.example.com/zone=eu"),
            None,
            None,
            &reserved(),
        )
        .unwrap()
    }

    #[test]
    fn a_tenant_key_sees_its_tenant_only_and_an_unlabelled_gateway_is_the_default_tenant() {
        let r = reserved();
        let blue = Scope::new(Some("blue"), None, None, None, &r).unwrap();
        assert!(blue.sees(&labels(&[("tenant", "blue"), ("region", "eu")])));
        assert!(!blue.sees(&labels(&[("tenant", "red")])));
        assert!(!blue.sees(&labels(&[])));
        let default = Scope::new(Some("default"), None, None, None, &r).unwrap();
        assert!(default.sees(&labels(&[])));
        assert!(default.sees(&labels(&[("tenant", "default")])));
        assert!(!default.sees(&labels(&[("tenant", "blue")])));
        assert!(Scope::platform().sees(&labels(&[("tenant", "red")])));
        assert!(Scope::platform().is_platform() && !blue.is_platform());
    }

    #[test]
    fn a_selector_narrows_a_tenant_and_may_name_reserved_labels_only() {
        let r = reserved();
        let eu = blue_eu();
        assert!(eu.sees(&labels(&[
            ("tenant", "blue"),
            ("platform.example.com/zone", "eu")
        ])));
        assert!(!eu.sees(&labels(&[
            ("tenant", "blue"),
            ("platform.example.com/zone", "us")
        ])));
        // Not reserved: the scoped key could label its way in.
        assert_eq!(
            Scope::new(Some("blue"), Some("region=eu"), None, None, &r),
            Err(ScopeError::UnreservedLabel("region".into()))
        );
        assert_eq!(
            Scope::new(None, Some("tenant=blue"), None, None, &r),
            Err(ScopeError::SelectorWithoutTenant)
        );
        assert!(matches!(
            Scope::new(Some("Blue!"), None, None, None, &r),
            Err(ScopeError::Tenant(_))
        ));
    }

    #[test]
    fn only_a_platform_key_sets_reserved_labels() {
        let r = reserved();
        let blue = Scope::new(Some("blue"), None, None, None, &r).unwrap();
        for key in ["tenant", "platform.example.com/zone"] {
            assert!(!blue.may_set_label(key, &r), "{key}");
            assert!(Scope::platform().may_set_label(key, &r), "{key}");
        }
        assert!(blue.may_set_label("region", &r));
    }

    #[test]
    fn a_tenant_key_registers_into_its_tenant_and_cannot_relabel_its_way_out() {
        let r = reserved();
        let blue = Scope::new(Some("blue"), None, None, None, &r).unwrap();
        let got = blue
            .labels_for_new(&labels(&[("region", "eu")]), &r)
            .unwrap();
        assert_eq!(got, labels(&[("region", "eu"), ("tenant", "blue")]));
        assert!(blue.sees(&got), "it sees what it registered");
        assert!(
            blue.labels_for_new(&labels(&[("tenant", "red")]), &r)
                .is_err()
        );
        let narrowed = blue_eu();
        assert!(narrowed.labels_for_new(&labels(&[]), &r).is_err());
        // Relabelling: ordinary labels freely, a reserved one never, added, changed or removed.
        let old = labels(&[("tenant", "blue"), ("region", "eu")]);
        assert!(
            blue.may_relabel(&old, &labels(&[("tenant", "blue"), ("region", "us")]), &r)
                .is_ok()
        );
        for new in [
            labels(&[("tenant", "red"), ("region", "eu")]),
            labels(&[("region", "eu")]),
            labels(&[
                ("tenant", "blue"),
                ("region", "eu"),
                ("platform.example.com/zone", "x"),
            ]),
        ] {
            assert!(blue.may_relabel(&old, &new, &r).is_err(), "{new}");
            assert!(Scope::platform().may_relabel(&old, &new, &r).is_ok());
        }
    }

    #[test]
    fn verbs_and_agents_narrow_what_a_key_does() {
        let r = reserved();
        let s = Scope::new(
            Some("blue"),
            None,
            Some("read,spawn"),
            Some("main, ops"),
            &r,
        )
        .unwrap();
        assert!(s.allows(Verb::Spawn) && !s.allows(Verb::Approve));
        assert!(s.allows_agent(Some("ops")) && !s.allows_agent(Some("other")));
        assert!(!s.allows_agent(None), "the default agent is not named");
        assert!(Scope::platform().allows_agent(None));
        assert!(matches!(
            Scope::new(None, None, None, Some("a b"), &r),
            Err(ScopeError::Agents(_))
        ));
        let back = s.to_columns();
        let again = Scope::new(
            back.tenant.as_deref(),
            back.selector.as_deref(),
            back.verbs.as_deref(),
            back.agents.as_deref(),
            &r,
        )
        .unwrap();
        assert_eq!(again, s);
        assert_eq!(Scope::platform().to_columns(), KeyScope::default());
    }
}
