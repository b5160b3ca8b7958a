//! The registry's mailbox: gateway reads and writes from the HTTP front-end and the fleet,
//! the links' handles, the fleet's sessions, and every gateway as a call target. The links'
//! own messages (their mailbox and their reports upward) live beside the link
//! (`link/messages.rs`).

use std::sync::Arc;

use actix::{Message, MessageResponse};

use crate::link::handle::GatewayLink;
use crate::model::{Caller, GatewayId, GatewayPatch, GatewayView, NewGateway};
use crate::primary::PrimaryRuleError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("gateway {0} not found")]
    NotFound(GatewayId),
    #[error("a gateway named `{0}` already exists")]
    DuplicateName(String),
    /// Another gateway already has this host and port: two links to one gateway would be two
    /// owners of it.
    #[error("gateway `{name}` (id {id}) already has the address {host}:{port}")]
    DuplicateAddress {
        id: GatewayId,
        name: String,
        host: String,
        port: u16,
    },
    #[error(transparent)]
    Primary(#[from] PrimaryRuleError),
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelError),
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
    /// The blocking thread running a store call went away.
    #[error("the storage call did not finish: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(id) => RegistryError::NotFound(id),
            StoreError::DuplicateName(name) => RegistryError::DuplicateName(name),
            StoreError::DuplicateAddress {
                id,
                name,
                host,
                port,
            } => RegistryError::DuplicateAddress {
                id,
                name,
                host,
                port,
            },
            StoreError::Labels(e) => RegistryError::Labels(e),
            e @ StoreError::Backend(_) => RegistryError::Store(e),
        }
    }
}

/// All gateways, primary first, then by name. A shared snapshot: cheap to hand out.
#[derive(Message)]
#[rtype(result = "GatewaySnapshot")]
pub struct ListGateways;

/// The gateway list as of one value of the registry's change counter
/// ([`RegistryActor::changes`](crate::registry::RegistryActor::changes)): whatever a reader
/// derives from `views` stays current while the counter still reads `changes`, but for the
/// live numbers (latency, last seen, last frame), which each view reads from its link when
/// asked ([`GatewayView::latency`](crate::model::GatewayView::latency)).
#[derive(Clone, MessageResponse)]
pub struct GatewaySnapshot {
    pub changes: u64,
    /// The gateways with a view here (alone: every one), in the list's order.
    pub views: Arc<Vec<Arc<GatewayView>>>,
    /// In a cluster, every other gateway as this instance keeps it (no record: for counts and
    /// the alert watch's facts; `registry/peer_table.rs`). Alone, none.
    pub peers: crate::registry::peer_table::PeersHeld,
}

/// The gateway list, only when the registry's own view of it (records, status, connection,
/// breaker, roles) changed since the caller's `changes` (`None`: not asked yet). The live
/// numbers (latency, last seen) are not such a change: they move with every pong. For a
/// reader that looks every second and needs only what the registry decides (the alert
/// watch): at 10,000 gateways a list rebuilt for every pong would be copied every time.
#[derive(Message)]
#[rtype(result = "Option<GatewaySnapshot>")]
pub struct GatewaysChangedSince(pub Option<u64>);

#[derive(Message)]
#[rtype(result = "Option<GatewayView>")]
pub struct GetGateway(pub GatewayId);

#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct CreateGateway {
    pub new: NewGateway,
    pub by: Caller,
}

#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct UpdateGateway {
    pub id: GatewayId,
    pub patch: GatewayPatch,
    pub by: Caller,
}

/// Cordons (`true`) or uncordons a gateway.
#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct SetCordon {
    pub id: GatewayId,
    pub cordoned: bool,
    pub by: Caller,
}

/// Puts a gateway in maintenance (`Some`) or ends it (`None`). With `expired_by`, ends it only
/// if its window ended by then (`Ok(None)` when it had not).
#[derive(Message)]
#[rtype(result = "Result<Option<GatewayView>, RegistryError>")]
pub struct SetMaintenance {
    pub id: GatewayId,
    pub maintenance: Option<crate::model::Maintenance>,
    pub expired_by: Option<i64>,
    pub by: Caller,
}

/// Applies a merge patch to a gateway's labels.
#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct PatchLabels {
    pub id: GatewayId,
    pub patch: crate::labels::LabelPatch,
    pub by: Caller,
}

/// Records (`Some`) or clears (`None`) the suspension this daemon made on a gateway.
#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct SetSuspension {
    pub id: GatewayId,
    pub suspension_id: Option<String>,
    pub by: Caller,
}

#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct DeleteGateway {
    pub id: GatewayId,
    pub by: Caller,
    /// The gateway is gone for good (a managed gateway whose process failed): the last
    /// gateway may then be deleted though it is the primary (`primary::check_delete`).
    pub lost: bool,
}

/// Answered as soon as the actor runs its mailbox: the watchdog's proof of life.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;

/// The live links (all, or one gateway's).
#[derive(Message)]
#[rtype(result = "Vec<LinkHandle>")]
pub struct Links(pub Option<GatewayId>);

/// The live links of these gateways (those that have one).
#[derive(Message)]
#[rtype(result = "Vec<LinkHandle>")]
pub struct LinksOf(pub Vec<GatewayId>);

/// The gateways linked here whose handshake advertised this method: ids only, so a loop that
/// looks at the fleet every few seconds (the log tail) does not copy 10,000 targets to find
/// the few it acts on.
#[derive(Message)]
#[rtype(result = "Vec<GatewayId>")]
pub struct Offering(pub &'static str);

/// Every gateway linked here, in brief: whether its handshake advertised all of these methods,
/// and what its cached session list says is running. What a loop over the fleet decides on
/// before it asks for the full [`GatewayTarget`]s of the few it acts on (`SharedTargets::of`).
#[derive(Message)]
#[rtype(result = "Vec<LinkedHere>")]
pub struct LinkedHereOffering(pub &'static [&'static str]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedHere {
    pub id: GatewayId,
    /// Its handshake advertised every method asked about.
    pub offers_all: bool,
    /// Sessions running in its cached list (`None`: no list cached).
    pub running_sessions: Option<usize>,
}

#[derive(Clone)]
pub struct LinkHandle {
    pub id: GatewayId,
    pub name: String,
    pub link: GatewayLink,
}

/// To the registry at shutdown: stop every link (sockets closed with 1000).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAllLinks;

// ---- sessions ----------------------------------------------------------------------------

/// Sessions of every connected gateway, newest first, filtered: the first `limit`, and how many
/// matched in all.
#[derive(Message)]
#[rtype(result = "SessionPage")]
pub struct ListSessions {
    pub agent: Option<String>,
    /// Only sessions with this key.
    pub key: Option<String>,
    pub gateway_id: Option<GatewayId>,
    pub limit: usize,
    /// Only sessions of the gateways the reader may see (`None`: every gateway).
    pub within: Option<Within>,
}

/// The gateways a reader may see — its key's scope, decided by the daemon: a listing leaves
/// the others out before it counts and pages.
#[derive(Clone)]
pub struct Within(pub Arc<dyn Fn(GatewayId) -> bool + Send + Sync>);

impl Within {
    pub fn holds(&self, id: GatewayId) -> bool {
        (self.0)(id)
    }
}

impl std::fmt::Debug for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Within(..)")
    }
}

#[derive(Debug, MessageResponse)]
pub struct SessionPage {
    /// The session list's change counter when the page was taken.
    pub version: u64,
    /// Sessions that matched the filter.
    pub total: usize,
    /// The first `limit` of them, newest first.
    pub sessions: Vec<crate::protocol::sessions::SessionEntry>,
}

/// Runs this daemon knows are going on gateway `id` (spawns it started there) while the
/// gateway cannot list them: a drain's suspension refuses `sessions.list` (2026.9.6), so a run
/// begun just before it never reached the session cache and could be neither listed nor
/// killed. Each key the cache lacks is kept there as a running session until the gateway
/// lists its sessions again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunsGoing {
    pub id: GatewayId,
    pub keys: Vec<String>,
}

/// Where a session lives: every gateway whose cache has this key (or only `gateway_id`'s),
/// connected owners first. Real gateways all have `agent:main:main`: a key alone names a
/// session only when one gateway has it.
#[derive(Message)]
#[rtype(result = "Vec<SessionOwner>")]
pub struct FindSession {
    pub key: String,
    pub gateway_id: Option<GatewayId>,
}

#[derive(Clone)]
pub struct SessionOwner {
    pub gateway_id: GatewayId,
    pub name: String,
    pub version: Option<String>,
    pub connected: bool,
    pub methods: Arc<Vec<String>>,
    pub link: GatewayLink,
    /// The gateway process whose session cache named it.
    pub boot_id: Option<String>,
}

// ---- spawn -------------------------------------------------------------------------------

#[derive(Clone)]
pub struct GatewayTarget {
    /// `healthy`: connected, breaker closed.
    pub candidate: crate::selection::Candidate,
    pub methods: Arc<Vec<String>>,
    pub link: Option<GatewayLink>,
    /// Linked by another instance of the cluster: `healthy` is its owner's word (the status it
    /// stored), its methods are not known here, and a call goes through its owner.
    pub elsewhere: bool,
    /// The gateway process its link reaches (`bootId`, where the release names it).
    pub boot_id: Option<String>,
    /// The release it runs, as its handshake said.
    pub version: Option<String>,
    /// Sessions with a run in progress in the gateway's cached session list (kept fresh by
    /// `sessions.changed`, which 2026.9 sends when a run starts); `None` while no list is
    /// cached (not connected, or not listed yet).
    pub running_sessions: Option<usize>,
}

impl GatewayTarget {
    /// A gateway another instance links, as routing knows it: its candidate (health as its
    /// owner stored it), no methods known, no link here.
    pub fn elsewhere(candidate: crate::selection::Candidate) -> GatewayTarget {
        GatewayTarget {
            candidate,
            methods: GatewayTarget::no_methods(),
            link: None,
            elsewhere: true,
            boot_id: None,
            version: None,
            running_sessions: None,
        }
    }

    /// The one empty method list that the targets of every gateway not connected here share:
    /// an empty `Arc` of its own was 48 bytes a gateway, in a cluster for most of the fleet.
    pub fn no_methods() -> Arc<Vec<String>> {
        static NONE: std::sync::LazyLock<Arc<Vec<String>>> = std::sync::LazyLock::new(Arc::default);
        NONE.clone()
    }

    /// Whether its handshake advertised `method` (never call what a gateway does not).
    pub fn offers(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}
