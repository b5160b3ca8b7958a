//! Byte sizes as integers or strings with a unit (`1MiB`, `512KiB`, `1048576`).

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(n: &usize, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(*n as u64)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(u64),
    Text(String),
}

pub fn parse(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Int(n) => usize::try_from(n).map_err(serde::de::Error::custom),
        Raw::Text(t) => parse(&t).ok_or_else(|| {
            serde::de::Error::custom(format!("`{t}` is not a byte size; use e.g. `1MiB`"))
        }),
    }
}
