//! A protocol-faithful fake OpenClaw gateway for tests and benchmarks.
//!
//! One port serves HTTP (`/health`, `/readyz`) and the WebSocket protocol: `connect.challenge`
//! with a fresh nonce, a closed-schema `connect`, shared-token / device-token / no-auth modes,
//! Ed25519 device proofs (v3 and v2, verified independently of the supervisor's code), device
//! pairing, `hello-ok` with `features.methods`, `tick` events and WebSocket pings, the core
//! methods (`health`, `sessions.*`, `agents.list`, `agent`, `agent.wait`), and the seed
//! protocol's `spawn` and per-session `control`. Faults can be injected at run time through
//! [`FakeGateway`]. By default it is openclaw 2026.9.6; [`FakeConfig::imitating`] makes it an
//! older release's handshake ([`Release`]: 2026.1.30 and 2026.2.25, which verify only v2
//! device signatures and refuse a v3 proof with their own frames, as captured in
//! `testdata/openclaw-captures/<release>/`). Many fakes share one multi-threaded runtime, so one process can host
//! thousands on distinct loopback ports.

mod approvals;
pub mod auth;
mod config;
mod conn;
mod cron;
mod dialer;
mod fleet_methods;
mod gateway_config;
pub mod hostile;
mod lifecycle;
mod methods;
mod params;
mod release;
mod reload_plan;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use auth::Signatures;
pub use config::{AcceptLog, FakeConfig, Faults, Suspension, Wedge};
pub use dialer::{Dialer, clock_us, fencing_faults, frame_overlaps, unserved};
pub use release::{HttpEndpoints, Release};
pub use update::Update;

#[derive(Debug, Clone)]
struct Device {
    token: String,
    approved: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub key: String,
    pub agent: String,
    pub label: Option<String>,
    pub status: &'static str,
    pub total_tokens: u64,
    pub updated_at: u64,
    pub model: String,
    pub active_run: Option<String>,
    pub messages: Vec<Value>,
    /// One point per finished run (`sessions.usage.timeseries`, as 2026.9.6 writes one per
    /// model call: `testdata/openclaw-captures/2026.9.6/sessions_usage_timeseries.json`).
    pub usage_points: Vec<Value>,
}

#[derive(Debug)]
pub(crate) struct Run {
    pub session_key: String,
    pub done: tokio::sync::watch::Sender<Option<Value>>,
}

pub(crate) enum Ctl {
    Frame(Value),
    Raw(tokio_tungstenite::tungstenite::Message),
    Close(u16, String),
}

/// One agent's day: input tokens, output tokens, cost (US dollars).
pub(crate) type DayUsage = (u64, u64, f64);

pub(crate) struct ConnCtl {
    pub tx: mpsc::UnboundedSender<Ctl>,
    pub device_id: Option<String>,
    pub shared_token: bool,
    /// It connected with `caps: ["approvals"]`: approval events reach it.
    pub approval_client: bool,
    /// How an approval it answers names it.
    pub client: approvals::Client,
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub accepts: AtomicU64,
    /// WebSocket upgrade requests (completed or refused).
    pub upgrade_requests: AtomicU64,
    /// WebSocket upgrades completed.
    pub upgrades: AtomicU64,
    /// Handshakes that ended in `hello-ok`.
    pub hellos: AtomicU64,
    /// Handshakes refused.
    pub refusals: AtomicU64,
    /// Sockets open now.
    pub active: AtomicI64,
    /// Pings received from clients.
    pub pings_received: AtomicU64,
    /// `sessions.abort` requests answered.
    pub aborts: AtomicU64,
    /// `gateway.restart.request` requests answered.
    pub restart_requests: AtomicU64,
    /// `sessions.reset` requests answered.
    pub resets: AtomicU64,
    /// `update.hold` requests answered.
    pub update_holds: AtomicU64,
    /// Updates started by `update.run` (handoffs).
    pub update_runs: AtomicU64,
    /// `config.patch` requests received (counted as they arrive, before any delay).
    pub config_patches_received: AtomicU64,
    /// Jobs sent in `cron.list` answers, every page counted.
    pub cron_jobs_listed: AtomicU64,
}

pub(crate) struct Shared {
    pub cfg: Mutex<FakeConfig>,
    pub faults: Mutex<Faults>,
    devices: Mutex<HashMap<String, Device>>,
    pending_pairing: Mutex<BTreeMap<String, String>>,
    pub conns: Mutex<HashMap<u64, ConnCtl>>,
    pub sessions: Mutex<BTreeMap<String, Session>>,
    pub runs: Mutex<HashMap<String, Run>>,
    pub counters: Counters,
    next_id: AtomicU64,
    pub started: Instant,
    last_auth: Mutex<Option<String>>,
    pub suspension: Mutex<Option<Suspension>>,
    /// The methods refused because a suspension was held, oldest first (the last 1,000).
    pub refused_suspended: Mutex<Vec<String>>,
    /// The `caps` of the last connect it accepted.
    pub connect_caps: Mutex<Vec<String>>,
    /// Each connect that passed its token check, oldest first (the last [`DIALERS_KEPT`]):
    /// who sent it and when its socket's frames came.
    pub dialers: Mutex<std::collections::VecDeque<Arc<Dialer>>>,
    /// This "process"'s `server.bootId` (2026.9 releases send one; a restart makes a new one).
    pub boot_id: Mutex<String>,
    /// This "process"'s `processInstanceId` (`system.info`, `cron.run`'s fence): like 2026.9.6's,
    /// a UUID of its own, not the `bootId` (`src/gateway/process-instance.ts`), new on a restart.
    pub process_instance_id: Mutex<String>,
    /// The gateway's file log, one raw line each (what `logs.tail` reads).
    pub log_file: Mutex<Vec<String>>,
    /// Usage per (agent, UTC day).
    pub usage: Mutex<BTreeMap<(String, String), DayUsage>>,
    /// An automatic update campaign: `None` none, `Some(false)` pending, `Some(true)` held.
    pub update_campaign: Mutex<Option<bool>>,
    /// `update.run`'s run records, oldest first (kept across restarts, like the state
    /// database).
    pub update_runs: Mutex<Vec<Value>>,
    /// The `traceparent` of each request that carried one, with its method (the last
    /// [`TRACEPARENTS_KEPT`]).
    pub traceparents: Mutex<Vec<(String, String)>>,
    /// Every approval asked, oldest first (`approvals`).
    pub approvals: Mutex<std::collections::VecDeque<approvals::Approval>>,
    /// The gateway's own configuration (`config.get`).
    pub(crate) gateway_config: Mutex<Option<gateway_config::GatewayConfig>>,
    /// Its cron jobs and their runs (`cron.*`, as 2026.9.6).
    pub(crate) cron: Mutex<cron::CronState>,
}

/// Connects' `client.instanceId`s kept for a test to read.
pub(crate) const DIALERS_KEPT: usize = 1_000;

/// Requests' trace contexts kept for a test to read.
pub(crate) const TRACEPARENTS_KEPT: usize = 256;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn random_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Shared {
    pub(crate) fn with_config<T>(
        &self,
        f: impl FnOnce(&mut gateway_config::GatewayConfig) -> T,
    ) -> T {
        let mut held = lock(&self.gateway_config);
        let config = held.get_or_insert_with(|| gateway_config::GatewayConfig::new(0, None));
        f(config)
    }

    pub fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn broadcast(&self, event: &str, payload: Value) {
        for c in lock(&self.conns).values() {
            let _ = c.tx.send(Ctl::Frame(
                json!({"type": "event", "event": event, "payload": payload}),
            ));
        }
    }

    pub fn signatures(&self) -> Signatures {
        lock(&self.cfg).signatures
    }

    /// Token check for a device-token connect: the device must be known with this token.
    pub fn device_token_ok(&self, device_id: Option<&str>, token: &str) -> bool {
        device_id
            .and_then(|id| {
                lock(&self.devices)
                    .get(id)
                    .map(|d| d.approved && d.token == token)
            })
            .unwrap_or(false)
    }

    /// Pairing: the device's token, or the pending request id when approval is needed.
    pub fn pair(&self, device_id: &str) -> Result<String, String> {
        let auto = lock(&self.cfg).auto_approve;
        let mut devices = lock(&self.devices);
        if let Some(d) = devices.get(device_id).filter(|d| d.approved) {
            return Ok(d.token.clone());
        }
        if auto {
            let token = random_id().replace('-', "");
            devices.insert(
                device_id.to_owned(),
                Device {
                    token: token.clone(),
                    approved: true,
                },
            );
            return Ok(token);
        }
        let mut pending = lock(&self.pending_pairing);
        if let Some((rid, _)) = pending.iter().find(|(_, d)| d.as_str() == device_id) {
            return Err(rid.clone());
        }
        let rid = random_id();
        pending.insert(rid.clone(), device_id.to_owned());
        Err(rid)
    }

    pub fn set_last_auth(&self, method: &str) {
        *lock(&self.last_auth) = Some(method.to_owned());
    }

    pub fn health_payload(&self) -> Value {
        let cfg = lock(&self.cfg);
        let sessions = lock(&self.sessions).len();
        json!({
            "ok": !lock(&self.faults).unhealthy,
            "ts": now_ms(),
            "durationMs": 1,
            "defaultAgentId": cfg.agents.first().cloned().unwrap_or_else(|| "main".into()),
            "agents": cfg.agents.iter().map(|a| json!({"agentId": a, "isDefault": Some(a) == cfg.agents.first()})).collect::<Vec<_>>(),
            "sessions": {"count": sessions, "recent": []},
        })
    }
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("fake-gateway")
            .build()
            .expect("a tokio runtime for the fake gateways")
    })
}

/// A running fake gateway. Dropping it stops it.
pub struct FakeGateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl FakeGateway {
    /// Starts on a free loopback port below the kernel's ephemeral range (32768–60999): a
    /// port from that range, once [`stop`](Self::stop)ped, could be taken by any client
    /// socket or `bind(0)` before [`resume`](Self::resume) binds it again (a busy test suite
    /// saw exactly that: `AddrInUse` on resume).
    pub fn start(cfg: FakeConfig) -> std::io::Result<FakeGateway> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        const LOW: u64 = 10_000;
        const SPAN: u64 = 22_000;
        // Test processes running side by side start at different places.
        let offset = u64::from(std::process::id()) * 211;
        let mut last = None;
        for _ in 0..SPAN {
            let port = LOW + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
            let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
            match Self::start_on(cfg.clone(), addr) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
    }

    pub fn start_on(cfg: FakeConfig, addr: SocketAddr) -> std::io::Result<FakeGateway> {
        let sessions: BTreeMap<String, Session> = (0..cfg.sessions)
            .map(|i| {
                let agent = cfg.agents.first().cloned().unwrap_or_else(|| "main".into());
                let key = format!("agent:{agent}:s{i}");
                (
                    key.clone(),
                    Session {
                        key,
                        agent,
                        label: None,
                        status: "active",
                        total_tokens: 0,
                        updated_at: now_ms(),
                        model: "fake/model".into(),
                        active_run: None,
                        messages: Vec::new(),
                        usage_points: Vec::new(),
                    },
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            cfg: Mutex::new(cfg),
            faults: Mutex::new(Faults::default()),
            devices: Mutex::new(HashMap::new()),
            pending_pairing: Mutex::new(BTreeMap::new()),
            conns: Mutex::new(HashMap::new()),
            sessions: Mutex::new(sessions),
            runs: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
            started: Instant::now(),
            last_auth: Mutex::new(None),
            suspension: Mutex::new(None),
            refused_suspended: Mutex::new(Vec::new()),
            connect_caps: Mutex::new(Vec::new()),
            dialers: Mutex::new(std::collections::VecDeque::new()),
            approvals: Mutex::new(std::collections::VecDeque::new()),
            gateway_config: Mutex::new(None),
            cron: Mutex::new(cron::CronState::fresh()),
            boot_id: Mutex::new(random_id()),
            process_instance_id: Mutex::new(random_id()),
            log_file: Mutex::new(Vec::new()),
            usage: Mutex::new(BTreeMap::new()),
            update_campaign: Mutex::new(None),
            update_runs: Mutex::new(Vec::new()),
            traceparents: Mutex::new(Vec::new()),
        });
        let listener = runtime().block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        *lock(&shared.gateway_config) = Some(gateway_config::GatewayConfig::new(
            addr.port(),
            lock(&shared.cfg).token.as_deref(),
        ));
        let fake = FakeGateway {
            shared,
            addr,
            listener: Mutex::new(None),
        };
        fake.serve(listener);
        Ok(fake)
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = runtime().spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if let Some(log) = &lock(&shared.cfg).accept_log {
                    log.record();
                }
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::serve(shared.clone(), stream));
            }
        });
        *lock(&self.listener) = Some(task);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The auth method of the last successful handshake (`token`, `device-token`, `none`).
    pub fn last_auth_method(&self) -> Option<String> {
        lock(&self.shared.last_auth).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut lock(&self.shared.faults));
    }

    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    pub fn update_config(&self, f: impl FnOnce(&mut FakeConfig)) {
        f(&mut lock(&self.shared.cfg));
    }

    /// Devices that completed pairing.
    pub fn paired_devices(&self) -> Vec<String> {
        lock(&self.shared.devices)
            .iter()
            .filter(|(_, d)| d.approved)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The device token issued to a paired device.
    pub fn device_token(&self, device_id: &str) -> Option<String> {
        lock(&self.shared.devices)
            .get(device_id)
            .map(|d| d.token.clone())
    }

    pub fn pending_pairing_requests(&self) -> Vec<String> {
        lock(&self.shared.pending_pairing).keys().cloned().collect()
    }

    pub fn approve_pairing(&self, request_id: &str) -> bool {
        let Some(device_id) = lock(&self.shared.pending_pairing).remove(request_id) else {
            return false;
        };
        let token = random_id().replace('-', "");
        lock(&self.shared.devices).insert(
            device_id,
            Device {
                token,
                approved: true,
            },
        );
        true
    }

    /// Sends a frame that is not JSON to every connected client.
    pub fn send_garbage(&self) {
        self.raw_to_all(tokio_tungstenite::tungstenite::Message::Text(
            "}{ not json \u{1F4A5}".into(),
        ));
    }

    /// Sends a text frame of `bytes` bytes to every connected client.
    pub fn send_oversize(&self, bytes: usize) {
        let text = format!(
            "{{\"type\":\"event\",\"event\":\"tick\",\"payload\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(bytes)
        );
        self.raw_to_all(tokio_tungstenite::tungstenite::Message::Text(text.into()));
    }

    fn raw_to_all(&self, msg: tokio_tungstenite::tungstenite::Message) {
        for c in lock(&self.shared.conns).values() {
            let _ = c.tx.send(Ctl::Raw(msg.clone()));
        }
    }

    pub fn emit(&self, event: &str, payload: Value) {
        self.shared.broadcast(event, payload);
    }

    /// Closes every socket with `code`/`reason`.
    pub fn close_all(&self, code: u16, reason: &str) {
        for c in lock(&self.shared.conns).values() {
            let _ = c.tx.send(Ctl::Close(code, reason.to_owned()));
        }
    }

    /// As on SIGTERM/restart: `shutdown` event (with `restartExpectedMs`), close 1012, then
    /// refuse handshakes with UNAVAILABLE/1013 for `down`.
    pub fn restart(&self, down: Duration) {
        self.shared.restart(Some(down));
    }

    /// Changes the shared token; sockets authenticated with the old one get 4001.
    pub fn rotate_token(&self, token: Option<&str>) {
        lock(&self.shared.cfg).token = token.map(str::to_owned);
        for c in lock(&self.shared.conns).values().filter(|c| c.shared_token) {
            let _ = c.tx.send(Ctl::Close(4001, "gateway auth changed".into()));
        }
    }

    /// Forgets a paired device; its sockets get 4001 `device removed`.
    pub fn remove_device(&self, device_id: &str) {
        lock(&self.shared.devices).remove(device_id);
        for c in lock(&self.shared.conns)
            .values()
            .filter(|c| c.device_id.as_deref() == Some(device_id))
        {
            let _ = c.tx.send(Ctl::Close(4001, "device removed".into()));
        }
    }

    /// Stops listening and drops every socket (the port refuses connections).
    pub fn stop(&self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
        for (_, c) in lock(&self.shared.conns).drain() {
            let _ = c.tx.send(Ctl::Close(1012, "service restart".into()));
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop). The port was free to take
    /// meanwhile (it came from the ephemeral range, which outgoing connections draw from too):
    /// a socket holding it now is waited out for up to 10 s.
    pub fn resume(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match runtime().block_on(TcpListener::bind(self.addr)) {
                Ok(listener) => break listener,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }

    /// A `cron.*` request as an operator's own CLI sends it (a job made by hand, beside the
    /// daemon), answered as a connection's would be.
    pub fn cron(&self, method: &str, params: Value) -> Result<Value, Value> {
        let params = params.as_object().cloned().unwrap_or_default();
        crate::cron::call(&self.shared, method, &params).unwrap_or_else(|| {
            Err(serde_json::json!({"code": "INVALID_REQUEST", "message": format!("unknown method {method}")}))
        })
    }

    /// The `server.bootId` its `hello-ok` carries now.
    pub fn boot_id(&self) -> String {
        lock(&self.shared.boot_id).clone()
    }

    /// `(method, traceparent)` of the requests that carried a trace context, oldest first.
    pub fn traceparents(&self) -> Vec<(String, String)> {
        lock(&self.shared.traceparents).clone()
    }

    /// `agent` runs started (a repeated idempotency key starts none).
    pub fn runs_started(&self) -> usize {
        lock(&self.shared.runs).len()
    }

    /// The `client.instanceId` of each connect that passed its token check, oldest first
    /// (`""`: none sent).
    pub fn dialers(&self) -> Vec<String> {
        lock(&self.shared.dialers)
            .iter()
            .map(|d| d.instance_id.clone())
            .collect()
    }

    /// Each connect that passed its token check with its frames' interval, oldest first.
    pub fn dialer_frames(&self) -> Vec<Arc<Dialer>> {
        lock(&self.shared.dialers).iter().cloned().collect()
    }

    /// The `caps` the last accepted `connect` asked for.
    pub fn last_connect_caps(&self) -> Vec<String> {
        lock(&self.shared.connect_caps).clone()
    }

    pub fn sessions(&self) -> Vec<(String, String)> {
        lock(&self.shared.sessions)
            .values()
            .map(|s| (s.key.clone(), s.status.to_owned()))
            .collect()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop();
    }
}
