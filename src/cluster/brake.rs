//! The adoption brake (issue 60; Kubernetes' node-eviction brake is the model): when most of
//! the cluster looks dead at once, the likelier truth is that the database or the network
//! hiccupped, not that the instances died — adopting everything then would move the whole
//! fleet twice. So adoption is held for one lease TTL when more than half of the instances seen
//! live within the last TTL are gone (at once, or a round apart), or right after this
//! instance's own database calls
//! came back from failing; and outside a hold it is paced, at most [`PER_SECOND`] new gateways
//! a second (100,000 gateways adopted in under two minutes, never all in one round). Pure:
//! time and what each round saw are inputs; the runner asks [`Brake::judge`] once a round.

/// New gateways adopted per second at most, outside a hold.
pub const PER_SECOND: usize = 1_000;

/// What a round may adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopt {
    /// Up to this many gateways it does not hold yet.
    Up(usize),
    /// None until `until_ms`: why.
    Held { until_ms: i64, why: String },
}

/// The brake's memory between rounds.
#[derive(Debug, Clone, Default)]
pub struct Brake {
    /// Each instance seen live within the last TTL, and when it was last.
    seen: std::collections::HashMap<String, i64>,
    held_until_ms: Option<i64>,
    why: String,
}

impl Brake {
    /// What the round at `now_ms` may adopt, given the instances live now (`None`: this round
    /// could not reach the database), whether the round before could not, the lease TTL and
    /// the time since the last round.
    pub fn judge(
        &mut self,
        now_ms: i64,
        live: Option<&[String]>,
        database_was_down: bool,
        ttl_ms: i64,
        round_ms: i64,
    ) -> Adopt {
        let Some(live) = live else {
            return Adopt::Held {
                until_ms: now_ms,
                why: "the database cannot be reached".into(),
            };
        };
        // Instances that vanish a round apart vanished "at once" too: what counts is every
        // instance seen live within the last TTL, against those live now.
        self.seen
            .retain(|_, at| now_ms.saturating_sub(*at) <= ttl_ms);
        let recent = self.seen.len();
        let gone = self.seen.keys().filter(|i| !live.contains(i)).count();
        let holding = self.held_until_ms.is_some_and(|until| now_ms < until);
        let hold = if database_was_down {
            Some("the database just came back".to_owned())
        } else if !holding && recent >= 2 && gone * 2 > recent {
            // (While a hold runs, the same vanished instances do not extend it.)
            Some(format!(
                "{gone} of the {recent} instances live within one lease TTL vanished"
            ))
        } else {
            None
        };
        for i in live {
            self.seen.insert(i.clone(), now_ms);
        }
        if let Some(why) = hold {
            self.held_until_ms = Some(now_ms.saturating_add(ttl_ms));
            self.why = why;
        }
        match self.held_until_ms {
            Some(until_ms) if now_ms < until_ms => Adopt::Held {
                until_ms,
                why: self.why.clone(),
            },
            _ => {
                self.held_until_ms = None;
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
        assert_eq!(b.judge(0, Some(&all), false, TTL, 3_000), Adopt::Up(3_000));
        // One of three dies: its gateways are adopted, paced.
        let two = names(&["a", "b"]);
        assert_eq!(
            b.judge(3_000, Some(&two), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn most_of_the_cluster_vanishing_at_once_holds_adoption_for_one_ttl() {
        let mut b = Brake::default();
        let five = names(&["a", "b", "c", "d", "e"]);
        b.judge(0, Some(&five), false, TTL, 3_000);
        let two = names(&["a", "b"]);
        let held = b.judge(3_000, Some(&two), false, TTL, 3_000);
        assert!(
            matches!(&held, Adopt::Held { until_ms: 18_000, why } if why.contains("3 of the 5")),
            "{held:?}"
        );
        // Still held while the TTL runs, even as the view settles.
        assert!(matches!(
            b.judge(6_000, Some(&two), false, TTL, 3_000),
            Adopt::Held { .. }
        ));
        // Past it, the others are taken to be dead: adoption goes on, paced.
        assert_eq!(
            b.judge(18_000, Some(&two), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
        // Exactly half is not more than half.
        let mut b = Brake::default();
        let four = names(&["a", "b", "c", "d"]);
        b.judge(0, Some(&four), false, TTL, 3_000);
        assert_eq!(
            b.judge(3_000, Some(&two), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn instances_vanishing_a_round_apart_hold_adoption_too() {
        let mut b = Brake::default();
        b.judge(0, Some(&names(&["a", "b", "c"])), false, TTL, 3_000);
        // b's row lapses one round, c's the next: one of three, then "one of two".
        assert_eq!(
            b.judge(3_000, Some(&names(&["a", "c"])), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
        let held = b.judge(6_000, Some(&names(&["a"])), false, TTL, 3_000);
        assert!(
            matches!(&held, Adopt::Held { until_ms: 21_000, why } if why.contains("2 of the 3")),
            "{held:?}"
        );
        // A TTL on, the two are forgotten: the brake does not hold again for them.
        assert_eq!(
            b.judge(21_000, Some(&names(&["a"])), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
        assert_eq!(
            b.judge(24_000, Some(&names(&["a"])), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }

    #[test]
    fn the_database_coming_back_holds_adoption_for_one_ttl() {
        let mut b = Brake::default();
        let all = names(&["a", "b", "c"]);
        b.judge(0, Some(&all), false, TTL, 3_000);
        assert!(matches!(
            b.judge(3_000, None, false, TTL, 3_000),
            Adopt::Held { .. }
        ));
        let back = b.judge(20_000, Some(&names(&["a"])), true, TTL, 3_000);
        assert!(
            matches!(&back, Adopt::Held { until_ms: 35_000, why } if why.contains("came back")),
            "{back:?}"
        );
        assert_eq!(
            b.judge(35_000, Some(&names(&["a"])), false, TTL, 3_000),
            Adopt::Up(3_000)
        );
    }
}
