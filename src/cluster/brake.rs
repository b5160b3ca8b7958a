//! The adoption brake (issue 60; Kubernetes' node-eviction brake is the model): when most of
//! the cluster looks dead at once, the likelier truth is that the database or the network
//! hiccupped, not that the instances died — adopting everything then would move the whole
//! fleet twice. So adoption is held for one lease TTL when more than half of the instances seen
//! live within the last TTL are gone (at once, or a round apart), or right after this
//! instance's own database calls came back from failing; and outside a hold it is paced, at
//! most [`PER_SECOND`] new gateways a second (100,000 gateways adopted in under two minutes,
//! never all in one round).
//!
//! A database failover (issue 61: another server answers, [`Database::FailedOver`]) holds
//! harder: nothing is taken at all for one TTL plus the clocks' skew allowance. With
//! asynchronous replication the promoted server can lack the last leases written — one taken
//! from a peer that still links the gateway, one released by an instance that has moved on —
//! and it computes every expiry on its own clock, which may differ from the old primary's by
//! the allowance. Within the hold every instance compares the leases it believes it holds with
//! the new server's (and stops the links it is not recorded for) or lapses; only then are
//! leases taken again. Pure: time and what each round saw are inputs; the runner asks
//! [`Brake::judge`] once a round.

/// New gateways adopted per second at most, outside a hold.
pub const PER_SECOND: usize = 1_000;

/// What a round may adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopt {
    /// Up to this many gateways it does not hold yet.
    Up(usize),
    /// Until `until_ms`, only what `takes` says: why.
    Held {
        until_ms: i64,
        why: String,
        takes: Takes,
    },
}

impl Adopt {
    /// How many gateways it does not hold yet a round `round_ms` after the last may take.
    pub fn how_many(&self, round_ms: i64) -> usize {
        match self {
            Adopt::Up(n) => *n,
            Adopt::Held {
                takes: Takes::Own, ..
            } => per_round(round_ms),
            Adopt::Held {
                takes: Takes::Nothing,
                ..
            } => 0,
        }
    }
}

/// What a held round may still take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Gateways never leased, or last held by this instance.
    Own,
    /// Nothing (after a database failover).
    Nothing,
}

impl Takes {
    pub fn as_str(self) -> &'static str {
        match self {
            Takes::Own => "own",
            Takes::Nothing => "nothing",
        }
    }
}

/// What a round learned of the database itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// It answered, as the round before.
    Steady,
    /// It answered after the round before could not reach it.
    CameBack,
    /// Another server answered than the round before (what changed, for the reason shown).
    FailedOver(String),
}

/// The brake's memory between rounds.
#[derive(Debug, Clone, Default)]
pub struct Brake {
    /// Each instance seen live within the last TTL, and when it was last.
    seen: std::collections::HashMap<String, i64>,
    held: Option<Hold>,
    /// How far the database servers' clocks may differ (`cluster.clock_skew`).
    skew_ms: i64,
}

#[derive(Debug, Clone)]
struct Hold {
    until_ms: i64,
    why: String,
    takes: Takes,
}

impl Brake {
    pub fn new(skew_ms: i64) -> Brake {
        Brake {
            skew_ms,
            ..Brake::default()
        }
    }

    /// How long a failover holds adoption: one TTL, and the servers' clocks' skew allowance.
    pub fn failover_hold_ms(&self, ttl_ms: i64) -> i64 {
        ttl_ms.saturating_add(self.skew_ms)
    }

    /// What the round at `now_ms` may adopt, given the instances live now (`None`: this round
    /// could not reach the database), what it learned of the database, the lease TTL and the
    /// time since the last round.
    pub fn judge(
        &mut self,
        now_ms: i64,
        live: Option<&[String]>,
        database: &Database,
        ttl_ms: i64,
        round_ms: i64,
    ) -> Adopt {
        let Some(live) = live else {
            return Adopt::Held {
                until_ms: now_ms,
                why: "the database cannot be reached".into(),
                takes: Takes::Nothing,
            };
        };
        // Instances that vanish a round apart vanished "at once" too: what counts is every
        // instance seen live within the last TTL, against those live now.
        self.seen
            .retain(|_, at| now_ms.saturating_sub(*at) <= ttl_ms);
        let recent = self.seen.len();
        let gone = self.seen.keys().filter(|i| !live.contains(i)).count();
        let holding = self.held.as_ref().is_some_and(|h| now_ms < h.until_ms);
        let hold = match database {
            Database::FailedOver(what) => Some(Hold {
                until_ms: now_ms.saturating_add(self.failover_hold_ms(ttl_ms)),
                why: format!("the database failed over ({what})"),
                takes: Takes::Nothing,
            }),
            Database::CameBack => Some(Hold {
                until_ms: now_ms.saturating_add(ttl_ms),
                why: "the database just came back".to_owned(),
                takes: Takes::Own,
            }),
            // (While a hold runs, the same vanished instances do not extend it.)
            Database::Steady if !holding && recent >= 2 && gone * 2 > recent => Some(Hold {
                until_ms: now_ms.saturating_add(ttl_ms),
                why: format!("{gone} of the {recent} instances live within one lease TTL vanished"),
                takes: Takes::Own,
            }),
            Database::Steady => None,
        };
        for i in live {
            self.seen.insert(i.clone(), now_ms);
        }
        if let Some(new) = hold {
            // A failover's stricter hold is not cut short or loosened by a milder one.
            self.held = match self.held.take() {
                Some(old) if now_ms < old.until_ms && old.takes == Takes::Nothing => Some(Hold {
                    until_ms: old.until_ms.max(new.until_ms),
                    ..old
                }),
                _ => Some(new),
            };
        }
        match &self.held {
            Some(h) if now_ms < h.until_ms => Adopt::Held {
                until_ms: h.until_ms,
                why: h.why.clone(),
                takes: h.takes,
            },
            _ => {
                self.held = None;
                Adopt::Up(per_round(round_ms))
            }
        }
    }
}

/// The gateways a round `round_ms` after the last may take, at [`PER_SECOND`].
pub fn per_round(round_ms: i64) -> usize {
    let per_ms = PER_SECOND as f64 / 1000.0;
    ((round_ms.max(1) as f64) * per_ms).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    const TTL: i64 = 15_000;

    #[test]
    fn adoption_is_paced_at_a_thousand_a_second() {
        let mut b = Brake::default();
        let all = names(&["a", "b", "c"]);
        assert_eq!(
            b.judge(0, Some(&all), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
        // One of three dies: its gateways are adopted, paced.
        let two = names(&["a", "b"]);
        assert_eq!(
            b.judge(3_000, Some(&two), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn most_of_the_cluster_vanishing_at_once_holds_adoption_for_one_ttl() {
        let mut b = Brake::default();
        let five = names(&["a", "b", "c", "d", "e"]);
        b.judge(0, Some(&five), &Database::Steady, TTL, 3_000);
        let two = names(&["a", "b"]);
        let held = b.judge(3_000, Some(&two), &Database::Steady, TTL, 3_000);
        assert!(
            matches!(&held, Adopt::Held { until_ms: 18_000, why, takes: Takes::Own } if why.contains("3 of the 5")),
            "{held:?}"
        );
        // Still held while the TTL runs, even as the view settles.
        assert!(matches!(
            b.judge(6_000, Some(&two), &Database::Steady, TTL, 3_000),
            Adopt::Held { .. }
        ));
        // Past it, the others are taken to be dead: adoption goes on, paced.
        assert_eq!(
            b.judge(18_000, Some(&two), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
        // Exactly half is not more than half.
        let mut b = Brake::default();
        let four = names(&["a", "b", "c", "d"]);
        b.judge(0, Some(&four), &Database::Steady, TTL, 3_000);
        assert_eq!(
            b.judge(3_000, Some(&two), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn instances_vanishing_a_round_apart_hold_adoption_too() {
        let mut b = Brake::default();
        b.judge(
            0,
            Some(&names(&["a", "b", "c"])),
            &Database::Steady,
            TTL,
            3_000,
        );
        // b's row lapses one round, c's the next: one of three, then "one of two".
        assert_eq!(
            b.judge(
                3_000,
                Some(&names(&["a", "c"])),
                &Database::Steady,
                TTL,
                3_000
            ),
            Adopt::Up(3_000)
        );
        let held = b.judge(6_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000);
        assert!(
            matches!(&held, Adopt::Held { until_ms: 21_000, why, takes: Takes::Own } if why.contains("2 of the 3")),
            "{held:?}"
        );
        // A TTL on, the two are forgotten: the brake does not hold again for them.
        assert_eq!(
            b.judge(21_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
        assert_eq!(
            b.judge(24_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn the_database_coming_back_holds_adoption_for_one_ttl() {
        let mut b = Brake::default();
        let all = names(&["a", "b", "c"]);
        b.judge(0, Some(&all), &Database::Steady, TTL, 3_000);
        assert!(matches!(
            b.judge(3_000, None, &Database::Steady, TTL, 3_000),
            Adopt::Held { .. }
        ));
        let back = b.judge(
            20_000,
            Some(&names(&["a"])),
            &Database::CameBack,
            TTL,
            3_000,
        );
        assert!(
            matches!(&back, Adopt::Held { until_ms: 35_000, why, takes: Takes::Own } if why.contains("came back")),
            "{back:?}"
        );
        assert_eq!(
            b.judge(35_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn a_failover_takes_nothing_for_a_ttl_and_the_skew_and_a_milder_hold_does_not_shorten_it() {
        let mut b = Brake::new(5_000);
        let all = names(&["a", "b", "c"]);
        b.judge(0, Some(&all), &Database::Steady, TTL, 3_000);
        // The round during the failover could not reach the database.
        assert!(matches!(
            b.judge(3_000, None, &Database::Steady, TTL, 3_000),
            Adopt::Held {
                takes: Takes::Nothing,
                ..
            }
        ));
        let over = Database::FailedOver("timeline 1 -> 2".into());
        let held = b.judge(6_000, Some(&all), &over, TTL, 3_000);
        assert!(
            matches!(&held, Adopt::Held { until_ms: 26_000, why, takes: Takes::Nothing }
                if why.contains("failed over (timeline 1 -> 2)")),
            "{held:?}"
        );
        // The database then comes back from a blip: still nothing taken, still until 26 s.
        let blip = b.judge(9_000, Some(&all), &Database::CameBack, TTL, 3_000);
        assert!(
            matches!(
                &blip,
                Adopt::Held {
                    until_ms: 26_000,
                    takes: Takes::Nothing,
                    ..
                }
            ),
            "{blip:?}"
        );
        // Most of the cluster vanishing meanwhile does not loosen it either.
        assert!(matches!(
            b.judge(12_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000),
            Adopt::Held {
                until_ms: 26_000,
                takes: Takes::Nothing,
                ..
            }
        ));
        assert_eq!(
            b.judge(26_000, Some(&names(&["a"])), &Database::Steady, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }
}
