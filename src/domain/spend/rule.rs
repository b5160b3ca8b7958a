//! Whether a budget admits one more run: checked by the store inside the transaction that
//! reads the budget's ledger and writes the reservation (`db/spend.rs`), so that the answer
//! is exact across instances. Pure.

use serde::Serialize;

/// US dollars in millionths: the ledger adds and compares integers.
pub type Micros = i64;

/// What a budget allows per window (`None`: no limit of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_spend: Option<Micros>,
    pub max_runs: Option<i64>,
    pub max_parallel: Option<i64>,
}

/// A budget's ledger in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Settled runs' cost (the gateway's own number, or the estimate where it gave none).
    pub spent_micros: Micros,
    /// Runs not settled yet: their estimates, held.
    pub reserved_micros: Micros,
    /// Runs started (settled or not).
    pub runs: i64,
    /// Runs not settled yet.
    pub running: i64,
}

/// Which limit refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Breach {
    /// `spent + reserved + estimate` would pass `max_spend_usd`.
    Spend,
    /// `max_runs` started in this window.
    Runs,
    /// `max_parallel_runs` running now.
    Parallel,
}

impl Breach {
    pub fn as_str(self) -> &'static str {
        match self {
            Breach::Spend => "max_spend_usd",
            Breach::Runs => "max_runs",
            Breach::Parallel => "max_parallel_runs",
        }
    }
}

/// Whether `limits` admit one more run reserving `estimate`, given `tally`.
pub fn admit(limits: Limits, tally: Tally, estimate: Micros) -> Result<(), Breach> {
    let committed = tally
        .spent_micros
        .saturating_add(tally.reserved_micros)
        .saturating_add(estimate);
    if limits.max_spend.is_some_and(|max| committed > max) {
        return Err(Breach::Spend);
    }
    if limits.max_runs.is_some_and(|max| tally.runs >= max) {
        return Err(Breach::Runs);
    }
    if limits.max_parallel.is_some_and(|max| tally.running >= max) {
        return Err(Breach::Parallel);
    }
    Ok(())
}

/// Whether admitting took the budget's committed spend across `soft` (so it is said once).
pub fn crossed_soft(soft: Option<Micros>, before: Tally, estimate: Micros) -> bool {
    let committed = before.spent_micros.saturating_add(before.reserved_micros);
    soft.is_some_and(|soft| committed < soft && committed.saturating_add(estimate) >= soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_admits_up_to_its_max_counting_what_is_held() {
        let limits = Limits {
            max_spend: Some(3_000_000),
            ..Limits::default()
        };
        let mut tally = Tally::default();
        let mut admitted = 0;
        while admit(limits, tally, 1_000_000).is_ok() {
            tally.reserved_micros += 1_000_000;
            tally.runs += 1;
            admitted += 1;
        }
        assert_eq!(admitted, 3, "exactly three estimates fit in three");
        assert_eq!(admit(limits, tally, 1), Err(Breach::Spend));
        // Settled cheaper than estimated: the difference is free again.
        tally.reserved_micros = 1_000_000;
        tally.spent_micros = 400_000;
        assert!(admit(limits, tally, 1_000_000).is_ok());
    }

    #[test]
    fn runs_and_parallel_runs_are_counted_apart_from_spend() {
        let tally = Tally {
            runs: 5,
            running: 2,
            ..Tally::default()
        };
        let runs = Limits {
            max_runs: Some(5),
            ..Limits::default()
        };
        assert_eq!(admit(runs, tally, 0), Err(Breach::Runs));
        let parallel = Limits {
            max_parallel: Some(2),
            ..Limits::default()
        };
        assert_eq!(admit(parallel, tally, 0), Err(Breach::Parallel));
        assert!(admit(Limits::default(), tally, i64::MAX).is_ok());
        assert!(crossed_soft(
            Some(10),
            Tally {
                spent_micros: 5,
                ..tally
            },
            5
        ));
        assert!(
            !crossed_soft(
                Some(10),
                Tally {
                    spent_micros: 10,
                    ..tally
                },
                5
            ),
            "said once"
        );
    }
}
