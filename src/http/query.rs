//! Integers in query strings. A query string carries text, and the document's `integer`
//! parameters are JSON Schema integers, which `1.0` and `1e3` are; serde's integer parse
//! refuses them. Every integer query parameter reads through [`integer`].

use gateway_supervisor_actors::model::GatewayId;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// Beyond ±2^53 a float no longer names one integer.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// `#[serde(default, deserialize_with = "super::query::integer")]` on an `Option<integer>`.
pub fn integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let text = String::deserialize(d)?;
    let value = text.trim().parse::<i64>().ok().or_else(|| {
        let f = text.trim().parse::<f64>().ok()?;
        (f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64)
    });
    let shown = || gateway_supervisor_actors::bounded::text(&text, 64);
    let n = value.ok_or_else(|| D::Error::custom(format!("`{}` is not an integer", shown())))?;
    T::try_from(n)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// [`integer`] for a gateway id: 1 or more (ids start at 1), as the document's `GatewayId`
/// says, refused naming the value ([`GatewayId`]'s `TryFrom`).
pub fn id<'de, D>(d: D) -> Result<Option<GatewayId>, D::Error>
where
    D: Deserializer<'de>,
{
    integer::<D, i64>(d)?
        .map(GatewayId::try_from)
        .transpose()
        .map_err(D::Error::custom)
}

/// An `expected_boot_id` condition: 1–128 visible ASCII characters (a gateway's bootId is a
/// UUID), or absent.
pub fn boot_id(value: Option<&str>) -> Result<Option<String>, super::error::ApiError> {
    let Some(v) = value else {
        return Ok(None);
    };
    if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(super::error::ApiError::field(
            "expected_boot_id",
            "expected_boot_id must be 1–128 visible ASCII characters (a gateway's connection.boot_id)",
        ));
    }
    Ok(Some(v.to_owned()))
}

/// A listing's `limit`: `default` when absent, 1–1000 (`invalid_field` naming `limit`).
pub fn limit(value: Option<i64>, default: i64) -> Result<i64, super::error::ApiError> {
    let limit = value.unwrap_or(default);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(super::error::ApiError::field(
            "limit",
            "limit must be between 1 and 1000",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Q {
        #[serde(default, deserialize_with = "super::integer")]
        limit: Option<usize>,
    }

    fn limit(query: &str) -> Result<Option<usize>, String> {
        actix_web::web::Query::<Q>::from_query(query)
            .map(|q| q.into_inner().limit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integers_in_any_json_schema_spelling() {
        assert_eq!(limit(""), Ok(None));
        assert_eq!(limit("limit=5"), Ok(Some(5)));
        assert_eq!(limit("limit=5.0"), Ok(Some(5)));
        assert_eq!(limit("limit=5e1"), Ok(Some(50)));
        assert!(limit("limit=5.5").unwrap_err().contains("not an integer"));
        assert!(limit("limit=abc").unwrap_err().contains("not an integer"));
        assert!(limit("limit=NaN").is_err());
        assert!(limit("limit=-1").unwrap_err().contains("out of range"));
    }

    #[test]
    fn a_boot_id_condition_is_a_short_visible_word() {
        assert_eq!(super::boot_id(None).ok(), Some(None));
        let uuid = "22fc61c4-c7fb-4c05-99b0-34aebd6d091f";
        assert_eq!(super::boot_id(Some(uuid)).ok(), Some(Some(uuid.to_owned())));
        for bad in ["", "a b", "x\u{7}", &"a".repeat(129)] {
            assert!(super::boot_id(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
