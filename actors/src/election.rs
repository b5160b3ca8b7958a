//! Who acts as primary (docs/design.md, *Election and routing*): the designated primary while
//! it is healthy; otherwise the healthiest other gateway, which then keeps the role while it
//! stays eligible (a stand-in is not moved for being a few milliseconds slower than another:
//! every move is an event, an audit row and a metric tick); back to the designated one when it
//! recovers if `failback` is on. Pure: the registry actor applies it after every change it
//! hears of.

use crate::model::{GatewayId, GatewayStatus};

/// What the rule looks at for one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: GatewayId,
    pub designated: bool,
    /// Socket connected, breaker closed, not halted, not held back.
    pub eligible: bool,
    /// Held back by an operator (cordoned or suspended): never given the role.
    pub held_back: bool,
    pub status: GatewayStatus,
    pub latency_ms: Option<i64>,
    pub sessions: i64,
}

/// Why the acting primary is who it is (for the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Designated,
    DesignatedUnavailable,
    NoEligibleGateway,
    KeptWithoutFailback,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Designated => "designated",
            Reason::DesignatedUnavailable => "designated_unavailable",
            Reason::NoEligibleGateway => "no_eligible_gateway",
            Reason::KeptWithoutFailback => "kept_without_failback",
        }
    }
}

/// Lower is healthier: online before degraded, then lower latency, fewer sessions, older id.
fn rank(c: &Candidate) -> (u8, i64, i64, GatewayId) {
    (
        c.status.rank(),
        c.latency_ms.unwrap_or(i64::MAX),
        c.sessions,
        c.id,
    )
}

/// Whether [`elect`] would keep `current` whatever the other gateways look like, judged from
/// `current` and the `designated` primary alone: an eligible designated primary keeps the
/// role; an eligible stand-in keeps it while the designated primary cannot act, or with
/// failback off. The registry checks this first, so the common case costs two lookups instead
/// of a pass over the whole fleet on every change it hears of — at start-up, while a fleet of
/// 10,000 connects around a stand-in, that pass on each of ~40,000 link reports was most of
/// the daemon's work.
pub fn settled(
    current: Option<&Candidate>,
    designated: Option<&Candidate>,
    failback: bool,
) -> bool {
    current.is_some_and(|c| {
        c.eligible && (c.designated || designated.is_none_or(|d| !d.eligible || !failback))
    })
}

pub fn elect(
    candidates: &[Candidate],
    current: Option<GatewayId>,
    failback: bool,
) -> (Option<GatewayId>, Reason) {
    let designated = candidates.iter().find(|c| c.designated);
    let eligible = |id: GatewayId| candidates.iter().any(|c| c.id == id && c.eligible);
    if let Some(d) = designated.filter(|d| d.eligible) {
        let keep = current.filter(|cur| !failback && *cur != d.id && eligible(*cur));
        return match keep {
            Some(cur) => (Some(cur), Reason::KeptWithoutFailback),
            None => (Some(d.id), Reason::Designated),
        };
    }
    // A stand-in that is still eligible keeps the role: a change needs a real reason.
    if let Some(cur) =
        current.filter(|cur| designated.is_none_or(|d| d.id != *cur) && eligible(*cur))
    {
        return (Some(cur), Reason::DesignatedUnavailable);
    }
    match candidates
        .iter()
        .filter(|c| c.eligible && !c.designated)
        .min_by_key(|c| rank(c))
    {
        Some(best) => (Some(best.id), Reason::DesignatedUnavailable),
        // Nobody can act: the designated primary keeps the role (nothing better exists) —
        // unless an operator holds it back, which no lack of alternatives overrides.
        None => (
            designated.filter(|d| !d.held_back).map(|d| d.id),
            Reason::NoEligibleGateway,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GatewayStatus::*;

    fn c(
        id: i64,
        designated: bool,
        eligible: bool,
        status: GatewayStatus,
        latency: i64,
        sessions: i64,
    ) -> Candidate {
        Candidate {
            id: GatewayId(id),
            designated,
            eligible,
            held_back: false,
            status,
            latency_ms: Some(latency),
            sessions,
        }
    }

    #[test]
    fn a_held_back_designated_primary_is_not_kept_when_nobody_can_act() {
        let cordoned = Candidate {
            held_back: true,
            ..c(1, true, false, Online, 1, 0)
        };
        let fleet = [cordoned, c(2, false, false, Offline, 1, 0)];
        assert_eq!(elect(&fleet, None, true), (None, Reason::NoEligibleGateway));
        assert_eq!(
            elect(&fleet, Some(GatewayId(1)), true),
            (None, Reason::NoEligibleGateway)
        );
        // Merely unreachable, it keeps the role as before.
        let fleet = [
            c(1, true, false, Offline, 1, 0),
            c(2, false, false, Offline, 1, 0),
        ];
        assert_eq!(
            elect(&fleet, None, true),
            (Some(GatewayId(1)), Reason::NoEligibleGateway)
        );
    }

    #[test]
    fn a_settled_primary_is_what_elect_keeps_whatever_the_others_do() {
        let statuses = [Online, Degraded, Offline];
        for failback in [true, false] {
            for other_eligible in [true, false] {
                for status in statuses {
                    let fleet = [
                        c(1, true, true, Degraded, 500, 9),
                        c(2, false, other_eligible, status, 1, 0),
                        c(3, false, other_eligible, Online, 2, 0),
                    ];
                    assert!(settled(Some(&fleet[0]), Some(&fleet[0]), failback));
                    assert_eq!(
                        elect(&fleet, Some(GatewayId(1)), failback),
                        (Some(GatewayId(1)), Reason::Designated)
                    );
                }
            }
        }
        let offline_primary = c(1, true, false, Offline, 1, 0);
        let online_primary = c(1, true, true, Online, 1, 0);
        let stand_in = c(2, false, true, Online, 1, 0);
        assert!(!settled(
            Some(&offline_primary),
            Some(&offline_primary),
            true
        ));
        assert!(
            settled(Some(&stand_in), Some(&offline_primary), true),
            "a stand-in keeps the role while the primary cannot act"
        );
        assert!(settled(Some(&stand_in), None, true));
        assert!(
            !settled(Some(&stand_in), Some(&online_primary), true),
            "failback: the primary is back"
        );
        assert!(settled(Some(&stand_in), Some(&online_primary), false));
        assert!(!settled(
            Some(&c(2, false, false, Offline, 1, 0)),
            None,
            true
        ));
        assert!(!settled(None, Some(&online_primary), true));
    }

    /// Every fleet of three with every status, role and current: where `settled` says so,
    /// `elect` keeps the current primary.
    #[test]
    fn settled_never_disagrees_with_elect() {
        let mut checked = 0;
        for bits in 0u32..(1 << 9) {
            let bit = |i: u32| bits & (1 << i) != 0;
            let fleet: Vec<Candidate> = (0..3)
                .map(|i| Candidate {
                    held_back: bit(3 * i as u32 + 2) && !bit(3 * i as u32 + 1),
                    ..c(
                        i + 1,
                        bit(3 * i as u32) && i == 0,
                        bit(3 * i as u32 + 1),
                        if bit(3 * i as u32 + 1) {
                            Online
                        } else {
                            Offline
                        },
                        10 - i,
                        0,
                    )
                })
                .collect();
            let designated = fleet.iter().find(|c| c.designated);
            for current in [None, Some(1), Some(2), Some(3)].map(|n| n.map(GatewayId)) {
                for failback in [true, false] {
                    let cur = current.and_then(|id| fleet.iter().find(|c| c.id == id));
                    if settled(cur, designated, failback) {
                        checked += 1;
                        assert_eq!(
                            elect(&fleet, current, failback).0,
                            current,
                            "{fleet:?} current {current:?} failback {failback}"
                        );
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn designated_acts_while_healthy() {
        let fleet = [
            c(1, true, true, Online, 50, 9),
            c(2, false, true, Online, 1, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(1)), true),
            (Some(GatewayId(1)), Reason::Designated)
        );
        assert_eq!(
            elect(&fleet, None, true),
            (Some(GatewayId(1)), Reason::Designated)
        );
    }

    #[test]
    fn failover_to_the_healthiest_other() {
        let fleet = [
            c(1, true, false, Offline, 5, 0),
            c(2, false, true, Degraded, 1, 0),
            c(3, false, true, Online, 30, 5),
            c(4, false, true, Online, 20, 9),
            c(5, false, false, Online, 1, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(1)), true),
            (Some(GatewayId(4)), Reason::DesignatedUnavailable)
        );
        // Ties on status and latency: fewer sessions, then the older gateway.
        let fleet = [
            c(1, true, false, Offline, 0, 0),
            c(3, false, true, Online, 10, 2),
            c(2, false, true, Online, 10, 2),
            c(4, false, true, Online, 10, 1),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(1)), true).0,
            Some(GatewayId(4))
        );
        let fleet = [
            c(1, true, false, Offline, 0, 0),
            c(3, false, true, Online, 10, 2),
            c(2, false, true, Online, 10, 2),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(1)), true).0,
            Some(GatewayId(2))
        );
    }

    #[test]
    fn a_stand_in_keeps_the_role_while_it_stays_eligible() {
        // Gateway 3 stands in; 4 becomes faster and has fewer sessions: 3 keeps the role.
        let fleet = [
            c(1, true, false, Offline, 5, 0),
            c(3, false, true, Degraded, 400, 9),
            c(4, false, true, Online, 2, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(3)), true),
            (Some(GatewayId(3)), Reason::DesignatedUnavailable)
        );
        // It loses the role only by becoming ineligible...
        let fleet = [
            c(1, true, false, Offline, 5, 0),
            c(3, false, false, Offline, 400, 9),
            c(4, false, true, Online, 2, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(3)), true),
            (Some(GatewayId(4)), Reason::DesignatedUnavailable)
        );
        // ...or to the designated primary coming back (failback).
        let fleet = [
            c(1, true, true, Online, 5, 0),
            c(3, false, true, Online, 1, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(3)), true),
            (Some(GatewayId(1)), Reason::Designated)
        );
    }

    /// A fleet whose latencies change on every report: the acting primary does not move.
    #[test]
    fn latency_noise_never_moves_a_stand_in() {
        let mut acting = Some(GatewayId(1));
        let mut moves = 0;
        for round in 0..100i64 {
            let fleet: Vec<Candidate> = std::iter::once(c(1, true, false, Offline, 0, 0))
                .chain((2..7).map(|id| c(id, false, true, Online, (round * 7 + id * 13) % 50, 0)))
                .collect();
            let (next, _) = elect(&fleet, acting, true);
            moves += usize::from(next != acting);
            acting = next;
        }
        assert_eq!(moves, 1, "one failover, then no flapping");
    }

    #[test]
    fn failback_on_and_off() {
        let fleet = [
            c(1, true, true, Online, 5, 0),
            c(2, false, true, Online, 5, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(2)), true),
            (Some(GatewayId(1)), Reason::Designated)
        );
        assert_eq!(
            elect(&fleet, Some(GatewayId(2)), false),
            (Some(GatewayId(2)), Reason::KeptWithoutFailback)
        );
        // Without failback the stand-in keeps the role only while it is eligible itself.
        let fleet = [
            c(1, true, true, Online, 5, 0),
            c(2, false, false, Offline, 5, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(2)), false),
            (Some(GatewayId(1)), Reason::Designated)
        );
    }

    #[test]
    fn nobody_eligible_keeps_the_designated() {
        let fleet = [
            c(1, true, false, Offline, 5, 0),
            c(2, false, false, Timeout, 5, 0),
        ];
        assert_eq!(
            elect(&fleet, Some(GatewayId(2)), true),
            (Some(GatewayId(1)), Reason::NoEligibleGateway)
        );
        assert_eq!(elect(&[], None, true), (None, Reason::NoEligibleGateway));
    }

    /// Exhaustive over small fleets: the result is always eligible when anyone is, and is the
    /// designated one whenever it is eligible and failback is on.
    #[test]
    fn invariants_over_all_small_fleets() {
        let statuses = [Online, Degraded, Offline];
        for mask in 0u32..(1 << 9) {
            let fleet: Vec<Candidate> = (0..3)
                .map(|i| {
                    let bits = (mask >> (i * 3)) & 0b111;
                    c(
                        i as i64 + 1,
                        i == 0,
                        bits & 1 == 1,
                        statuses[(bits >> 1) as usize % 3],
                        (bits * 7) as i64,
                        0,
                    )
                })
                .collect();
            for current in [None, Some(1), Some(2), Some(3)].map(|n| n.map(GatewayId)) {
                for failback in [true, false] {
                    let (acting, _) = elect(&fleet, current, failback);
                    let any = fleet.iter().any(|x| x.eligible);
                    let acting_c = fleet.iter().find(|x| Some(x.id) == acting).unwrap();
                    if any {
                        assert!(acting_c.eligible, "{fleet:?} {current:?} {failback}");
                    } else {
                        assert!(acting_c.designated);
                    }
                    if fleet[0].eligible && failback {
                        assert_eq!(acting, Some(GatewayId(1)));
                    }
                }
            }
        }
    }
}
