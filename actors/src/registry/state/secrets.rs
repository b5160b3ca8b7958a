//! Secrets stay with the owner (docs/design.md, *Cluster*): an instance of a cluster holds the
//! shared and device tokens of the gateways it links, and of no other. Every instance used to
//! keep every gateway's decrypted tokens — at 100,000 over 10 instances, 90,000 it never dials
//! — so a memory disclosure or a core dump of any one of them gave the whole fleet's.
//!
//! The rule: a record of a gateway this instance may not link is kept without its secrets
//! (`GatewayRecord::leave_secrets`, whether it has a shared token still shown), however it
//! arrives (loaded at start, from the change feed, read back after a write made here); a lease
//! that goes elsewhere, or lapses, drops them. A link about to start for a gateway whose record
//! has none asks the store for them first, all those of one input in one read
//! ([`RegistryAction::ReadSecrets`]), and starts when they come ([`Input::SecretsRead`]) if the
//! gateway is still this instance's and not linked meanwhile; a read that failed is asked
//! again a second later. The cost: one indexed read per round that adopts gateways, not per
//! gateway. Alone every gateway is linked here and nothing changes.
//!
//! Checked by `state_tests/secrets.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::RegistryState;
use crate::model::{GatewayId, Secrets};
use crate::registry::RegistryAction;
use crate::store::GatewaySecrets;

/// How long a failed read of secrets waits before it is asked again.
const SECRETS_RETRY: Duration = Duration::from_secs(1);

/// The reads of secrets under way.
#[derive(Default)]
pub(super) struct SecretReads {
    /// Asked of the store and not answered yet.
    asked: HashSet<GatewayId>,
    /// To ask at the end of the input being applied.
    wanted: Vec<GatewayId>,
}

impl RegistryState {
    /// Whether gateway `id`'s record is without its secrets: then they are asked for (once,
    /// however often this is asked before they come), and the caller starts no link yet.
    pub(super) fn secrets_missing(&mut self, id: GatewayId) -> bool {
        let Some(view) = self.gateways.get(&id) else {
            return false;
        };
        if view.record.secrets == Secrets::Carried {
            return false;
        }
        if self.secrets.asked.insert(id) {
            self.secrets.wanted.push(id);
        }
        true
    }

    /// Gateway `id` is linked elsewhere (or by nobody) now: its record keeps no secret.
    pub(super) fn leave_secrets_if_elsewhere(&mut self, id: GatewayId) {
        if self.ownership.may_link(id) {
            return;
        }
        if let Some(view) = self.gateways.get_mut(&id)
            && view.record.secrets == Secrets::Carried
        {
            Arc::make_mut(view).record.leave_secrets();
        }
    }

    /// The read of the secrets asked in this input, if any (at its end: one read for all).
    pub(super) fn ask_for_secrets(&mut self, out: &mut Vec<RegistryAction>) {
        if !self.secrets.wanted.is_empty() {
            out.push(RegistryAction::ReadSecrets {
                ids: std::mem::take(&mut self.secrets.wanted),
                after: None,
            });
        }
    }

    /// The store's answer for `asked`: `read`, or `None` when the read failed.
    pub(super) fn secrets_read(
        &mut self,
        asked: Vec<GatewayId>,
        read: Option<Vec<GatewaySecrets>>,
        out: &mut Vec<RegistryAction>,
    ) {
        // Answered (a gateway deleted since is not in `read`), or asked again below.
        for id in &asked {
            self.secrets.asked.remove(id);
        }
        let Some(read) = read else {
            // Asked again later, those still to be linked here.
            let mut again = asked;
            again.retain(|id| self.ownership.may_link(*id) && self.gateways.contains_key(id));
            if !again.is_empty() {
                self.secrets.asked.extend(again.iter().copied());
                out.push(RegistryAction::ReadSecrets {
                    ids: again,
                    after: Some(SECRETS_RETRY),
                });
            }
            return;
        };
        let mut ids = Vec::with_capacity(read.len());
        for s in read {
            if !self.ownership.may_link(s.id) || self.linked.contains_key(&s.id) {
                continue;
            }
            if let Some(view) = self.gateways.get_mut(&s.id) {
                // A record the change feed brought meanwhile carries newer secrets than these.
                if view.record.secrets != Secrets::Carried {
                    Arc::make_mut(view)
                        .record
                        .carry_secrets(s.token, s.device_token);
                }
                ids.push(s.id);
            }
        }
        for id in ids {
            self.start_link(id, false, out);
        }
    }
}
