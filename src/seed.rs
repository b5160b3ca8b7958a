//! The default gateway, seeded when the registry is empty at start and at least one of the
//! Mission Control variables is set (docs/design.md, *Seed import*).

use secrecy::SecretString;

use crate::validate::{self, FieldError};
use gateway_supervisor_actors::model::NewGateway;

const HOST: &str = "OPENCLAW_GATEWAY_HOST";
const PORTS: [&str; 3] = [
    "OPENCLAW_GATEWAY_PORT",
    "GATEWAY_PORT",
    "NEXT_PUBLIC_GATEWAY_PORT",
];
const TOKENS: [&str; 2] = ["OPENCLAW_GATEWAY_TOKEN", "GATEWAY_TOKEN"];
const NAME: &str = "MC_DEFAULT_GATEWAY_NAME";

/// Reads the variables through `var`; `Ok(None)` when none is set.
pub fn default_gateway(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<NewGateway>, FieldError> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
    };
    let host = get(&[HOST]);
    let port = get(&PORTS);
    let token = get(&TOKENS);
    let name = get(&[NAME]);
    if host.is_none() && port.is_none() && token.is_none() && name.is_none() {
        return Ok(None);
    }
    let port = match port {
        Some(p) => validate::port(p.trim().parse::<i64>().map_err(|_| FieldError {
            field: "port",
            message: format!("OPENCLAW_GATEWAY_PORT (or an alias) `{p}` is not a port number"),
        })?)?,
        None => 18789,
    };
    Ok(Some(NewGateway {
        name: validate::name(name.as_deref().unwrap_or("primary"))?,
        host: validate::host(host.as_deref().unwrap_or("127.0.0.1"))?,
        port,
        tls: false,
        allow_insecure_tls: false,
        token: token
            .as_deref()
            .map(validate::token)
            .transpose()?
            .flatten()
            .map(SecretString::from),
        is_primary: true,
        ..NewGateway::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn seed(pairs: &[(&str, &str)]) -> Result<Option<NewGateway>, FieldError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        default_gateway(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_seeds_nothing() {
        assert!(seed(&[]).unwrap().is_none());
        assert!(seed(&[("UNRELATED", "1")]).unwrap().is_none());
    }

    #[test]
    fn defaults_fill_the_rest() {
        let g = seed(&[("OPENCLAW_GATEWAY_TOKEN", "t0k")]).unwrap().unwrap();
        assert_eq!(
            (g.name.as_str(), g.host.as_str(), g.port, g.is_primary),
            ("primary", "127.0.0.1", 18789, true)
        );
        assert_eq!(g.token.unwrap().expose_secret(), "t0k");
    }

    #[test]
    fn legacy_aliases_in_order() {
        let g = seed(&[
            ("GATEWAY_PORT", "1111"),
            ("NEXT_PUBLIC_GATEWAY_PORT", "2222"),
            ("GATEWAY_TOKEN", "legacy"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(g.port, 1111);
        assert_eq!(g.token.unwrap().expose_secret(), "legacy");
        let g = seed(&[
            ("OPENCLAW_GATEWAY_PORT", "3333"),
            ("GATEWAY_PORT", "1111"),
            ("MC_DEFAULT_GATEWAY_NAME", "home"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((g.port, g.name.as_str()), (3333, "home"));
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(
            seed(&[("OPENCLAW_GATEWAY_PORT", "abc")]).unwrap_err().field,
            "port"
        );
        assert_eq!(
            seed(&[("OPENCLAW_GATEWAY_HOST", "bad host")])
                .unwrap_err()
                .field,
            "host"
        );
    }
}
