//! OpenClaw release versions: CalVer `YYYY.M.D[-rev]`, compared as tuples (the v1 API refuses
//! gateways older than its minimum).

/// CalVer `YYYY.M.D[-rev]` (zero padding allowed) → comparable tuple; `None` when not CalVer.
pub fn calver(version: &str) -> Option<(u32, u32, u32, u32)> {
    let (main, rev) = match version.trim().split_once('-') {
        Some((m, r)) => (m, r.parse().ok()?),
        None => (version.trim(), 0),
    };
    let mut parts = main.split('.').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || y < 2000 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((y, m, d, rev))
}

#[cfg(test)]
mod tests {
    use super::calver;

    #[test]
    fn calver_parses_and_orders() {
        assert_eq!(calver("2026.9.6"), Some((2026, 9, 6, 0)));
        assert_eq!(calver("2026.02.9"), Some((2026, 2, 9, 0)));
        assert_eq!(calver("2026.2.9-3"), Some((2026, 2, 9, 3)));
        assert!(calver("2026.9.6") > calver("2026.02.9"));
        assert!(calver("2026.1.30") < calver("2026.2.9"));
        for bad in ["dev", "1.2", "2026.13.1", "2026.1.1.1", "", "v2026.1.1"] {
            assert_eq!(calver(bad), None, "{bad}");
        }
    }
}
