//! OpenClaw release versions: CalVer `YYYY.M.D[-rev]`, compared as tuples (the v1 API refuses
//! gateways older than its minimum).

/// A release's three numbers and whether it is a prerelease: `Y.M.P[-suffix][+build]`, where a
/// numeric suffix is a rebuild of the release (`2026.7.1-2`) and any other a prerelease
/// (`2026.8.1-beta.3`). No bounds on the numbers: OpenClaw's third is no day
/// (`2026.7.35`, `2026.6.35`). `None`: not three numbers.
pub fn release(version: &str) -> Option<((u32, u32, u32), bool)> {
    let version = version.split('+').next()?;
    let (main, suffix) = match version.split_once('-') {
        Some((m, s)) => (m, Some(s)),
        None => (version, None),
    };
    let mut parts = main.split('.').map(|p| p.parse::<u32>().ok());
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    let prerelease = suffix.is_some_and(|s| s.parse::<u32>().is_err());
    Some((parsed, prerelease))
}

/// CalVer `YYYY.M.D[-rev]` (zero padding allowed) → comparable tuple; `None` when not CalVer.
pub fn calver(version: &str) -> Option<(u32, u32, u32, u32)> {
    let version = version.trim();
    if version.contains('+') {
        return None;
    }
    let ((y, m, d), prerelease) = release(version)?;
    let rev = match version.split_once('-') {
        Some((_, r)) if !prerelease => r.parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    if y < 2000 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
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

    #[test]
    fn a_release_is_read_whatever_its_numbers_and_a_prerelease_is_said() {
        use super::release;
        assert_eq!(release("2026.7.35"), Some(((2026, 7, 35), false)));
        assert_eq!(release("2026.7.1-2"), Some(((2026, 7, 1), false)));
        assert_eq!(release("2026.8.1-beta.3"), Some(((2026, 8, 1), true)));
        assert_eq!(release("2026.9.6+local"), Some(((2026, 9, 6), false)));
        assert_eq!(release("1"), None);
    }
}
