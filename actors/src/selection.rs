//! Which gateway runs a spawn (docs/design.md, *Election and routing*): an explicit `gateway_id`; else the agent's
//! `gateway_config.preferred_gateway` if it is healthy; else the acting primary; else the healthy
//! gateway with the fewest active sessions. Only gateways that can run the spawn's form (they
//! advertise the method) and that an operator has not held back (cordoned, suspended) are
//! considered; every refusal says why. Pure.
//!
//! Labels narrow it: a spawn's `selector` is required (only gateways it picks are considered,
//! the explicit one included), its `prefer_selector` is a preference (the acting primary and
//! the least loaded are looked for among the usable gateways it picks first, and among all
//! the usable ones only when it picks none).

use crate::labels::{Labels, Selector};
use crate::model::GatewayId;
pub use crate::model::HeldBack;

/// What a spawn asks of the choice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    /// The gateway named in the request.
    pub explicit: Option<GatewayId>,
    /// The agent's `gateway_config.preferred_gateway`.
    pub preferred: Option<GatewayId>,
    /// The method the spawn calls (`agent`, `spawn`).
    pub method: &'a str,
    /// Only gateways whose labels this picks.
    pub selector: Option<&'a Selector>,
    /// Gateways whose labels this picks before the others.
    pub prefer: Option<&'a Selector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: GatewayId,
    /// Boxed (16 bytes, not 24): a cluster instance keeps one for each of its peers.
    pub name: Box<str>,
    /// Connected, breaker closed.
    pub healthy: bool,
    pub acting_primary: bool,
    pub active_sessions: i64,
    /// Advertises the method the spawn needs.
    pub capable: bool,
    /// Held back by an operator: healthy, but takes nothing new.
    pub held_back: Option<HeldBack>,
    pub labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Explicit,
    Preferred,
    ActingPrimary,
    LeastLoaded,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Explicit => "explicit",
            Choice::Preferred => "preferred_gateway",
            Choice::ActingPrimary => "acting_primary",
            Choice::LeastLoaded => "least_loaded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoGateway {
    /// The explicit gateway does not exist.
    #[error("gateway {0} not found")]
    Unknown(GatewayId),
    /// The explicit gateway exists but cannot take it now (reason given).
    #[error("{reason}")]
    Unavailable { id: GatewayId, reason: String },
    /// Nothing healthy and capable.
    #[error("{reason}")]
    NoneHealthy { reason: String },
}

pub fn select(candidates: &[Candidate], ask: Ask<'_>) -> Result<(GatewayId, Choice), NoGateway> {
    let method = ask.method;
    let picked = |c: &Candidate| ask.selector.is_none_or(|s| s.matches(&c.labels));
    if let Some(id) = ask.explicit {
        let c = candidates
            .iter()
            .find(|c| c.id == id)
            .ok_or(NoGateway::Unknown(id))?;
        if let Some(s) = ask.selector.filter(|_| !picked(c)) {
            return Err(NoGateway::Unavailable {
                id,
                reason: format!(
                    "gateway `{}` is not picked by the selector `{s}` (its labels: `{}`)",
                    c.name, c.labels
                ),
            });
        }
        if let Some(h) = c.held_back {
            return Err(NoGateway::Unavailable {
                id,
                reason: format!(
                    "gateway `{}` is {}: it takes no new spawns until it is {}",
                    c.name,
                    h.as_str(),
                    h.until()
                ),
            });
        }
        return match (c.healthy, c.capable) {
            (true, true) => Ok((id, Choice::Explicit)),
            (false, _) => Err(NoGateway::Unavailable {
                id,
                reason: format!(
                    "gateway `{}` is not healthy (disconnected or breaker open)",
                    c.name
                ),
            }),
            (true, false) => Err(NoGateway::Unavailable {
                id,
                reason: format!("gateway `{}` does not offer `{method}`", c.name),
            }),
        };
    }
    let pool: Vec<&Candidate> = candidates.iter().filter(|c| picked(c)).collect();
    let usable = |c: &&&Candidate| c.healthy && c.capable && c.held_back.is_none();
    if let Some(p) = ask
        .preferred
        .and_then(|id| pool.iter().find(|c| c.id == id))
        .filter(usable)
    {
        return Ok((p.id, Choice::Preferred));
    }
    let usable: Vec<&Candidate> = pool.iter().filter(usable).copied().collect();
    let liked: Vec<&Candidate> = match ask.prefer {
        Some(s) => usable
            .iter()
            .filter(|c| s.matches(&c.labels))
            .copied()
            .collect(),
        None => Vec::new(),
    };
    let among = if liked.is_empty() { &usable } else { &liked };
    if let Some(p) = among.iter().find(|c| c.acting_primary) {
        return Ok((p.id, Choice::ActingPrimary));
    }
    match among.iter().min_by_key(|c| (c.active_sessions, c.id)) {
        Some(c) => Ok((c.id, Choice::LeastLoaded)),
        None => Err(NoGateway::NoneHealthy {
            reason: match ask.selector {
                Some(s) if pool.is_empty() => format!(
                    "no gateway's labels are picked by the selector `{s}` ({} registered)",
                    candidates.len()
                ),
                _ => none_usable(&pool, method, ask.selector),
            },
        }),
    }
}

/// Why no candidate can take a spawn, counted by reason.
fn none_usable(candidates: &[&Candidate], method: &str, picked_by: Option<&Selector>) -> String {
    if candidates.is_empty() {
        return "no gateway is registered".to_owned();
    }
    let count = |f: &dyn Fn(&Candidate) -> bool| candidates.iter().filter(|c| f(c)).count();
    let held = |h| count(&|c: &Candidate| c.held_back == Some(h));
    let mut why = Vec::new();
    for h in [
        HeldBack::Maintenance,
        HeldBack::Cordoned,
        HeldBack::Suspended,
    ] {
        if held(h) > 0 {
            why.push(format!("{} {}", held(h), h.as_str()));
        }
    }
    let free = |c: &Candidate| c.held_back.is_none();
    let unhealthy = count(&|c| free(c) && !c.healthy);
    if unhealthy > 0 {
        why.push(format!("{unhealthy} disconnected or breaker open"));
    }
    let incapable = count(&|c| free(c) && c.healthy && !c.capable);
    if incapable > 0 {
        why.push(format!("{incapable} not offering `{method}`"));
    }
    let which = picked_by
        .map(|s| format!(" the selector `{s}` picks"))
        .unwrap_or_default();
    format!(
        "none of the {} gateways{which} can take it: {}",
        candidates.len(),
        why.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: GatewayId, healthy: bool, acting: bool, sessions: i64, capable: bool) -> Candidate {
        Candidate {
            id,
            name: format!("g{id}").into(),
            healthy,
            acting_primary: acting,
            active_sessions: sessions,
            capable,
            held_back: None,
            labels: Labels::default(),
        }
    }

    fn ask(explicit: Option<GatewayId>, preferred: Option<GatewayId>, method: &str) -> Ask<'_> {
        Ask {
            explicit,
            preferred,
            method,
            ..Ask::default()
        }
    }

    fn held(id: GatewayId, acting: bool, h: HeldBack) -> Candidate {
        Candidate {
            held_back: Some(h),
            ..c(id, true, acting, 0, true)
        }
    }

    #[test]
    fn explicit_wins_when_usable_and_is_refused_clearly_otherwise() {
        let fleet = [
            c(GatewayId(1), true, true, 0, true),
            c(GatewayId(2), true, false, 9, true),
            c(GatewayId(3), false, false, 0, true),
            c(GatewayId(4), true, false, 0, false),
        ];
        assert_eq!(
            select(&fleet, ask(Some(GatewayId(2)), Some(GatewayId(1)), "agent")),
            Ok((GatewayId(2), Choice::Explicit))
        );
        assert_eq!(
            select(&fleet, ask(Some(GatewayId(9)), None, "agent")),
            Err(NoGateway::Unknown(GatewayId(9)))
        );
        assert!(matches!(
            select(&fleet, ask(Some(GatewayId(3)), None, "agent")),
            Err(NoGateway::Unavailable {
                id: GatewayId(3),
                ..
            })
        ));
        match select(&fleet, ask(Some(GatewayId(4)), None, "spawn")) {
            Err(NoGateway::Unavailable { reason, .. }) => assert!(reason.contains("spawn")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preferred_if_healthy_then_acting_primary_then_least_loaded() {
        let fleet = [
            c(GatewayId(1), true, true, 5, true),
            c(GatewayId(2), true, false, 3, true),
            c(GatewayId(3), true, false, 1, true),
            c(GatewayId(4), false, false, 0, true),
        ];
        assert_eq!(
            select(&fleet, ask(None, Some(GatewayId(2)), "agent")),
            Ok((GatewayId(2), Choice::Preferred))
        );
        assert_eq!(
            select(&fleet, ask(None, Some(GatewayId(4)), "agent")),
            Ok((GatewayId(1), Choice::ActingPrimary)),
            "an unhealthy preference is skipped"
        );
        assert_eq!(
            select(&fleet, ask(None, None, "agent")),
            Ok((GatewayId(1), Choice::ActingPrimary))
        );
        let fleet = [
            c(GatewayId(1), false, true, 0, true),
            c(GatewayId(2), true, false, 3, true),
            c(GatewayId(3), true, false, 1, true),
            c(GatewayId(5), true, false, 1, true),
        ];
        assert_eq!(
            select(&fleet, ask(None, None, "agent")),
            Ok((GatewayId(3), Choice::LeastLoaded)),
            "fewest sessions, then the older id"
        );
    }

    #[test]
    fn capability_filters_every_branch() {
        let fleet = [
            c(GatewayId(1), true, true, 0, false),
            c(GatewayId(2), true, false, 7, true),
        ];
        assert_eq!(
            select(&fleet, ask(None, Some(GatewayId(1)), "spawn")),
            Ok((GatewayId(2), Choice::LeastLoaded))
        );
    }

    #[test]
    fn no_healthy_gateway_says_why() {
        let reason = |r: Result<(GatewayId, Choice), NoGateway>| match r {
            Err(NoGateway::NoneHealthy { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason(select(&[], ask(None, None, "agent"))).contains("no gateway is registered"));
        assert_eq!(
            reason(select(
                &[c(GatewayId(1), false, true, 0, true)],
                ask(None, None, "agent")
            )),
            "none of the 1 gateways can take it: 1 disconnected or breaker open"
        );
        assert_eq!(
            reason(select(
                &[c(GatewayId(1), true, true, 0, false)],
                ask(None, None, "spawn")
            )),
            "none of the 1 gateways can take it: 1 not offering `spawn`"
        );
        let fleet = [
            held(GatewayId(1), true, HeldBack::Cordoned),
            held(GatewayId(2), false, HeldBack::Cordoned),
            held(GatewayId(3), false, HeldBack::Suspended),
            c(GatewayId(4), false, false, 0, true),
        ];
        assert_eq!(
            reason(select(&fleet, ask(None, None, "agent"))),
            "none of the 4 gateways can take it: 2 cordoned, 1 suspended, 1 disconnected or breaker open"
        );
    }

    #[test]
    fn a_held_back_gateway_is_never_chosen_even_as_primary_or_preference() {
        let fleet = [
            held(GatewayId(1), true, HeldBack::Cordoned),
            c(GatewayId(2), true, false, 9, true),
            c(GatewayId(3), true, false, 1, true),
        ];
        assert_eq!(
            select(&fleet, ask(None, Some(GatewayId(1)), "agent")),
            Ok((GatewayId(3), Choice::LeastLoaded))
        );
    }

    #[test]
    fn a_held_back_gateway_named_explicitly_is_refused_with_what_lifts_it() {
        let fleet = [
            held(GatewayId(1), false, HeldBack::Cordoned),
            held(GatewayId(2), false, HeldBack::Suspended),
        ];
        match select(&fleet, ask(Some(GatewayId(1)), None, "agent")) {
            Err(NoGateway::Unavailable {
                id: GatewayId(1),
                reason,
            }) => assert_eq!(
                reason,
                "gateway `g1` is cordoned: it takes no new spawns until it is uncordoned"
            ),
            other => panic!("{other:?}"),
        }
        match select(&fleet, ask(Some(GatewayId(2)), None, "agent")) {
            Err(NoGateway::Unavailable { reason, .. }) => {
                assert!(reason.ends_with("until it is resumed"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    fn labelled(id: GatewayId, sessions: i64, acting: bool, labels: &[(&str, &str)]) -> Candidate {
        Candidate {
            labels: Labels::of(labels.iter().copied()).expect("valid labels"),
            ..c(id, true, acting, sessions, true)
        }
    }

    fn sel(text: &str) -> Selector {
        Selector::parse(text).expect("valid selector")
    }

    #[test]
    fn a_selector_keeps_a_spawn_on_the_gateways_it_picks_even_off_the_primary() {
        let fleet = [
            labelled(GatewayId(1), 0, true, &[("region", "us")]),
            labelled(GatewayId(2), 5, false, &[("region", "eu")]),
            labelled(GatewayId(3), 1, false, &[("region", "eu")]),
        ];
        let eu = sel("region=eu");
        let pick = |preferred| {
            select(
                &fleet,
                Ask {
                    selector: Some(&eu),
                    preferred,
                    ..ask(None, None, "agent")
                },
            )
        };
        assert_eq!(pick(None), Ok((GatewayId(3), Choice::LeastLoaded)));
        assert_eq!(
            pick(Some(GatewayId(1))),
            Ok((GatewayId(3), Choice::LeastLoaded)),
            "the agent's preferred gateway outside the selector is passed over"
        );
        assert_eq!(
            pick(Some(GatewayId(2))),
            Ok((GatewayId(2), Choice::Preferred))
        );
    }

    #[test]
    fn an_explicit_gateway_outside_the_selector_is_refused_naming_its_labels() {
        let fleet = [labelled(GatewayId(1), 0, true, &[("region", "us")])];
        let eu = sel("region=eu");
        match select(
            &fleet,
            Ask {
                selector: Some(&eu),
                ..ask(Some(GatewayId(1)), None, "agent")
            },
        ) {
            Err(NoGateway::Unavailable {
                id: GatewayId(1),
                reason,
            }) => assert_eq!(
                reason,
                "gateway `g1` is not picked by the selector `region=eu` (its labels: `region=us`)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_selector_that_picks_nothing_or_nothing_usable_says_so() {
        let reason = |r: Result<(GatewayId, Choice), NoGateway>| match r {
            Err(NoGateway::NoneHealthy { reason }) => reason,
            other => panic!("{other:?}"),
        };
        let fleet = [
            labelled(GatewayId(1), 0, true, &[("region", "us")]),
            Candidate {
                held_back: Some(HeldBack::Cordoned),
                ..labelled(GatewayId(2), 0, false, &[("region", "eu")])
            },
        ];
        let ap = sel("region=ap");
        assert_eq!(
            reason(select(
                &fleet,
                Ask {
                    selector: Some(&ap),
                    ..ask(None, None, "agent")
                }
            )),
            "no gateway's labels are picked by the selector `region=ap` (2 registered)"
        );
        let eu = sel("region=eu");
        assert_eq!(
            reason(select(
                &fleet,
                Ask {
                    selector: Some(&eu),
                    ..ask(None, None, "agent")
                }
            )),
            "none of the 1 gateways the selector `region=eu` picks can take it: 1 cordoned"
        );
    }

    #[test]
    fn a_preference_is_followed_when_it_can_be_and_ignored_when_it_cannot() {
        let fleet = [
            labelled(GatewayId(1), 0, true, &[("tier", "stable")]),
            labelled(GatewayId(2), 9, false, &[("tier", "canary")]),
            labelled(GatewayId(3), 4, false, &[("tier", "canary")]),
            Candidate {
                healthy: false,
                ..labelled(GatewayId(4), 0, false, &[("tier", "spot")])
            },
        ];
        let with = |prefer: &Selector| {
            select(
                &fleet,
                Ask {
                    prefer: Some(prefer),
                    ..ask(None, None, "agent")
                },
            )
        };
        assert_eq!(
            with(&sel("tier=canary")),
            Ok((GatewayId(3), Choice::LeastLoaded)),
            "the preferred set wins over the acting primary"
        );
        assert_eq!(
            with(&sel("tier=spot")),
            Ok((GatewayId(1), Choice::ActingPrimary)),
            "a preference only unhealthy gateways meet falls back to the whole fleet"
        );
    }
}
