//! The fleet as a key sees it: the one door through which a handler asks whether a gateway —
//! and so everything on it: a session, an approval, a spawn, an operation, an event, a log
//! line — is in the caller's scope (docs/design.md, *Tenancy*). The rule is
//! `tenancy::Scope::sees`; this applies it to the gateways as they are now.
//!
//! Three answers, as the issue of record asks: a read of one object out of scope is its
//! not-found (it does not reveal the object exists), a list leaves it out, an action whose
//! gateways reach outside is 403 `out_of_scope`. A gateway named in the path (`{id}`,
//! `{gateway_id}`) is checked before the handler runs, by the route's scope
//! ([`gateway_in_path`], declared in `api_routes.rs`), so no handler of such a route can
//! forget it.
//!
//! Cost: a platform key (every key made before tenancy) answers every question without a
//! lookup — the cached list bodies stay cached. A scoped key costs one wait-free load per
//! gateway asked about (`gateway_reads::CallTargets`, no lock, no mailbox) and one selector match;
//! in a cluster, a gateway in the path this instance has not heard of costs one row read first
//! ([`gateway_in_path`]).

use std::collections::BTreeSet;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::messages::Within;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::registry::KnowGateway;

use super::AppState;
use super::error::ApiError;
use super::route_check::Wait;
use crate::auth::Principal;
use crate::gateway_reads::CallTargets;
use crate::tenancy::{Reserved, Scope};

/// What every key's view is made from: the gateways as they are now and the labels only a
/// platform key sets.
#[derive(Clone)]
pub struct Scopes {
    targets: CallTargets,
    reserved: Reserved,
}

impl Scopes {
    pub fn new(targets: CallTargets, reserved: Reserved) -> Scopes {
        Scopes { targets, reserved }
    }

    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }

    /// The registered gateways of `tenant`.
    pub fn tenant_gateways(&self, tenant: &str) -> Vec<GatewayId> {
        self.targets
            .ids_labelled(|l| crate::tenancy::tenant_of(l) == tenant)
    }

    /// What `principal` sees.
    pub fn of(&self, principal: &Principal) -> Visible {
        Visible::new(Arc::clone(&principal.scope), self)
    }
}

/// The caller's scope and the gateways as they are now.
#[derive(Clone)]
pub struct Visible {
    scope: Arc<Scope>,
    targets: CallTargets,
    reserved: Reserved,
}

impl Visible {
    pub fn new(scope: Arc<Scope>, scopes: &Scopes) -> Visible {
        Visible {
            scope,
            targets: scopes.targets.clone(),
            reserved: scopes.reserved.clone(),
        }
    }

    /// The labels of a gateway this key registers ([`Scope::labels_for_new`]).
    pub fn labels_for_new(&self, given: &Labels) -> Result<Labels, ApiError> {
        self.scope
            .labels_for_new(given, &self.reserved)
            .map_err(ApiError::OutOfScope)
    }

    /// Whether this key may give gateway `id` the labels `new` instead of its own.
    pub fn relabel(&self, id: GatewayId, new: &Labels) -> Result<(), ApiError> {
        if self.sees_all() {
            return Ok(());
        }
        let old = self
            .targets
            .labels_of(id)
            .ok_or(ApiError::GatewayNotFound(id))?;
        self.scope
            .may_relabel(&old, new, &self.reserved)
            .map_err(ApiError::OutOfScope)
    }

    /// Whether this key may set (or remove) each label `keys` names.
    pub fn may_set_labels<'a>(
        &self,
        mut keys: impl Iterator<Item = &'a str>,
    ) -> Result<(), ApiError> {
        match keys.find(|k| !self.scope.may_set_label(k, &self.reserved)) {
            None => Ok(()),
            Some(key) => Err(ApiError::OutOfScope(format!(
                "label `{key}` is reserved: only a platform key sets it"
            ))),
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether the key sees every gateway (no check is needed).
    pub fn sees_all(&self) -> bool {
        self.scope.is_platform()
    }

    /// Whether gateway `id` is in scope. A gateway no longer registered is in a platform key's
    /// scope only (a scoped key cannot tell whose it was).
    pub fn gateway(&self, id: GatewayId) -> bool {
        self.sees_all()
            || self
                .targets
                .labels_of(id)
                .is_some_and(|labels| self.scope.sees(&labels))
    }

    /// Whether a gateway with these labels is in scope.
    pub fn labels(&self, labels: &Labels) -> bool {
        self.sees_all() || self.scope.sees(labels)
    }

    /// Gateway `id`, or its not-found when out of scope.
    pub fn one(&self, id: GatewayId) -> Result<(), ApiError> {
        if self.gateway(id) {
            Ok(())
        } else {
            Err(ApiError::GatewayNotFound(id))
        }
    }

    /// `items` without those on gateways out of scope (`gateway` names an item's gateway;
    /// `None`: on none, which a scoped key does not see).
    pub fn retain<T>(&self, items: &mut Vec<T>, gateway: impl Fn(&T) -> Option<GatewayId>) {
        if !self.sees_all() {
            items.retain(|item| gateway(item).is_some_and(|id| self.gateway(id)));
        }
    }

    /// Whether every one of `ids` is in scope (an object on several gateways, an operation, is
    /// seen when all its gateways are).
    pub fn all(&self, ids: impl IntoIterator<Item = GatewayId>) -> bool {
        self.sees_all() || ids.into_iter().all(|id| self.gateway(id))
    }

    /// An action on `ids`: refused with 403 `out_of_scope` when any is outside.
    pub fn reach(&self, ids: &[GatewayId]) -> Result<(), ApiError> {
        if self.sees_all() {
            return Ok(());
        }
        let outside = ids.iter().filter(|id| !self.gateway(**id)).count();
        if outside == 0 {
            Ok(())
        } else {
            Err(ApiError::OutOfScope(format!(
                "{outside} of the {} gateways this action picks are outside this key's scope; \
                 narrow the selector",
                ids.len()
            )))
        }
    }

    /// Every registered gateway this key sees (`None`: every gateway, registered or not — a
    /// platform key's).
    pub fn ids(&self) -> Option<BTreeSet<GatewayId>> {
        if self.sees_all() {
            return None;
        }
        Some(
            self.targets
                .ids_labelled(|l| self.scope.sees(l))
                .into_iter()
                .collect(),
        )
    }

    /// `picked` (a selector's gateways, `None`: no selector) narrowed to the ones this key sees.
    pub fn narrow(&self, picked: Option<BTreeSet<GatewayId>>) -> Option<BTreeSet<GatewayId>> {
        match (picked, self.ids()) {
            (picked, None) => picked,
            (None, mine) => mine,
            (Some(picked), Some(mine)) => Some(picked.intersection(&mine).copied().collect()),
        }
    }

    /// The gateways this key sees, for a listing the registry filters before it counts and
    /// pages (`None`: every gateway).
    pub fn within(&self) -> Option<Within> {
        if self.sees_all() {
            return None;
        }
        let me = self.clone();
        Some(Within(Arc::new(move |id| me.gateway(id))))
    }

    /// A run of `agent` (`None`: the gateway's default agent) started or steered by this key.
    pub fn agent(&self, agent: Option<&str>) -> Result<(), ApiError> {
        if self.scope.allows_agent(agent) {
            Ok(())
        } else {
            Err(ApiError::OutOfScope(match agent {
                Some(a) => format!(
                    "agent `{}` is not one this key may run",
                    gateway_supervisor_actors::bounded::text(a, 64)
                ),
                None => "this key may run named agents only: name the agent".into(),
            }))
        }
    }
}

impl FromRequest for Visible {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>();
        let principal = req.extensions().get::<Principal>().cloned();
        ready(match (state, principal) {
            (Some(state), Some(p)) => Ok(state.scopes.of(&p)),
            (None, _) => Err(ApiError::Internal("application state missing".into())),
            (_, None) => Err(ApiError::Unauthorized("missing API key".into())),
        })
    }
}

/// A route's check (`api_routes.rs`): the gateway its path names (`{id}` in the gateway
/// scopes, `{gateway_id}` in the approvals') is in the caller's scope, or the request is the
/// gateway's not-found — before the handler runs.
///
/// In a cluster, a gateway this instance has not heard of may be one a peer registered a
/// moment ago, before the change feed brought it: the check then waits for the registry to read
/// its row (`registry::KnowGateway`, one row read; the store's timeouts bound it) and asks
/// again, as a platform key's write does in the registry. A gateway in the database nowhere is
/// the same not-found; a read that fails is 503 (whether it exists is unknown).
pub fn gateway_in_path(req: &ServiceRequest, caller: &Principal) -> Result<Option<Wait>, ApiError> {
    if caller.scope.is_platform() {
        return Ok(None);
    }
    let info = req.match_info();
    let Some(text) = info.get("id").or_else(|| info.get("gateway_id")) else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    // A path that names no gateway id is the handler's to refuse (its own 400 or 404).
    let Some(id) = text
        .parse::<i64>()
        .ok()
        .and_then(|n| GatewayId::try_from(n).ok())
    else {
        return Ok(None);
    };
    let visible = state.scopes.of(caller);
    if state.cluster.is_none() || visible.targets.get(id).is_some() {
        return visible.one(id).map(|()| None);
    }
    let registry = state.registry.clone();
    Ok(Some(Box::pin(async move {
        registry.send(KnowGateway(id)).await??;
        visible.one(id)
    })))
}
