//! The registry's view of a gateway. Tokens are held as [`SecretString`], whose `Debug` is
//! redacted, so a record can be logged without leaking a credential.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::gateway_id::GatewayId;

/// Health status as docs/design.md, *Health semantics*, defines it. `Unknown` until something measured it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GatewayStatus {
    #[default]
    Unknown,
    Online,
    Degraded,
    Timeout,
    Offline,
}

impl GatewayStatus {
    pub const ALL: [GatewayStatus; 5] = [
        GatewayStatus::Unknown,
        GatewayStatus::Online,
        GatewayStatus::Degraded,
        GatewayStatus::Timeout,
        GatewayStatus::Offline,
    ];

    /// Election order, lower is healthier: online, then degraded, then everything that cannot
    /// serve (docs/design.md, *Election and routing*).
    pub fn rank(self) -> u8 {
        match self {
            GatewayStatus::Online => 0,
            GatewayStatus::Degraded => 1,
            GatewayStatus::Unknown | GatewayStatus::Timeout | GatewayStatus::Offline => 2,
        }
    }

    /// The last measurement reached it: it answers (a degraded gateway answers slowly). What
    /// counts as connected for alerts and in service for budgets.
    pub fn reachable(self) -> bool {
        match self {
            GatewayStatus::Online | GatewayStatus::Degraded => true,
            GatewayStatus::Unknown | GatewayStatus::Timeout | GatewayStatus::Offline => false,
        }
    }

    /// Whether a gateway another instance links may act as primary, judged by the status its
    /// owner wrote: `Unknown` (not reported yet: a cluster starting, a gateway just adopted) is
    /// no reason to move the role; a measured `timeout` or `offline` is.
    pub fn eligible_elsewhere(self) -> bool {
        match self {
            GatewayStatus::Online | GatewayStatus::Degraded | GatewayStatus::Unknown => true,
            GatewayStatus::Timeout | GatewayStatus::Offline => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayStatus::Unknown => "unknown",
            GatewayStatus::Online => "online",
            GatewayStatus::Degraded => "degraded",
            GatewayStatus::Timeout => "timeout",
            GatewayStatus::Offline => "offline",
        }
    }
}

impl fmt::Display for GatewayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GatewayStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GatewayStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown gateway status `{s}`"))
    }
}

/// A registered gateway as stored. `token` is the plaintext, only ever in memory. There is no
/// `Default`: a record without its id (a `GatewayId` of 0) is no gateway; [`GatewayRecord::new`]
/// takes the id and the address and leaves the rest as a new registration has it.
#[derive(Debug, Clone)]
pub struct GatewayRecord {
    pub id: GatewayId,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `wss://` rather than `ws://`.
    pub tls: bool,
    pub allow_insecure_tls: bool,
    pub token: Option<SecretString>,
    /// The device token this gateway issued to the supervisor (cached for reconnects).
    pub device_token: Option<SecretString>,
    pub is_primary: bool,
    pub status: GatewayStatus,
    pub last_seen: Option<i64>,
    pub latency: Option<i64>,
    pub sessions_count: i64,
    pub agents_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// v1 API fields.
    pub workspace_root: Option<String>,
    pub disable_device_pairing: bool,
    pub gateway_agent_id: Option<String>,
    /// The gateway's id of the suspension this daemon made (`gateway.suspend.prepare`): `Some`
    /// while the gateway is suspended through the supervisor. A suspended gateway takes no
    /// spawns and does not act as primary.
    pub suspension_id: Option<String>,
    /// Cordoned by an operator: it keeps its work and takes nothing new (no spawn is routed to
    /// it, it does not act as primary) until uncordoned.
    pub cordoned: bool,
    /// Whether this daemon is the gateway's approval client (`caps: ["approvals"]` at connect);
    /// `None` follows the fleet's `approvals.enabled`.
    pub approvals: Option<bool>,
    /// Its labels, which selectors pick it by.
    pub labels: crate::labels::Labels,
    /// In maintenance: held back like a cordon, its alerts suppressed, until ended or expired.
    /// Boxed: 72 bytes inline in every record for the few gateways in maintenance (a view fits
    /// a 320-byte allocation instead of a 384-byte one; in a cluster every instance keeps one
    /// for every gateway of the fleet).
    pub maintenance: Option<Box<Maintenance>>,
    /// Whether `token` and `device_token` above are the gateway's own, or were left sealed in
    /// the store (a record read for a reader, `gateway_reads`).
    pub secrets: Secrets,
}

/// Whether a record carries its gateway's secrets (docs/design.md, *Cluster*, "Secrets stay
/// with the owner"). An instance of a cluster keeps the records — and the shared and device
/// tokens — only of the gateways it may link; a record read from the database for a reader
/// (`gateway_reads`) leaves them sealed in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Secrets {
    /// `token` and `device_token` are the gateway's own (alone, or linked here).
    #[default]
    Carried,
    /// Left in the store (another instance links the gateway); `token`: whether it has a shared
    /// token, which the API shows (`token_set`).
    LeftInStore { token: bool },
}

/// An operator's maintenance window on a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    /// Why (shown wherever the gateway is).
    pub reason: String,
    /// Who put it there (the API key's label).
    pub by: String,
    /// Since when (Unix seconds).
    pub since: i64,
    /// When it ends by itself (Unix seconds); `None`: when an operator ends it.
    pub until: Option<i64>,
}

/// Why a gateway takes no new spawns whatever its health: an operator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBack {
    /// `POST /api/gateways/{id}/maintenance`: as cordoned, with a reason, its alerts
    /// suppressed.
    Maintenance,
    /// `POST /api/gateways/{id}/cordon`: its work goes on, nothing new comes.
    Cordoned,
    /// Suspended through the daemon (`gateway.suspend.prepare`).
    Suspended,
}

impl HeldBack {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldBack::Maintenance => "in maintenance",
            HeldBack::Cordoned => "cordoned",
            HeldBack::Suspended => "suspended",
        }
    }

    /// What lifts it.
    pub fn until(self) -> &'static str {
        match self {
            HeldBack::Maintenance => "out of maintenance",
            HeldBack::Cordoned => "uncordoned",
            HeldBack::Suspended => "resumed",
        }
    }
}

/// `host:port`, with an IPv6 host in brackets.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl GatewayRecord {
    /// Gateway `id` at `host:port`, as a registration without options makes it: no token, not
    /// primary, unknown, never seen, no labels.
    pub fn new(id: GatewayId, name: String, host: String, port: u16) -> GatewayRecord {
        GatewayRecord {
            id,
            name,
            host,
            port,
            tls: false,
            allow_insecure_tls: false,
            token: None,
            device_token: None,
            is_primary: false,
            status: GatewayStatus::default(),
            last_seen: None,
            latency: None,
            sessions_count: 0,
            agents_count: 0,
            created_at: 0,
            updated_at: 0,
            workspace_root: None,
            disable_device_pairing: false,
            gateway_agent_id: None,
            suspension_id: None,
            cordoned: false,
            approvals: None,
            labels: crate::labels::Labels::default(),
            maintenance: None,
            secrets: Secrets::Carried,
        }
    }

    /// Whether the gateway has a shared token (carried here or left in the store).
    pub fn has_token(&self) -> bool {
        match self.secrets {
            Secrets::Carried => self.token.is_some(),
            Secrets::LeftInStore { token } => token,
        }
    }

    /// Whether an operator holds the gateway back (it takes nothing new whatever its health),
    /// and why: the one place routing and the election read it from.
    pub fn held_back(&self) -> Option<HeldBack> {
        if self.maintenance.is_some() {
            Some(HeldBack::Maintenance)
        } else if self.cordoned {
            Some(HeldBack::Cordoned)
        } else if self.suspension_id.is_some() {
            Some(HeldBack::Suspended)
        } else {
            None
        }
    }

    /// Takes the facts a live link keeps (status, last seen, latency, counts) from `live`: a
    /// row read back from the database carries them as the batched writer last saved them,
    /// which may be a report or more behind the link (docs/design.md, *Consistency model*).
    pub fn keep_live_facts(&mut self, live: &GatewayRecord) {
        self.status = live.status;
        self.last_seen = live.last_seen;
        self.latency = live.latency;
        self.sessions_count = live.sessions_count;
        self.agents_count = live.agents_count;
    }

    /// Whether `other` reaches the gateway differently (address, TLS, credential, approvals):
    /// a link opened with these settings is to be restarted with the new ones.
    pub fn link_settings_differ(&self, other: &GatewayRecord) -> bool {
        use secrecy::ExposeSecret;
        let token = |r: &GatewayRecord| r.token.as_ref().map(|t| t.expose_secret().to_owned());
        self.host != other.host
            || self.port != other.port
            || self.tls != other.tls
            || self.allow_insecure_tls != other.allow_insecure_tls
            || self.approvals != other.approvals
            || token(self) != token(other)
    }

    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "wss" } else { "ws" },
            authority(&self.host, self.port)
        )
    }
}

/// A gateway as the store returns it, for tests: named `gw<id>`, at a port of its own
/// (`18000 + id`), everything else at its default.
#[cfg(test)]
pub(crate) fn test_record(id: GatewayId, is_primary: bool) -> GatewayRecord {
    GatewayRecord {
        is_primary,
        ..GatewayRecord::new(
            id,
            format!("gw{id}"),
            "127.0.0.1".into(),
            18_000 + id.0 as u16,
        )
    }
}

/// A validated create request.
#[derive(Debug, Clone, Default)]
pub struct NewGateway {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub allow_insecure_tls: bool,
    pub token: Option<SecretString>,
    pub is_primary: bool,
    pub workspace_root: Option<String>,
    pub disable_device_pairing: bool,
    pub gateway_agent_id: Option<String>,
    /// `None`: the fleet's `approvals.enabled`.
    pub approvals: Option<bool>,
    pub labels: crate::labels::Labels,
}

/// A validated partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GatewayPatch {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<bool>,
    pub allow_insecure_tls: Option<bool>,
    /// `Some(None)` removes the token.
    pub token: Option<Option<SecretString>>,
    pub is_primary: Option<bool>,
    pub status: Option<GatewayStatus>,
    pub last_seen: Option<Option<i64>>,
    pub latency: Option<Option<i64>>,
    pub sessions_count: Option<i64>,
    pub agents_count: Option<i64>,
    pub workspace_root: Option<Option<String>>,
    pub disable_device_pairing: Option<bool>,
    pub gateway_agent_id: Option<Option<String>>,
    /// `Some(None)`: back to the fleet's `approvals.enabled`.
    pub approvals: Option<Option<bool>>,
    /// The whole new set of labels.
    pub labels: Option<crate::labels::Labels>,
}

impl GatewayPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.host.is_none()
            && self.port.is_none()
            && self.tls.is_none()
            && self.allow_insecure_tls.is_none()
            && self.token.is_none()
            && self.is_primary.is_none()
            && self.status.is_none()
            && self.last_seen.is_none()
            && self.latency.is_none()
            && self.sessions_count.is_none()
            && self.agents_count.is_none()
            && self.workspace_root.is_none()
            && self.disable_device_pairing.is_none()
            && self.gateway_agent_id.is_none()
            && self.approvals.is_none()
            && self.labels.is_none()
    }

    /// Whether the change sets what a live link reports (the seed API lets a client write them).
    pub fn sets_live_facts(&self) -> bool {
        self.status.is_some()
            || self.last_seen.is_some()
            || self.latency.is_some()
            || self.sessions_count.is_some()
            || self.agents_count.is_some()
    }

    /// Whether the change touches how the gateway is reached or what its link asks at connect
    /// (its link must restart).
    pub fn changes_link(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.tls.is_some()
            || self.allow_insecure_tls.is_some()
            || self.token.is_some()
            || self.approvals.is_some()
    }
}

/// Who asked for a change; written to the audit log. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub api_key_id: Option<i64>,
    pub label: String,
    /// The tenant a scoped caller acts in (`None`: the platform's reach, or the daemon itself);
    /// the audit row's tenant when the row is about no gateway of its own.
    pub tenant: Option<String>,
}

impl Caller {
    pub fn system(what: &str) -> Self {
        Caller {
            api_key_id: None,
            label: format!("system:{what}"),
            tenant: None,
        }
    }
}

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkPhase {
    Connecting,
    Handshaking,
    Connected,
    Backoff,
    Halted,
}

impl LinkPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPhase::Connecting => "connecting",
            LinkPhase::Handshaking => "handshaking",
            LinkPhase::Connected => "connected",
            LinkPhase::Backoff => "backoff",
            LinkPhase::Halted => "halted",
        }
    }
}

/// The numbers a link refreshes on every pong and frame (latency, last seen, last frame),
/// shared with the registry through atomics: at 10,000 gateways a message per pong would be
/// hundreds of cross-thread wake-ups a second for values nobody is waiting on. They are not a
/// change of the registry's: a view holds them ([`LiveReadings`]) and is read through them
/// when shown, so the registry's sorted list survives every pong (docs/design.md, *Reading the
/// fleet*).
#[derive(Debug)]
pub struct LiveStats {
    latency_ms: AtomicI64,
    last_seen: AtomicI64,
    /// When the last frame came (Unix ms), written with every frame.
    /// Beside the other numbers, so a frame touches one allocation of the link's, not two.
    last_frame_ms: AtomicI64,
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats {
            latency_ms: AtomicI64::new(Self::NONE),
            last_seen: AtomicI64::new(Self::NONE),
            last_frame_ms: AtomicI64::new(Self::NONE),
        }
    }
}

impl LiveStats {
    const NONE: i64 = i64::MIN;

    pub fn set(&self, latency_ms: Option<i64>, last_seen: Option<i64>) {
        self.latency_ms
            .store(latency_ms.unwrap_or(Self::NONE), Ordering::Relaxed);
        self.last_seen
            .store(last_seen.unwrap_or(Self::NONE), Ordering::Relaxed);
    }

    pub fn latency(&self) -> Option<i64> {
        Some(self.latency_ms.load(Ordering::Relaxed)).filter(|v| *v != Self::NONE)
    }

    pub fn last_seen(&self) -> Option<i64> {
        Some(self.last_seen.load(Ordering::Relaxed)).filter(|v| *v != Self::NONE)
    }

    /// The gateway was last seen at `unix` (seconds), latency as it was.
    pub fn seen(&self, unix: i64) {
        self.last_seen.store(unix, Ordering::Relaxed);
    }

    /// A frame came, at `unix_ms`.
    pub fn frame_heard(&self, unix_ms: i64) {
        self.last_frame_ms.store(unix_ms, Ordering::Relaxed);
    }

    /// When the last frame came; `None` before the first.
    pub fn last_frame_ms(&self) -> Option<i64> {
        Some(self.last_frame_ms.load(Ordering::Relaxed)).filter(|v| *v != Self::NONE)
    }
}

/// A view's hold on its link's live numbers ([`LiveStats`]): the link writes them with every
/// pong and frame, and a view kept in the registry's sorted list reads them as they are when
/// it is shown — not a copy taken when the list was built. Empty for a gateway not linked
/// here.
#[derive(Debug, Clone, Default)]
pub struct LiveReadings(Option<Arc<LiveStats>>);

impl LiveReadings {
    pub fn of(live: &Arc<LiveStats>) -> Self {
        LiveReadings(Some(live.clone()))
    }

    fn get(&self) -> Option<&LiveStats> {
        self.0.as_deref()
    }
}

/// The live link's state as the API shows it. Until the gateway link exists every field is
/// empty: nothing has been measured, so nothing is claimed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionInfo {
    pub state: Option<LinkPhase>,
    pub protocol: Option<u32>,
    pub server_version: Option<String>,
    /// The gateway process the link is (or was last) connected to, where the release names it
    /// (`hello-ok.server.bootId`, 2026.9): a restart changes it.
    pub boot_id: Option<String>,
    /// Its build, where the release names it (`hello-ok.server.buildId`).
    pub build_id: Option<String>,
    /// What it says it can do beyond its methods (`hello-ok.features.capabilities`).
    #[serde(skip)]
    pub capabilities: std::sync::Arc<Vec<String>>,
    pub last_error: Option<LinkError>,
    pub pairing_request_id: Option<String>,
    /// What the last probe found wrong while the socket and the `health` RPC answer (HTTP
    /// `/health` failing): the gateway reads `degraded`, not `offline`.
    pub probe_error: Option<String>,
    /// The gateway's own suspension phase as it reports it (`accepting`, `preparing`,
    /// `draining`, `prepared`), whoever suspended it; `None` where the release does not say.
    pub suspension: Option<&'static str>,
    /// Its `connect` asked for `caps: ["approvals"]`: the gateway sends this daemon its
    /// approvals and waits for its answer.
    pub approval_client: bool,
}

impl ConnectionInfo {
    /// Nothing measured: the one shared value for every view of a gateway not linked here.
    pub fn none() -> Arc<ConnectionInfo> {
        static NONE: std::sync::LazyLock<Arc<ConnectionInfo>> =
            std::sync::LazyLock::new(Arc::default);
        NONE.clone()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerInfo {
    pub state: BreakerState,
    pub consecutive_failures: u32,
}

impl Default for BreakerInfo {
    fn default() -> Self {
        BreakerInfo {
            state: BreakerState::Closed,
            consecutive_failures: 0,
        }
    }
}

/// The last heartbeat of one cluster instance under one epoch (Unix seconds), shared by
/// the views of every gateway that instance links: the runner moves it on each round, once per
/// instance, and a view reads it when shown ([`GatewayView::last_seen`]). An instance whose
/// row lapsed comes back under a new epoch with a new cell; the old one stays at its last
/// beat, as do the leases taken under it (docs/design.md, *Cluster*, last-seen). A cell
/// whose epoch the last round did not see among the live instances is marked lapsed.
#[derive(Debug)]
pub struct OwnerBeat {
    at: AtomicI64,
    lapsed: AtomicBool,
}

impl Default for OwnerBeat {
    fn default() -> Self {
        OwnerBeat {
            at: AtomicI64::new(LiveStats::NONE),
            lapsed: AtomicBool::new(false),
        }
    }
}

impl OwnerBeat {
    /// The instance's row was renewed at `unix` (seconds); never moves back.
    pub fn beat(&self, unix: i64) {
        self.at.fetch_max(unix, Ordering::Relaxed);
    }

    pub fn at(&self) -> Option<i64> {
        Some(self.at.load(Ordering::Relaxed)).filter(|v| *v != LiveStats::NONE)
    }

    /// Whether the instance's row under this epoch was missing from the last round's live
    /// instances (it lapsed, or came back under a newer epoch).
    pub fn set_lapsed(&self, lapsed: bool) {
        self.lapsed.store(lapsed, Ordering::Relaxed);
    }

    pub fn lapsed(&self) -> bool {
        self.lapsed.load(Ordering::Relaxed)
    }
}

/// A view's hold on the heartbeat of the instance that links its gateway elsewhere in a
/// cluster ([`OwnerBeat`]); empty alone, for a gateway linked here, or with no owner.
#[derive(Debug, Clone, Default)]
pub struct Vouched(Option<Arc<OwnerBeat>>);

impl Vouched {
    pub fn by(beat: &Arc<OwnerBeat>) -> Self {
        Vouched(Some(beat.clone()))
    }

    pub fn at(&self) -> Option<i64> {
        self.0.as_deref().and_then(OwnerBeat::at)
    }

    /// Held by a live instance's current epoch: the gateway is that instance's to link.
    pub fn live(&self) -> bool {
        self.0.as_deref().is_some_and(|b| !b.lapsed())
    }
}

/// What the registry answers with: the stored record plus the live view.
#[derive(Debug, Clone)]
pub struct GatewayView {
    pub record: GatewayRecord,
    pub acting_primary: bool,
    /// Shared: every view of a gateway not linked here holds the one empty
    /// [`ConnectionInfo::none`] (216 bytes and an allocation less for each of them — in a
    /// cluster, most of the fleet on every instance).
    pub connection: Arc<ConnectionInfo>,
    pub breaker: BreakerInfo,
    /// The link's live numbers, read when the view is shown (see [`LiveReadings`]).
    pub live: LiveReadings,
    /// Linked by another instance: its heartbeat, which stands for last-seen while the
    /// gateway's stored status is reachable (the owner does not rewrite the row for it).
    pub vouched: Vouched,
}

impl GatewayView {
    /// A gateway not linked here, as its record says: no link state (the one empty one
    /// every such view shares), no breaker, no live numbers, its last-seen its record's.
    pub fn unlinked(record: GatewayRecord, acting_primary: bool) -> GatewayView {
        GatewayView {
            record,
            acting_primary,
            connection: ConnectionInfo::none(),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Vouched::default(),
        }
    }

    /// The last measured round trip: the link's, else the record's (as last saved).
    pub fn latency(&self) -> Option<i64> {
        self.live
            .get()
            .and_then(LiveStats::latency)
            .or(self.record.latency)
    }

    /// When the gateway was last seen: the latest of the link's, the record's and — linked
    /// by another instance and stored reachable — that instance's last heartbeat. The owner
    /// stores a status change at once (a gateway lost is stored unreachable within a round),
    /// so while the row says reachable and its owner beats, the owner still sees it.
    pub fn last_seen(&self) -> Option<i64> {
        let live = self.live.get().and_then(LiveStats::last_seen);
        let vouched = self.vouched.at().filter(|_| self.record.status.reachable());
        live.max(self.record.last_seen).max(vouched)
    }

    /// Linked by another live instance of the cluster, which answers for it: its per-gateway
    /// series are that instance's to export (`metrics::set_gateways`, docs/operations.md).
    pub fn linked_elsewhere(&self) -> bool {
        self.vouched.live()
    }

    /// When the link last heard a frame (Unix ms); `None` before the first, or not linked here.
    pub fn last_frame_ms(&self) -> Option<i64> {
        self.live.get()?.last_frame_ms()
    }
}

#[cfg(test)]
mod live_stats_tests {
    use super::*;

    fn view(latency: Option<i64>, last_seen: Option<i64>, live: LiveReadings) -> GatewayView {
        let mut record = test_record(GatewayId(1), false);
        (record.latency, record.last_seen) = (latency, last_seen);
        GatewayView {
            record,
            acting_primary: false,
            connection: ConnectionInfo::none(),
            breaker: BreakerInfo::default(),
            live,
            vouched: Vouched::default(),
        }
    }

    /// A view kept in a list reads the link's numbers as they move, not as they were when the
    /// list was built: the registry's list is not rebuilt for a pong.
    #[test]
    fn a_kept_view_reads_the_links_numbers_as_they_move() {
        let live = Arc::new(LiveStats::default());
        let kept = view(Some(50), Some(100), LiveReadings::of(&live));
        // Nothing measured yet by this link: the record's numbers, as last saved.
        assert_eq!(
            (kept.latency(), kept.last_seen(), kept.last_frame_ms()),
            (Some(50), Some(100), None)
        );
        live.set(Some(3), Some(200));
        live.frame_heard(200_500);
        assert_eq!(
            (kept.latency(), kept.last_seen(), kept.last_frame_ms()),
            (Some(3), Some(200), Some(200_500))
        );
        live.set(None, Some(201));
        live.seen(202);
        assert_eq!((kept.latency(), kept.last_seen()), (Some(50), Some(202)));
    }

    /// Linked by another instance, stored reachable: last seen at that instance's latest
    /// heartbeat, read as it moves; stored unreachable, the record's (the owner stored when
    /// it lost the gateway). A heartbeat read late never moves it back.
    #[test]
    fn a_gateway_linked_elsewhere_is_last_seen_at_its_owners_latest_heartbeat_while_reachable() {
        let beat = Arc::new(OwnerBeat::default());
        let mut v = view(Some(7), Some(300), LiveReadings::default());
        v.record.status = GatewayStatus::Online;
        v.vouched = Vouched::by(&beat);
        assert_eq!(v.last_seen(), Some(300), "no heartbeat yet: the record's");
        beat.beat(360);
        assert_eq!(v.last_seen(), Some(360));
        beat.beat(363);
        beat.beat(361);
        assert_eq!(v.last_seen(), Some(363));
        v.record.status = GatewayStatus::Degraded;
        assert_eq!(v.last_seen(), Some(363));
        v.record.status = GatewayStatus::Offline;
        assert_eq!(v.last_seen(), Some(300));
    }

    #[test]
    fn a_view_of_a_gateway_not_linked_here_shows_its_record() {
        let v = view(Some(7), Some(300), LiveReadings::default());
        assert_eq!(
            (v.latency(), v.last_seen(), v.last_frame_ms()),
            (Some(7), Some(300), None)
        );
    }
}

#[cfg(test)]
mod status_tests {
    use super::GatewayStatus::{self, *};

    #[test]
    fn only_online_and_degraded_gateways_are_reachable_and_online_ranks_first() {
        let reachable: Vec<GatewayStatus> = GatewayStatus::ALL
            .into_iter()
            .filter(|s| s.reachable())
            .collect();
        assert_eq!(reachable, [Online, Degraded]);
        assert!(Online.rank() < Degraded.rank());
        for down in [Unknown, Timeout, Offline] {
            assert!(Degraded.rank() < down.rank(), "{down}");
        }
    }

    #[test]
    fn a_gateway_linked_elsewhere_keeps_the_role_until_measured_down() {
        let eligible: Vec<GatewayStatus> = GatewayStatus::ALL
            .into_iter()
            .filter(|s| s.eligible_elsewhere())
            .collect();
        assert_eq!(eligible, [Unknown, Online, Degraded]);
    }

    #[test]
    fn every_status_reads_back_from_its_word() {
        for s in GatewayStatus::ALL {
            assert_eq!(s.as_str().parse::<GatewayStatus>(), Ok(s));
        }
        assert!("draining".parse::<GatewayStatus>().is_err());
    }
}
