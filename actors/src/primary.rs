//! The designated-primary invariant: exactly one primary whenever at least one gateway exists.
//! Pure rules; the registry actor applies them before writing.

use crate::model::{GatewayId, GatewayRecord};

/// What the rules look at of the gateway changed or deleted: whether it is the designated
/// primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub is_primary: bool,
}

impl From<&GatewayRecord> for Target {
    fn from(r: &GatewayRecord) -> Target {
        Target {
            is_primary: r.is_primary,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrimaryRuleError {
    #[error("Cannot delete the primary gateway. Assign another gateway as primary first.")]
    DeletePrimary,
    #[error(
        "Cannot unset the primary gateway: exactly one gateway must be primary. Set another gateway as primary instead."
    )]
    UnsetPrimary,
}

/// Whether a new gateway becomes primary: when asked to, or when it is the first one.
pub fn primary_on_create(fleet_is_empty: bool, requested: bool) -> bool {
    requested || fleet_is_empty
}

/// Checks an `is_primary` change on `id`. `Ok(None)` means nothing to do.
pub fn primary_on_update(
    target: impl Into<Target>,
    requested: Option<bool>,
) -> Result<Option<bool>, PrimaryRuleError> {
    let target = target.into();
    match requested {
        None => Ok(None),
        Some(true) if target.is_primary => Ok(None),
        Some(true) => Ok(Some(true)),
        Some(false) if target.is_primary => Err(PrimaryRuleError::UnsetPrimary),
        Some(false) => Ok(None),
    }
}

/// Whether `target` may be deleted, `others` gateways besides it. The primary stays (make
/// another primary first: the seed contract's "Assign another gateway as primary first"),
/// except a `lost` one — a managed gateway whose process failed, which its caller moves the
/// role off first — when it is the last gateway: a registry with no gateway has no primary,
/// and a lost gateway must be able to leave (it blocked its own name's reuse for ever).
pub fn check_delete(
    target: impl Into<Target>,
    others: usize,
    lost: bool,
) -> Result<(), PrimaryRuleError> {
    let target = target.into();
    if target.is_primary && (others > 0 || !lost) {
        Err(PrimaryRuleError::DeletePrimary)
    } else {
        Ok(())
    }
}

/// When a loaded registry has gateways but no primary (e.g. edited by hand), the oldest one
/// is promoted so the invariant holds again.
pub fn repair_candidate(gateways: &[GatewayRecord]) -> Option<GatewayId> {
    if gateways.is_empty() || gateways.iter().any(|g| g.is_primary) {
        return None;
    }
    gateways.iter().map(|g| g.id).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::test_record as gw;

    #[test]
    fn first_gateway_is_primary_even_when_not_requested() {
        assert!(primary_on_create(true, false));
        assert!(!primary_on_create(false, false));
        assert!(primary_on_create(false, true));
    }

    #[test]
    fn update_rules() {
        let primary = gw(GatewayId(1), true);
        let other = gw(GatewayId(2), false);
        assert_eq!(primary_on_update(&other, None), Ok(None));
        assert_eq!(primary_on_update(&other, Some(true)), Ok(Some(true)));
        assert_eq!(primary_on_update(&primary, Some(true)), Ok(None));
        assert_eq!(primary_on_update(&other, Some(false)), Ok(None));
        assert_eq!(
            primary_on_update(&primary, Some(false)),
            Err(PrimaryRuleError::UnsetPrimary)
        );
    }

    #[test]
    fn primary_cannot_be_deleted_but_a_lost_last_gateway_can() {
        assert_eq!(
            check_delete(&gw(GatewayId(1), true), 1, false),
            Err(PrimaryRuleError::DeletePrimary)
        );
        assert_eq!(
            check_delete(&gw(GatewayId(1), true), 0, false),
            Err(PrimaryRuleError::DeletePrimary),
            "the seed contract: assign another first"
        );
        assert_eq!(
            check_delete(&gw(GatewayId(1), true), 1, true),
            Err(PrimaryRuleError::DeletePrimary),
            "the caller moves the role off first"
        );
        assert_eq!(check_delete(&gw(GatewayId(1), true), 0, true), Ok(()));
        assert_eq!(check_delete(&gw(GatewayId(2), false), 1, false), Ok(()));
    }

    #[test]
    fn repair_promotes_oldest_only_when_needed() {
        assert_eq!(repair_candidate(&[]), None);
        assert_eq!(
            repair_candidate(&[gw(GatewayId(3), false), gw(GatewayId(2), false)]),
            Some(GatewayId(2))
        );
        assert_eq!(
            repair_candidate(&[gw(GatewayId(3), false), gw(GatewayId(2), true)]),
            None
        );
    }
}
