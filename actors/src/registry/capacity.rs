//! A daemon alone on its database links at most as many gateways as it can hold (its
//! open-file limit less a reserve, or `cluster.max_gateways`); in a cluster placement keeps
//! each instance within its own, and this rule is not asked. The gateways beyond wait,
//! **unplaced**, and are linked lowest id first as room is made. Pure; asked by
//! [`RegistryState::start_link`](super::RegistryState) and checked by `state_tests/links.rs`.

use std::collections::BTreeSet;

use crate::model::{GatewayId, GatewayView, LinkError};

/// The `last_error.code` of a gateway no instance has room for.
pub const UNPLACED: &str = "unplaced";

#[derive(Debug, Default)]
pub(super) struct Capacity {
    most: Option<usize>,
    waiting: BTreeSet<GatewayId>,
}

impl Capacity {
    pub(super) fn set(&mut self, most: Option<usize>) {
        self.most = most;
    }

    /// With `linked` gateways linked, of which `id` is not (`is_linked`: it is): the bound,
    /// when `id` has to wait.
    pub(super) fn full(&self, linked: usize, is_linked: bool) -> Option<usize> {
        let most = self.most?;
        (!is_linked && linked >= most).then_some(most)
    }

    pub(super) fn wait(&mut self, id: GatewayId) {
        self.waiting.insert(id);
    }

    /// Gateway `id` is linked, or gone: it waits no more.
    pub(super) fn leave(&mut self, id: GatewayId) {
        self.waiting.remove(&id);
    }

    /// The waiting gateway to link first.
    pub(super) fn first_waiting(&self) -> Option<GatewayId> {
        self.waiting.first().copied()
    }

    pub(super) fn waiting(&self) -> &BTreeSet<GatewayId> {
        &self.waiting
    }
}

/// What an unplaced gateway's view says instead of a link's error.
pub(super) fn unplaced_error(most: usize) -> LinkError {
    LinkError {
        code: UNPLACED.to_owned(),
        message: format!(
            "not linked: this daemon links at most {most} gateways (its open-file limit less \
             a reserve, or cluster.max_gateways); delete a gateway, raise LimitNOFILE, or run \
             more instances on PostgreSQL"
        ),
        retryable: true,
    }
}

impl GatewayView {
    /// A gateway the daemon alone has no room for (its view says so instead of a link's
    /// error).
    pub fn unplaced(&self) -> bool {
        self.connection
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == UNPLACED)
    }
}
