//! Last-seen of the gateways other instances link, without a write per gateway: each instance's
//! heartbeat stands for every gateway it links (docs/design.md, *Cluster*, last-seen). The
//! runner hands over, each round, every live instance's epoch and last heartbeat (O(instances));
//! the change feed hands over who holds each lease, only when that changes. A view holds its
//! owner's cell ([`OwnerBeat`]) and reads it when shown, so a round moves one number per
//! instance and touches no view.
//!
//! Consistency: a cell is per instance and epoch. A lease taken under an epoch the instance
//! has since left (its row lapsed) gets no cell, and the cell of an epoch left behind is no
//! longer moved: its gateways read the last heartbeat of the epoch that linked them. A cell
//! whose instance and epoch a round did not list is lapsed until a round lists it again (a
//! lease read before the round that shows its new epoch is not held against it).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{GatewayId, OwnerBeat};

/// One live instance as a round saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceBeat {
    pub instance: String,
    pub epoch: u64,
    /// Its row's last renewal, Unix seconds.
    pub at: i64,
}

/// Who holds a gateway's lease now, as the change feed read it (`owner`: instance and epoch;
/// `None`: released, nobody).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    pub gateway: GatewayId,
    pub owner: Option<(String, u64)>,
}

/// The heartbeat cell of each instance, under its latest known epoch.
#[derive(Debug, Default)]
pub(super) struct Beats {
    cells: HashMap<Arc<str>, (u64, Arc<OwnerBeat>)>,
    /// The last round saw an instance of the previous version (epoch 0: its leases are timed
    /// and name no epoch). It reads last-seen from the rows alone, so while one runs (a rolling
    /// upgrade) owners keep rewriting them each minute, as before.
    previous_version: bool,
}

impl Beats {
    /// A round's heartbeats: each instance's cell moves on (a new one under a newer epoch).
    pub(super) fn round(&mut self, beats: &[InstanceBeat]) {
        self.previous_version = beats.iter().any(|b| b.epoch == 0);
        for beat in beats.iter().filter(|b| b.epoch > 0) {
            if let Some(cell) = self.cell(&beat.instance, beat.epoch) {
                cell.beat(beat.at);
            }
        }
        for (instance, (epoch, cell)) in &self.cells {
            let live = beats
                .iter()
                .any(|b| *b.instance == **instance && b.epoch == *epoch);
            cell.set_lapsed(!live);
        }
    }

    /// Every instance's cell under its latest known epoch (for a reader of stored rows,
    /// `registry/peers.rs`): one per instance.
    pub(super) fn cells(&self) -> HashMap<Arc<str>, (u64, Arc<OwnerBeat>)> {
        self.cells.clone()
    }

    /// Whether owners here may leave last-seen to their heartbeats: no instance of the
    /// previous version is live.
    pub(super) fn stand_for_last_seen(&self) -> bool {
        !self.previous_version
    }

    /// The cell of `instance` under `epoch`: the known one, a new one for an epoch newer than
    /// any seen (a lease read before the heartbeat that shows it), none for an older one.
    pub(super) fn cell(&mut self, instance: &str, epoch: u64) -> Option<Arc<OwnerBeat>> {
        match self.cells.get(instance) {
            Some((known, cell)) if *known == epoch => Some(cell.clone()),
            Some((known, _)) if *known > epoch => None,
            known => {
                if let Some((_, left)) = known {
                    left.set_lapsed(true);
                }
                let cell = Arc::new(OwnerBeat::default());
                self.cells.insert(instance.into(), (epoch, cell.clone()));
                Some(cell)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(instance: &str, epoch: u64, at: i64) -> InstanceBeat {
        InstanceBeat {
            instance: instance.into(),
            epoch,
            at,
        }
    }

    #[test]
    fn a_cell_moves_with_its_instances_beats_under_its_epoch_only() {
        let mut beats = Beats::default();
        // The lease is read before the owner's first heartbeat here.
        let a3 = beats.cell("a", 3).unwrap();
        assert_eq!(a3.at(), None);
        beats.round(&[beat("a", 3, 100), beat("b", 1, 101)]);
        assert_eq!(a3.at(), Some(100));
        assert!(Arc::ptr_eq(&a3, &beats.cell("a", 3).unwrap()));
        // `a`'s row lapsed and came back: the leases of epoch 3 ended with their last beat.
        beats.round(&[beat("a", 4, 110)]);
        assert_eq!(a3.at(), Some(100));
        assert_eq!(beats.cell("a", 4).unwrap().at(), Some(110));
        assert!(
            beats.cell("a", 3).is_none(),
            "an epoch left behind vouches for nothing"
        );
        assert_eq!(beats.cell("b", 1).unwrap().at(), Some(101));
    }

    /// Whether the instance that holds a lease still answers for it: a cell lapses with the
    /// round that no longer lists its instance and epoch (it lapsed, or came back under a new
    /// epoch), and a cell made for a lease read ahead of the round that lists it is not held
    /// lapsed once a round does.
    #[test]
    fn a_cell_is_lapsed_while_the_last_round_did_not_list_its_instance_and_epoch() {
        let mut beats = Beats::default();
        let a3 = beats.cell("a", 3).unwrap();
        let b1 = beats.cell("b", 1).unwrap();
        assert!(!a3.lapsed(), "no round yet: held live");
        beats.round(&[beat("a", 3, 100), beat("b", 1, 100)]);
        assert!(!a3.lapsed() && !b1.lapsed());
        beats.round(&[beat("a", 3, 103)]);
        assert!(b1.lapsed(), "b's row lapsed");
        beats.round(&[beat("a", 3, 106), beat("b", 1, 106)]);
        assert!(!b1.lapsed(), "listed again (a late round is not the end)");
        // A lease of `a`'s next epoch is read before a round lists it.
        let a4 = beats.cell("a", 4).unwrap();
        assert!(a3.lapsed(), "a newer epoch ends the old one");
        assert!(!a4.lapsed());
        beats.round(&[beat("a", 3, 109), beat("b", 1, 109)]);
        assert!(a4.lapsed() && a3.lapsed());
        beats.round(&[beat("a", 4, 112), beat("b", 1, 112)]);
        assert!(!a4.lapsed());
    }

    /// A rolling upgrade: while an instance of the previous version beats, it reads last-seen
    /// from the rows, so they are kept as before; once it is gone, heartbeats stand for it.
    #[test]
    fn heartbeats_stand_for_last_seen_only_once_no_previous_version_runs() {
        let mut beats = Beats::default();
        assert!(beats.stand_for_last_seen());
        beats.round(&[beat("a", 2, 100), beat("old", 0, 100)]);
        assert!(!beats.stand_for_last_seen());
        assert!(!beats.cells.contains_key("old"), "no epoch: no cell");
        beats.round(&[beat("a", 2, 103)]);
        assert!(beats.stand_for_last_seen());
    }
}
