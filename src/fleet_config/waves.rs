//! The wave plan of a rollout (Nomad's `update` stanza): the canaries first, as one wave,
//! then the rest `max_parallel` at a time, in the order given. Pure.

use gateway_supervisor_actors::model::GatewayId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub canary: bool,
    pub gateways: Vec<GatewayId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("max_parallel must be at least 1")]
    NoParallelism,
    #[error("canary must be between 0 and the number of gateways ({0})")]
    TooManyCanaries(usize),
    #[error("no gateway to roll out to")]
    Empty,
}

/// The waves for `gateways` (in order): `canary` of them first, then `max_parallel` at a time.
pub fn plan(
    gateways: &[GatewayId],
    canary: usize,
    max_parallel: usize,
) -> Result<Vec<Wave>, PlanError> {
    if gateways.is_empty() {
        return Err(PlanError::Empty);
    }
    if max_parallel == 0 {
        return Err(PlanError::NoParallelism);
    }
    if canary > gateways.len() {
        return Err(PlanError::TooManyCanaries(gateways.len()));
    }
    let (canaries, rest) = gateways.split_at(canary);
    let mut waves = Vec::new();
    if !canaries.is_empty() {
        waves.push(Wave {
            canary: true,
            gateways: canaries.to_vec(),
        });
    }
    waves.extend(rest.chunks(max_parallel).map(|c| Wave {
        canary: false,
        gateways: c.to_vec(),
    }));
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canaries_go_first_then_the_rest_max_parallel_at_a_time() {
        let ids: Vec<GatewayId> = (1..=6).map(GatewayId).collect();
        let waves = plan(&ids, 1, 2).unwrap();
        let shape: Vec<(bool, Vec<i64>)> = waves
            .into_iter()
            .map(|w| (w.canary, w.gateways.iter().map(|g| g.get()).collect()))
            .collect();
        assert_eq!(
            shape,
            [
                (true, vec![1]),
                (false, vec![2, 3]),
                (false, vec![4, 5]),
                (false, vec![6])
            ]
        );
    }

    #[test]
    fn every_refusal_says_why() {
        assert_eq!(plan(&[], 0, 1), Err(PlanError::Empty));
        assert_eq!(plan(&[GatewayId(1)], 0, 0), Err(PlanError::NoParallelism));
        assert_eq!(
            plan(&[GatewayId(1), GatewayId(2)], 3, 1),
            Err(PlanError::TooManyCanaries(2))
        );
        assert_eq!(
            plan(&[GatewayId(1), GatewayId(2)], 2, 1).unwrap().len(),
            1,
            "all canaries: one wave"
        );
    }

    proptest! {
        #[test]
        fn every_gateway_is_in_exactly_one_wave_in_order(n in 1usize..200, canary in 0usize..10, par in 1usize..60) {
            let ids: Vec<GatewayId> = (1..=n as i64).map(GatewayId).collect();
            let canary = canary.min(n);
            let waves = plan(&ids, canary, par).unwrap();
            let flat: Vec<GatewayId> = waves.iter().flat_map(|w| w.gateways.clone()).collect();
            prop_assert_eq!(flat, ids);
            prop_assert!(waves.iter().filter(|w| !w.canary).all(|w| !w.gateways.is_empty() && w.gateways.len() <= par));
            prop_assert_eq!(waves.iter().filter(|w| w.canary).map(|w| w.gateways.len()).sum::<usize>(), canary);
        }
    }
}
