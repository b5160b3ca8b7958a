//! What a retention sweep deletes: for each tenant with a retention of its own
//! (`audit.retention_by_tenant`), its rows older than that; then, with `audit.retention`, the
//! rows of every other tenant and of none older than that. A tenant's own retention may be
//! longer than the default (a legal hold) or shorter. Pure; checked by its unit tests, carried
//! out by [`super::sweep`].

use crate::config::AuditConfig;
use crate::db::audit::Pruned;

/// `(whose rows, made before this Unix second)` for a sweep at `now`.
pub fn sweeps(cfg: &AuditConfig, now: i64) -> Vec<(Pruned, i64)> {
    let before =
        |d: std::time::Duration| now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut out: Vec<(Pruned, i64)> = cfg
        .retention_by_tenant
        .iter()
        .map(|(tenant, r)| (Pruned::Tenant(tenant.clone()), before(r.0)))
        .collect();
    if let Some(r) = cfg.retention {
        let named = cfg.retention_by_tenant.keys().cloned().collect();
        out.push((Pruned::AllBut(named), before(r)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Retention;
    use std::time::Duration;

    const DAY: u64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn each_tenant_keeps_its_own_and_the_rest_keep_the_default() {
        let mut cfg = AuditConfig::default();
        assert!(sweeps(&cfg, NOW).is_empty(), "no retention: kept for ever");
        cfg.retention_by_tenant
            .insert("team-a".into(), Retention(Duration::from_secs(90 * DAY)));
        cfg.retention_by_tenant
            .insert("legal".into(), Retention(Duration::from_secs(3650 * DAY)));
        assert_eq!(
            sweeps(&cfg, NOW),
            [
                (Pruned::Tenant("legal".into()), NOW - 3650 * DAY as i64),
                (Pruned::Tenant("team-a".into()), NOW - 90 * DAY as i64),
            ],
            "only the named tenants: the others are kept for ever"
        );
        cfg.retention = Some(Duration::from_secs(400 * DAY));
        let all = sweeps(&cfg, NOW);
        assert_eq!(
            all.last(),
            Some(&(
                Pruned::AllBut(vec!["legal".into(), "team-a".into()]),
                NOW - 400 * DAY as i64
            ))
        );
    }
}
