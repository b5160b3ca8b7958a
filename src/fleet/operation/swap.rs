//! What a managed gateway's swap means for its progress in an upgrade, pure. The daemon on
//! the gateway's host swaps the release itself (`managed/swap.rs`); the operation only admits
//! it, reads where the swap is each round, and then checks the new process is back like any
//! upgraded gateway (another bootId, `health`, `/readyz`, the canary's bake). A swap put back
//! fails the gateway and marks it rolled back: the operation ends `reverted`.

use super::DETAIL_MAX;
use super::model::{GatewayProgress, Step};
use crate::fleet::processes::SwapReport;
use gateway_supervisor_actors::bounded;

impl GatewayProgress {
    /// Cordoned, its process and release noted: its swap is to be asked.
    pub fn admitted_for_swap(
        &mut self,
        boot_id: Option<String>,
        version: Option<String>,
        target: &str,
        now_ms: i64,
    ) {
        self.boot_id_before = boot_id;
        self.version_before = version;
        self.started_at.get_or_insert(now_ms);
        self.step = Step::Swapping { since_ms: now_ms };
        self.detail = Some(bounded::text(
            &format!("swapping to {target} on its host"),
            DETAIL_MAX,
        ));
    }

    /// Where the swap is, as the gateway's host reports it.
    pub fn after_swap(&mut self, report: SwapReport, now_ms: i64) {
        if !matches!(self.step, Step::Swapping { .. }) {
            return;
        }
        match report {
            SwapReport::Working(what) => {
                self.detail = Some(bounded::text(&format!("swap: {what}"), DETAIL_MAX));
            }
            SwapReport::Done => {
                self.detail = Some("swapped; waiting for the new process to be healthy".into());
                self.step = Step::Returning { since_ms: now_ms };
            }
            SwapReport::Current => {
                self.version_after = self.version_before.clone();
                self.detail = Some(format!(
                    "already on {}: nothing to swap",
                    self.version_before
                        .as_deref()
                        .unwrap_or("the release asked")
                ));
                self.step = Step::Done;
                self.finished_at = Some(now_ms);
            }
            SwapReport::RolledBack(why) => {
                let was = self
                    .version_before
                    .as_deref()
                    .unwrap_or("its previous release");
                self.fail(
                    &format!("rolled back: {why}; it runs {was} again on its state as it was"),
                    now_ms,
                );
                self.rolled_back = true;
            }
            SwapReport::Refused(why) => {
                let was = self.version_before.as_deref().unwrap_or("its release");
                self.fail(
                    &format!("the swap was refused: {why}; it runs {was} as before"),
                    now_ms,
                );
            }
            SwapReport::Failed(why) => self.fail(&format!("the swap failed: {why}"), now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::operation::kinds::next;
    use crate::fleet::operation::model::{
        KindParams, ManagedRelease, OperationKind, OperationParams, OperationState, UpgradeParams,
    };
    use crate::fleet::operation::rule::{Facts, Next, plan};
    use gateway_supervisor_actors::model::GatewayId;

    use crate::fleet::operation::test_builder::{self as builder, NOW};

    fn params(release: bool) -> OperationParams {
        OperationParams {
            wait_ready_s: 600,
            canary: 1,
            of: KindParams::Upgrade(UpgradeParams {
                canary_bake_s: 0,
                release: release.then(|| ManagedRelease {
                    version: "2026.9.6".into(),
                    source: "npm".into(),
                    min_healthy_s: 10,
                }),
            }),
            ..builder::params()
        }
    }

    fn managed_here() -> Facts {
        Facts {
            exists: true,
            connected: true,
            boot_id: Some("boot-a".into()),
            version: Some("2026.9.5".into()),
            managed: true,
            ..Facts::default()
        }
    }

    fn admitted() -> GatewayProgress {
        GatewayProgress {
            step: Step::Admitted,
            ..GatewayProgress::pending(GatewayId(7))
        }
    }

    fn decide(p: &GatewayProgress, f: &Facts, release: bool, now: i64) -> Next {
        next(OperationKind::Upgrade, p, f, &params(release), false, now)
    }

    #[test]
    fn a_managed_gateway_in_an_upgrade_is_swapped_even_where_it_offers_no_update_run() {
        let f = managed_here(); // offers_update: false
        assert_eq!(
            decide(&admitted(), &f, true, NOW),
            Next::AdmitSwap {
                boot_id: Some("boot-a".into())
            }
        );
        let observer = Facts {
            managed: false,
            offers_update: true,
            ..managed_here()
        };
        assert_eq!(
            decide(&admitted(), &observer, true, NOW),
            Next::AdmitUpdate {
                boot_id: Some("boot-a".into())
            }
        );
    }

    #[test]
    fn a_managed_gateway_without_a_target_version_fails_naming_the_field() {
        let Next::Fail { reason, .. } = decide(&admitted(), &managed_here(), false, NOW) else {
            panic!("expected a failure");
        };
        assert!(reason.contains("give `version`"), "{reason}");
    }

    #[test]
    fn a_swap_is_asked_each_round_by_the_host_that_runs_it_and_waited_for_elsewhere() {
        let (p, now) = (swapping(), 2_000);
        assert_eq!(decide(&p, &managed_here(), true, now), Next::Swap);
        let elsewhere = Facts {
            elsewhere: true,
            managed: false,
            ..managed_here()
        };
        assert_eq!(decide(&p, &elsewhere, true, now), Next::Wait);
        let gone = Facts {
            managed: false,
            ..managed_here()
        };
        assert!(matches!(decide(&p, &gone, true, now), Next::Fail { .. }));
    }

    #[test]
    fn a_swap_not_over_within_wait_ready_fails_with_its_last_step() {
        let mut p = swapping();
        p.after_swap(SwapReport::Working("installing 2026.9.6".into()), 2_000);
        let Next::Fail { reason, .. } = decide(&p, &managed_here(), true, 1_000 + 600_001) else {
            panic!("expected a failure");
        };
        assert_eq!(
            reason,
            "the swap was not over within 600s: swap: installing 2026.9.6"
        );
    }

    #[test]
    fn a_canary_rolled_back_ends_the_operation_reverted_and_leaves_the_rest_untouched() {
        let mut canary = swapping();
        canary.canary = true;
        canary.after_swap(
            SwapReport::RolledBack("the target ended (exit 1)".into()),
            5_000,
        );
        let mut progress = vec![canary, GatewayProgress::pending(GatewayId(8))];
        let (admitted, verdict) = plan(&mut progress, &params(true), false, 6_000);
        assert!(admitted.is_empty());
        assert_eq!(progress[1].step, Step::Skipped);
        assert_eq!(verdict, Some(OperationState::Reverted));
    }

    fn swapping() -> GatewayProgress {
        let mut p = GatewayProgress::pending(GatewayId(7));
        p.admitted_for_swap(
            Some("boot-a".into()),
            Some("2026.9.5".into()),
            "2026.9.6",
            1_000,
        );
        p
    }

    #[test]
    fn a_swap_under_way_only_changes_the_detail() {
        let mut p = swapping();
        p.after_swap(SwapReport::Working("installing 2026.9.6".into()), 2_000);
        assert_eq!(p.step, Step::Swapping { since_ms: 1_000 });
        assert_eq!(p.detail.as_deref(), Some("swap: installing 2026.9.6"));
    }

    #[test]
    fn a_finished_swap_waits_for_the_new_process_like_any_upgrade() {
        let mut p = swapping();
        p.after_swap(SwapReport::Done, 5_000);
        assert_eq!(p.step, Step::Returning { since_ms: 5_000 });
        assert!(!p.rolled_back);
    }

    #[test]
    fn a_swap_put_back_fails_the_gateway_and_says_it_runs_its_old_release() {
        let mut p = swapping();
        p.after_swap(
            SwapReport::RolledBack("the target refused to start (exit 78)".into()),
            5_000,
        );
        assert_eq!(p.step, Step::Failed);
        assert!(p.rolled_back);
        assert_eq!(
            p.detail.as_deref(),
            Some(
                "rolled back: the target refused to start (exit 78); it runs 2026.9.5 again on its state as it was"
            )
        );
    }

    #[test]
    fn a_swap_refused_before_anything_stopped_fails_as_it_was_without_a_rollback() {
        let mut p = swapping();
        p.after_swap(
            SwapReport::Refused("the target refused a copy of the state".into()),
            5_000,
        );
        assert_eq!(p.step, Step::Failed);
        assert!(!p.rolled_back);
        assert!(
            p.detail.as_deref().unwrap().starts_with(
                "the swap was refused: the target refused a copy of the state; it runs"
            ),
            "{:?}",
            p.detail
        );
    }

    #[test]
    fn a_late_report_after_the_swap_is_over_changes_nothing() {
        let mut p = swapping();
        p.after_swap(SwapReport::Done, 5_000);
        p.after_swap(SwapReport::RolledBack("late".into()), 6_000);
        assert_eq!(p.step, Step::Returning { since_ms: 5_000 });
    }
}
