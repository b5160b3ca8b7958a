//! Whether a Node.js satisfies a release's `engines.node` (npm's range syntax: `||` between
//! alternatives, spaces between comparators, e.g. 2026.9.6's `>=24.16.0 <25 || >=26.1.0`).
//! Pure. A release refuses an older Node in its preinstall, and a gateway started with one
//! fails far from the cause; the supervisor says it before it installs or starts anything.

/// The version `node --version` printed (`v24.21.0`).
pub fn parse_node_version(printed: &str) -> Option<semver::Version> {
    semver::Version::parse(printed.trim().trim_start_matches('v')).ok()
}

/// Whether `node` satisfies `range`; `Err` names a range that cannot be read.
pub fn satisfies(node: &semver::Version, range: &str) -> Result<bool, String> {
    let mut any = false;
    for alternative in range.split("||") {
        // npm's `<25` is `<25.0.0`; the semver crate reads a bare major the same way, but wants
        // commas between comparators.
        let comparators: Vec<&str> = alternative.split_whitespace().collect();
        if comparators.is_empty() {
            // `""` or `*` alone: any version.
            return Ok(true);
        }
        let req = semver::VersionReq::parse(&comparators.join(", "))
            .map_err(|e| format!("engines.node {range:?}: {e}"))?;
        any |= req.matches(node);
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENCLAW_2026_9_6: &str = ">=24.16.0 <25 || >=26.1.0";

    fn v(s: &str) -> semver::Version {
        parse_node_version(s).unwrap()
    }

    #[test]
    fn node_24_satisfies_2026_9_6_and_node_20_does_not() {
        assert_eq!(satisfies(&v("v24.21.0"), OPENCLAW_2026_9_6), Ok(true));
        assert_eq!(satisfies(&v("v20.20.2"), OPENCLAW_2026_9_6), Ok(false));
        assert_eq!(satisfies(&v("v24.15.9"), OPENCLAW_2026_9_6), Ok(false));
        assert_eq!(satisfies(&v("v25.0.0"), OPENCLAW_2026_9_6), Ok(false));
        assert_eq!(satisfies(&v("v26.1.0"), OPENCLAW_2026_9_6), Ok(true));
    }

    #[test]
    fn a_simple_lower_bound_and_an_empty_range_read_as_npm_reads_them() {
        assert_eq!(satisfies(&v("v22.12.0"), ">=22.12.0"), Ok(true));
        assert_eq!(satisfies(&v("v22.11.0"), ">=22.12.0"), Ok(false));
        assert_eq!(satisfies(&v("v18.0.0"), ""), Ok(true));
    }

    #[test]
    fn an_unreadable_range_or_version_is_an_error_not_a_yes() {
        assert!(satisfies(&v("v24.0.0"), ">=banana").is_err());
        assert_eq!(parse_node_version("node: command not found"), None);
    }
}
