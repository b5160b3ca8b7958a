//! A gateway's id: the registry row's integer key, minted by the database when the gateway is
//! registered. A type rather than an `i64` because the same functions carry counts, epochs,
//! latencies, budgets' cents and timestamps as `i64` beside it (`sessions_count`,
//! `owner_epoch`, `last_seen`): a gateway id can no longer be handed where one of those is
//! wanted, nor one of those where a gateway is meant. Stored and shown as its integer: serde is
//! transparent, diesel reads and writes it as a `BigInt` column on any backend (it is an
//! `i64` there); a metric's `gateway` label and an audit target are its decimal text.

use std::fmt;
use std::str::FromStr;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[diesel(sql_type = BigInt)]
/// A registered gateway's id (1 or more).
#[schema(minimum = 1)]
pub struct GatewayId(pub i64);

impl GatewayId {
    /// The integer as stored.
    pub const fn get(self) -> i64 {
        self.0
    }
}

// No `From<i64>`: an integer is an id only if it is 1 or more, which `TryFrom` checks (the API's
// generic `query::integer` reads through it); `GatewayId(n)` is spelled out where an integer is
// known to be one (read back from the store).

impl From<GatewayId> for i64 {
    fn from(id: GatewayId) -> Self {
        id.0
    }
}

/// As its integer, as it was before it was a type: a `{:?}` of a list of ids in a message or
/// a log reads `[1, 2]`.
impl fmt::Debug for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What is not a gateway id (a number below 1, or text that is no number), shown bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a gateway id (ids are 1 or more)")]
pub struct NotAGatewayId(String);

/// Ids start at 1: an id a client sends (a path, a query, a body) that is 0 or negative is
/// refused where it is read, naming the value, rather than looked up and not found. The one
/// place the rule is written; text and serde read through it.
impl TryFrom<i64> for GatewayId {
    type Error = NotAGatewayId;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        if n >= 1 {
            Ok(GatewayId(n))
        } else {
            Err(NotAGatewayId(n.to_string()))
        }
    }
}

impl FromStr for GatewayId {
    type Err = NotAGatewayId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<i64>()
            .map_err(|_| NotAGatewayId(crate::bounded::text(s, 32)))
            .and_then(GatewayId::try_from)
    }
}

impl<'de> Deserialize<'de> for GatewayId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        GatewayId::try_from(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<DB: Backend> ToSql<BigInt, DB> for GatewayId
where
    i64: ToSql<BigInt, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB: Backend> FromSql<BigInt, DB> for GatewayId
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        i64::from_sql(bytes).map(GatewayId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_id_is_its_integer_in_json_and_in_messages() {
        let id = GatewayId(42);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(42));
        assert_eq!(serde_json::from_str::<GatewayId>("42").unwrap(), id);
        assert_eq!(format!("gateway {id}"), "gateway 42");
        assert_eq!(format!("{:?}", [id, GatewayId(7)]), "[42, 7]");
    }

    #[test]
    fn an_id_below_one_is_refused_naming_the_value() {
        let err = serde_json::from_str::<GatewayId>("0").unwrap_err();
        assert!(err.to_string().contains("0 is not a gateway id"), "{err}");
        assert!(serde_json::from_str::<Vec<GatewayId>>("[1, -3]").is_err());
        assert!(serde_json::from_str::<GatewayId>("\"7\"").is_err());
        assert_eq!("42".parse::<GatewayId>(), Ok(GatewayId(42)));
        assert!("0".parse::<GatewayId>().is_err());
        assert!("4x".parse::<GatewayId>().is_err());
    }
}
