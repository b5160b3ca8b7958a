//! Labels on gateways and the selectors that pick gateways by them (docs/design.md, *Labels
//! and selectors*). The syntax and limits are Kubernetes': an operator who knows
//! `kubectl get -l 'tier in (canary),region!=us'` knows this one, and a label copied from a
//! pod's manifest is accepted as it is.
//!
//! - A key is an optional prefix (a DNS subdomain of at most 253 characters, lower case) and
//!   `/`, then a name of 1–63 characters: letters, digits, `-`, `_`, `.`, beginning and ending
//!   with a letter or digit.
//! - A value is empty or 1–63 characters of the same kind.
//! - A gateway has at most [`MAX_LABELS`] labels (Kubernetes sets no count; 64 keeps one
//!   gateway's labels under 8 KB, and every event and list row carries them).
//!
//! Every label is checked on the way in (API, config file), so what is stored, logged, shown
//! and written into metrics is always of this small alphabet — a peer never names a label.

mod selector;
#[cfg(test)]
mod tests;

pub use selector::{Op, Requirement, Selector, SelectorError};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The most labels one gateway carries.
pub const MAX_LABELS: usize = 64;
/// The longest name part of a key, and the longest value.
pub const MAX_NAME: usize = 63;
/// The longest key prefix (a DNS subdomain).
pub const MAX_PREFIX: usize = 253;

/// A change to a gateway's labels, as a JSON merge patch on the flat object: a key set to a
/// string is set, a key set to `null` (`None`) is removed.
pub type LabelPatch = BTreeMap<String, Option<String>>;

/// A gateway's labels: sorted by key, cheap to clone (shared), each key and value checked.
///
/// A sorted slice, not a map: every instance holds the labels of every gateway of the fleet,
/// and a `BTreeMap` allocates a whole node of 11 entries for one label (544 bytes, heaptrack:
/// 5.4 MB of one instance's 22 MB at 10,000 gateways with two labels each). None at all, no
/// allocation (the `Arc` of an empty map was 40 bytes a gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Option<Arc<[Pair]>>);

/// One label: key and value.
type Pair = (Box<str>, Box<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label key `{key}`: {why}")]
    Key { key: String, why: &'static str },
    #[error("label `{key}`: value `{value}`: {why}")]
    Value {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("at most {MAX_LABELS} labels (got {0})")]
    TooMany(usize),
}

impl Labels {
    /// Checks every key and value.
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, LabelError> {
        if map.len() > MAX_LABELS {
            return Err(LabelError::TooMany(map.len()));
        }
        for (k, v) in &map {
            check_key(k)?;
            check_value(k, v)?;
        }
        Ok(Labels((!map.is_empty()).then(|| {
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect()
        })))
    }

    /// Labels from `(key, value)` pairs (tests, the config file).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, LabelError> {
        Labels::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    fn pairs(&self) -> &[Pair] {
        self.0.as_deref().unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let pairs = self.pairs();
        pairs
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*pairs[i].1)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// By key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs().iter().map(|(k, v)| (&**k, &**v))
    }

    /// A copy as a map, to change and check again ([`Labels::new`]).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// These labels with a JSON merge patch applied (RFC 7396 on a flat object): a key set to a
    /// string is set, a key set to `None` is removed, others are kept. Checked as a whole.
    pub fn patched(&self, patch: &LabelPatch) -> Result<Self, LabelError> {
        let mut map = self.to_map();
        for (k, v) in patch {
            check_key(k)?;
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        Labels::new(map)
    }
}

/// `key=value` pairs joined by commas, in key order: itself a selector that picks these labels
/// (the form in metrics, logs and the CLI).
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Labels::new(map).map_err(serde::de::Error::custom)
    }
}

/// Letters, digits, `-`, `_`, `.`; a letter or digit at each end; 1–63 characters.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS label (RFC 1123): 1–63 lower-case letters, digits and `-`, a letter or digit at each
/// end — the syntax of the names the daemon gives things an operator names in URLs (config
/// profiles, disruption budgets).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// A DNS subdomain (RFC 1123): DNS labels joined by dots.
fn is_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_PREFIX && s.split('.').all(is_dns_label)
}

pub(crate) fn key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_prefix(p)) {
        return Some(
            "the prefix must be a DNS subdomain (lower-case letters, digits, `-`, `.`; at most 253 characters)",
        );
    }
    if !is_name(name) {
        return Some(
            "the name must be 1–63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit",
        );
    }
    None
}

pub(crate) fn value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() || is_name(value) {
        None
    } else {
        Some(
            "a value is empty or 1–63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit",
        )
    }
}

/// At most this much of a rejected key or value is quoted back.
const QUOTED: usize = 80;

fn quoted(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(QUOTED)
        .flat_map(char::escape_default)
        .collect();
    if s.chars().count() > QUOTED {
        out.push('…');
    }
    out
}

fn check_key(key: &str) -> Result<(), LabelError> {
    match key_problem(key) {
        Some(why) => Err(LabelError::Key {
            key: quoted(key),
            why,
        }),
        None => Ok(()),
    }
}

fn check_value(key: &str, value: &str) -> Result<(), LabelError> {
    match value_problem(value) {
        Some(why) => Err(LabelError::Value {
            key: quoted(key),
            value: quoted(value),
            why,
        }),
        None => Ok(()),
    }
}
