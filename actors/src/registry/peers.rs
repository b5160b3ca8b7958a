//! How an instance of a cluster shows a gateway from its stored row (docs/design.md, *Cluster*,
//! "Reading the fleet"): the readers of the fleet (`gateway_reads` in the daemon) read the rows
//! from the database and ask the registry once per read for what only it knows — the views of
//! the gateways this instance links (their connection, breaker and live numbers are here
//! alone), which gateway acts as primary, and each owner's heartbeat cell (which stands for
//! the last-seen of the gateways that owner links, `registry/beats.rs`).
//!
//! Cost: one message to the registry per read, answered with the views it links (pointers,
//! 10,000 at 100,000 over 10 instances) and one cell per instance; no view of a gateway linked
//! elsewhere is asked for.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::model::{GatewayId, GatewayRecord, GatewayView, OwnerBeat, Vouched};

/// What the registry knows that a stored row does not (the answer to [`GatewaysHere`]).
#[derive(Debug, Clone, MessageResponse)]
pub struct Here {
    /// The registry's change counter as of this answer (as [`GatewaySnapshot::changes`]).
    ///
    /// [`GatewaySnapshot::changes`]: crate::messages::GatewaySnapshot
    pub changes: u64,
    acting: Option<GatewayId>,
    me: Option<Arc<str>>,
    views: HashMap<GatewayId, Arc<GatewayView>>,
    beats: HashMap<Arc<str>, (u64, Arc<OwnerBeat>)>,
}

/// In a cluster: [`Here`], for a reader about to show stored rows — of every gateway (`None`),
/// or of one (its view only, if linked here).
#[derive(Message)]
#[rtype(result = "Here")]
pub struct GatewaysHere(pub Option<GatewayId>);

impl Here {
    pub(super) fn new(
        changes: u64,
        acting: Option<GatewayId>,
        me: Option<&str>,
        views: HashMap<GatewayId, Arc<GatewayView>>,
        beats: HashMap<Arc<str>, (u64, Arc<OwnerBeat>)>,
    ) -> Here {
        Here {
            changes,
            acting,
            me: me.map(Arc::from),
            views,
            beats,
        }
    }

    /// Gateway `record`, stored with its lease held by `owner` (instance, epoch), as this
    /// instance shows it: its own view if it links the gateway; otherwise the row, flagged if it
    /// acts as primary, its last-seen vouched for by its owner's heartbeat while that owner
    /// lives under the epoch it took the lease with.
    pub fn view_of(&self, record: GatewayRecord, owner: Option<(String, u64)>) -> Arc<GatewayView> {
        if let Some(view) = self.views.get(&record.id) {
            return view.clone();
        }
        let vouched = owner
            .filter(|(instance, _)| Some(instance.as_str()) != self.me.as_deref())
            .and_then(|(instance, epoch)| {
                let (known, cell) = self.beats.get(instance.as_str())?;
                (*known == epoch).then(|| Vouched::by(cell))
            })
            .unwrap_or_default();
        let acting = self.acting == Some(record.id);
        Arc::new(GatewayView {
            vouched,
            ..GatewayView::unlinked(record, acting)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BreakerInfo, ConnectionInfo, LiveReadings};

    fn record(id: i64) -> GatewayRecord {
        GatewayRecord::new(GatewayId(id), format!("gw{id}"), "127.0.0.1".into(), 1)
    }

    fn view(record: GatewayRecord) -> GatewayView {
        GatewayView {
            record,
            acting_primary: false,
            connection: ConnectionInfo::none(),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Vouched::default(),
        }
    }

    fn here(views: Vec<GatewayView>) -> (Here, Arc<OwnerBeat>) {
        let cell = Arc::new(OwnerBeat::default());
        cell.beat(1_000);
        let beats = HashMap::from([(Arc::from("b"), (3, cell.clone()))]);
        let views = views
            .into_iter()
            .map(|v| (v.record.id, Arc::new(v)))
            .collect();
        (
            Here::new(7, Some(GatewayId(2)), Some("a"), views, beats),
            cell,
        )
    }

    /// A gateway this instance links is shown as its registry has it (the link's connection is
    /// known here only), not as the row says.
    #[test]
    fn a_gateway_linked_here_is_the_registry_s_own_view() {
        let mut mine = view(record(1));
        mine.connection = Arc::new(ConnectionInfo {
            last_error: Some(crate::model::LinkError {
                code: "CONNECTION_REFUSED".into(),
                message: "refused".into(),
                retryable: true,
            }),
            ..ConnectionInfo::default()
        });
        let (here, _) = here(vec![mine]);
        let shown = here.view_of(record(1), Some(("a".into(), 1)));
        let error = shown
            .connection
            .last_error
            .as_ref()
            .map(|e| e.code.as_str());
        assert_eq!(error, Some("CONNECTION_REFUSED"));
    }

    /// Another instance's gateway reads its owner's heartbeat as last-seen while the owner
    /// lives under the epoch of its lease; a lease of an epoch the owner has left, or none,
    /// vouches for nothing; the acting primary is flagged whoever links it.
    #[test]
    fn a_gateway_linked_elsewhere_is_vouched_for_by_its_owner_s_epoch_only() {
        let (here, cell) = here(Vec::new());
        let mut r = record(2);
        r.status = crate::model::GatewayStatus::Online;
        let shown = here.view_of(r.clone(), Some(("b".into(), 3)));
        assert_eq!(shown.last_seen(), Some(1_000));
        assert!(shown.linked_elsewhere());
        assert!(shown.acting_primary);
        cell.set_lapsed(true);
        assert!(!shown.linked_elsewhere(), "its owner's row lapsed");
        for owner in [Some(("b".into(), 2)), Some(("c".into(), 1)), None] {
            let shown = here.view_of(r.clone(), owner.clone());
            assert_eq!(shown.last_seen(), None, "{owner:?}");
        }
        assert!(!here.view_of(record(3), None).acting_primary);
    }

    /// A row that names this instance as owner but that the registry does not link (a lease
    /// just lost) is not vouched for by this instance's own heartbeat.
    #[test]
    fn a_row_owned_here_but_not_linked_is_vouched_for_by_nobody() {
        let (mut here, cell) = here(Vec::new());
        here.beats.insert(Arc::from("a"), (1, cell));
        let shown = here.view_of(record(4), Some(("a".into(), 1)));
        assert_eq!(shown.vouched.at(), None);
    }
}
