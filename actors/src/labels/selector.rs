//! The selector language: Kubernetes' equality and set forms, requirements joined by commas
//! (all must hold), an empty selector picking everything.
//!
//! | form | picks a gateway whose labels… |
//! |---|---|
//! | `k=v`, `k==v` | have `k` set to `v` |
//! | `k!=v` | do not have `k` set to `v` (a gateway without `k` is picked) |
//! | `k in (a,b)` | have `k` set to `a` or `b` |
//! | `k notin (a,b)` | do not have `k` set to `a` or `b` (nor a gateway without `k`) |
//! | `k` | have `k`, whatever its value |
//! | `!k` | do not have `k` |
//!
//! One parser ([`Selector::parse`], also `FromStr`) and one matcher ([`Selector::matches`]):
//! the gateway list, spawns, fleet operations, the approvals inbox and config profiles all
//! call these two. Written back ([`Display`](fmt::Display)) a selector parses to itself.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Labels, key_problem, value_problem};

/// The longest selector (bytes).
pub const MAX_LEN: usize = 4096;
/// The most requirements in one selector.
pub const MAX_REQUIREMENTS: usize = 64;
/// The most values in one `in`/`notin` set.
pub const MAX_VALUES: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Equals(String),
    NotEquals(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
}

/// A selector that does not parse: where (a character offset) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector: at character {at}: {why}")]
pub struct SelectorError {
    pub at: usize,
    pub why: String,
}

impl Selector {
    /// The selector that picks every gateway.
    pub fn everything() -> Self {
        Selector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The selector of `requirements` (each checked as the parser checks it).
    pub fn of(requirements: Vec<Requirement>) -> Result<Self, SelectorError> {
        let s = Selector { requirements };
        s.to_string().parse()
    }

    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        if text.len() > MAX_LEN {
            return Err(SelectorError {
                at: 0,
                why: format!("a selector is at most {MAX_LEN} bytes"),
            });
        }
        Parser::new(text).selector()
    }

    /// Whether a gateway with these labels is picked: every requirement holds.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match &self.op {
            Op::Equals(v) => value == Some(v.as_str()),
            Op::NotEquals(v) => value != Some(v.as_str()),
            Op::In(set) => value.is_some_and(|v| set.contains(v)),
            Op::NotIn(set) => value.is_none_or(|v| !set.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        match &self.op {
            Op::Equals(v) => write!(f, "{}={v}", self.key),
            Op::NotEquals(v) => write!(f, "{}!={v}", self.key),
            Op::In(s) => write!(f, "{} in ({})", self.key, set(s)),
            Op::NotIn(s) => write!(f, "{} notin ({})", self.key, set(s)),
            Op::Exists => f.write_str(&self.key),
            Op::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// Stored and sent as its text.
impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Selector::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Bang,
    Equals,
    NotEquals,
    Comma,
    Open,
    Close,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("`{}`", w.escape_default()),
            Token::Bang => "`!`".into(),
            Token::Equals => "`=`".into(),
            Token::NotEquals => "`!=`".into(),
            Token::Comma => "`,`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '!' | '=' | ',' | '(' | ')')
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn error(&self, at: usize, why: impl Into<String>) -> SelectorError {
        SelectorError {
            at: self.text[..at.min(self.text.len())].chars().count(),
            why: why.into(),
        }
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next token and where it starts, without consuming it.
    fn peek(&mut self) -> Option<(usize, Token<'a>)> {
        self.skip_space();
        let rest = &self.text[self.pos..];
        let c = rest.chars().next()?;
        let token = match c {
            '!' if rest.starts_with("!=") => Token::NotEquals,
            '!' => Token::Bang,
            '=' => Token::Equals,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            _ => {
                let end = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
                Token::Word(&rest[..end])
            }
        };
        Some((self.pos, token))
    }

    fn bump(&mut self, token: &Token<'_>) {
        self.pos += match token {
            Token::Word(w) => w.len(),
            Token::NotEquals => 2,
            _ => 1,
        };
        // `==` is `=`.
        if *token == Token::Equals && self.text[self.pos..].starts_with('=') {
            self.pos += 1;
        }
    }

    fn next(&mut self) -> Option<(usize, Token<'a>)> {
        let next = self.peek()?;
        self.bump(&next.1);
        Some(next)
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(Selector::everything());
        }
        loop {
            if requirements.len() == MAX_REQUIREMENTS {
                return Err(
                    self.error(self.pos, format!("at most {MAX_REQUIREMENTS} requirements"))
                );
            }
            requirements.push(self.requirement()?);
            match self.next() {
                None => return Ok(Selector { requirements }),
                Some((_, Token::Comma)) => {}
                Some((at, t)) => {
                    return Err(self.error(
                        at,
                        format!("expected `,` or the end, found {}", t.describe()),
                    ));
                }
            }
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some((at, Token::Word(w))) => match key_problem(w) {
                None => Ok(w.to_owned()),
                Some(why) => Err(self.error(at, format!("key `{}`: {why}", w.escape_default()))),
            },
            Some((at, t)) => Err(self.error(at, format!("expected a key, found {}", t.describe()))),
            None => Err(self.error(self.pos, "expected a key, found the end")),
        }
    }

    /// A value after `=`/`!=`: a word, or nothing (the empty value) before `,` or the end.
    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            None | Some((_, Token::Comma)) => Ok(String::new()),
            Some((at, Token::Word(w))) => {
                self.bump(&Token::Word(w));
                self.checked_value(at, w)
            }
            Some((at, t)) => {
                Err(self.error(at, format!("expected a value, found {}", t.describe())))
            }
        }
    }

    fn checked_value(&self, at: usize, w: &str) -> Result<String, SelectorError> {
        match value_problem(w) {
            None => Ok(w.to_owned()),
            Some(why) => Err(self.error(at, format!("value `{}`: {why}", w.escape_default()))),
        }
    }

    /// `( value, … )`: one or more values.
    fn set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        match self.next() {
            Some((_, Token::Open)) => {}
            Some((at, t)) => {
                return Err(self.error(at, format!("expected `(`, found {}", t.describe())));
            }
            None => return Err(self.error(self.pos, "expected `(`, found the end")),
        }
        let mut values = BTreeSet::new();
        loop {
            let value = match self.peek() {
                Some((_, Token::Comma | Token::Close)) => String::new(),
                Some((at, Token::Word(w))) => {
                    self.bump(&Token::Word(w));
                    self.checked_value(at, w)?
                }
                Some((at, t)) => {
                    return Err(self.error(at, format!("expected a value, found {}", t.describe())));
                }
                None => return Err(self.error(self.pos, "expected `)`, found the end")),
            };
            values.insert(value);
            if values.len() > MAX_VALUES {
                return Err(self.error(self.pos, format!("at most {MAX_VALUES} values in a set")));
            }
            match self.next() {
                Some((_, Token::Comma)) => {}
                Some((_, Token::Close)) => return Ok(values),
                Some((at, t)) => {
                    return Err(
                        self.error(at, format!("expected `,` or `)`, found {}", t.describe()))
                    );
                }
                None => return Err(self.error(self.pos, "expected `)`, found the end")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if let Some((_, Token::Bang)) = self.peek() {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
            });
        }
        let key = self.key()?;
        let op = match self.peek() {
            None | Some((_, Token::Comma)) => Op::Exists,
            Some((_, Token::Equals)) => {
                self.next();
                Op::Equals(self.value()?)
            }
            Some((_, Token::NotEquals)) => {
                self.next();
                Op::NotEquals(self.value()?)
            }
            Some((_, Token::Word("in"))) => {
                self.next();
                Op::In(self.set()?)
            }
            Some((_, Token::Word("notin"))) => {
                self.next();
                Op::NotIn(self.set()?)
            }
            Some((at, t)) => {
                return Err(self.error(
                    at,
                    format!(
                        "expected `=`, `!=`, `in`, `notin`, `,` or the end after `{key}`, found {}",
                        t.describe()
                    ),
                ));
            }
        };
        Ok(Requirement { key, op })
    }
}
