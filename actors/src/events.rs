//! The in-process event bus: every event gets an increasing id, goes to live subscribers
//! (bounded channels: a slow subscriber is dropped, never allowed to stall the bus) and into a
//! bounded replay buffer for `Last-Event-ID` resumption. Payloads are bounded on the way in
//! ([`bounded::PAYLOAD`]) and the replay by bytes as well as by count, so a gateway that
//! floods large events costs a few megabytes, not gigabytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::bounded;
use crate::model::GatewayId;

/// Events kept for resumption.
pub const REPLAY: usize = 1024;
/// Bytes (approximate JSON size) the replay buffer may hold.
pub const REPLAY_BYTES: usize = 2 * 1024 * 1024;
/// Per-event overhead beyond the payload (id, type, gateway, timestamp).
const EVENT_OVERHEAD: usize = 96;
/// Events a subscriber may fall behind by before it is dropped.
pub const SUBSCRIBER_BUFFER: usize = 256;

/// What an event is about. Its name is the event's JSON `type` and its SSE `event:` line, and
/// what `GET /api/events?types=` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A gateway was created, updated or deleted.
    GatewayChanged,
    /// A gateway's health status moved, or it was suspended or resumed.
    GatewayStatus,
    /// The acting primary changed.
    GatewayPrimary,
    /// A link's phase changed (connecting, connected, pairing, …).
    ConnectionChanged,
    /// A gateway's session list changed.
    SessionChanged,
    /// A gateway's `agent.status` event, passed on.
    AgentStatus,
    /// A seed gateway's `spawn_result` event, passed on.
    GatewaySpawnResult,
    /// A spawn ended (recorded before it is announced).
    SpawnResult,
    /// A gateway's `log` event, passed on.
    Log,
    /// A fleet operation (a drain, a rolling restart) moved: a gateway's step, or its end.
    OperationProgress,
    /// The stuck-session watchdog took a step on a session (stalled, a remedy, its
    /// verification, unrecovered, recovered).
    SessionWatchdog,
    /// A gateway asked for an approval (recorded in the inbox before it is announced).
    ApprovalRequested,
    /// An approval waited past `approvals.escalate_after` unanswered (once each).
    ApprovalEscalated,
    /// An approval ended: answered here or elsewhere, denied by the daemon, expired, cancelled.
    ApprovalResolved,
    /// A gateway's config drift changed: it drifted from its profiles, came back in sync,
    /// saved a change it has not applied, or could not be read.
    GatewayConfigDrift,
    /// A gateway said its config changed (2026.9.6's `config.changed`, passed on: the file's
    /// new hash and when); the daemon reads it back.
    GatewayConfigChanged,
    /// A managed gateway's process moved (installing, starting, running, backoff, exited,
    /// failed, stopping, stopped), with why, its pid, restarts, crashes and last exit.
    ManagedGateway,
    /// A spawn's reservation took a spend budget across its soft limit (once a window).
    SpendSoftLimit,
    /// A gateway's cron changed: a job added, updated or removed, a run started or finished
    /// (2026.9.6's `cron` event, passed on: the job's id, what happened, the run's status and
    /// times; its definition is read back with `cron.list`).
    GatewayCron,
    /// The cron watchdog found an expected fire with no run (once per slot), or ran it.
    CronMissed,
}

impl EventKind {
    pub const ALL: [EventKind; 20] = [
        EventKind::GatewayChanged,
        EventKind::GatewayStatus,
        EventKind::GatewayPrimary,
        EventKind::ConnectionChanged,
        EventKind::SessionChanged,
        EventKind::AgentStatus,
        EventKind::GatewaySpawnResult,
        EventKind::SpawnResult,
        EventKind::Log,
        EventKind::OperationProgress,
        EventKind::SessionWatchdog,
        EventKind::ApprovalRequested,
        EventKind::ApprovalEscalated,
        EventKind::ApprovalResolved,
        EventKind::GatewayConfigDrift,
        EventKind::GatewayConfigChanged,
        EventKind::ManagedGateway,
        EventKind::SpendSoftLimit,
        EventKind::GatewayCron,
        EventKind::CronMissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::GatewayChanged => "gateway.changed",
            EventKind::GatewayStatus => "gateway.status",
            EventKind::GatewayPrimary => "gateway.primary",
            EventKind::ConnectionChanged => "connection.changed",
            EventKind::SessionChanged => "session.changed",
            EventKind::AgentStatus => "agent.status",
            EventKind::GatewaySpawnResult => "gateway.spawn_result",
            EventKind::SpawnResult => "spawn.result",
            EventKind::Log => "log",
            EventKind::OperationProgress => "operation.progress",
            EventKind::SessionWatchdog => "session.watchdog",
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalEscalated => "approval.escalated",
            EventKind::ApprovalResolved => "approval.resolved",
            EventKind::GatewayConfigDrift => "gateway.config_drift",
            EventKind::GatewayConfigChanged => "gateway.config_changed",
            EventKind::ManagedGateway => "gateway.managed",
            EventKind::SpendSoftLimit => "spend.soft_limit",
            EventKind::GatewayCron => "gateway.cron",
            EventKind::CronMissed => "cron.missed",
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<GatewayId>,
    /// Unix milliseconds.
    pub ts: i64,
    pub payload: Value,
}

struct Inner {
    next_id: u64,
    /// In a cluster: events go to the database first (one global order for every instance)
    /// and come back through [`EventBus::deliver`]; `publish` only queues them here.
    outbox: Option<tokio::sync::mpsc::Sender<Event>>,
    /// Each event with its approximate size.
    replay: VecDeque<(Arc<Event>, usize)>,
    replay_bytes: usize,
}

/// Why a resumption cannot be complete (the stream starts with a `reset` event saying so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeGap {
    /// Events between the client's last and `oldest_kept` are gone.
    TooFarBehind { oldest_kept: u64 },
    /// The client's last id was never issued here (ids started again at a restart).
    UnknownId { next: u64 },
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Subscribers dropped for falling too far behind.
    dropped: Arc<std::sync::atomic::AtomicU64>,
    /// Events dropped because the cluster's outbox was full.
    outbox_dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        EventBus {
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1,
                outbox: None,
                replay: VecDeque::with_capacity(REPLAY),
                replay_bytes: 0,
            })),
            tx,
            dropped: Arc::default(),
            outbox_dropped: Arc::default(),
        }
    }

    /// Live subscribers (event streams and sockets) right now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A subscriber fell too far behind and was dropped (its stream says so, then ends).
    pub fn note_dropped(&self) {
        self.dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Subscribers dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// In a cluster: from now on events are numbered by the database. Returns the queue of
    /// published events (bounded: an event that finds it full is dropped and counted) for the
    /// cluster to store; stored events come back through [`deliver`](Self::deliver).
    pub fn through_outbox(&self, capacity: usize) -> tokio::sync::mpsc::Receiver<Event> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).outbox = Some(tx);
        rx
    }

    /// Events lost because the cluster's outbox was full.
    pub fn outbox_dropped(&self) -> u64 {
        self.outbox_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Publishes an event: numbered and sent to subscribers at once, or, in a cluster, queued
    /// for the database (returns 0: the database numbers it).
    pub fn publish(&self, kind: EventKind, gateway_id: Option<GatewayId>, payload: Value) -> u64 {
        let (payload, payload_size) = bounded::json_sized(payload, bounded::PAYLOAD);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut event = Event {
            id: 0,
            kind,
            gateway_id,
            ts: now_ms(),
            payload,
        };
        if let Some(outbox) = &inner.outbox {
            if outbox.try_send(event).is_err() {
                self.outbox_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return 0;
        }
        event.id = inner.next_id;
        Self::append(&mut inner, &self.tx, event, payload_size)
    }

    /// An event the database numbered (in a cluster): kept and sent to subscribers, in id
    /// order; one not newer than the last is ignored (already delivered).
    pub fn deliver(&self, event: Event) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if event.id < inner.next_id {
            return;
        }
        let payload_size = serde_json::to_string(&event.payload).map_or(0, |s| s.len());
        Self::append(&mut inner, &self.tx, event, payload_size);
    }

    /// Whether a client resuming after `last` has missed events it cannot be given: older
    /// ones than the replay keeps, or an id this bus never issued (the ids started again: a
    /// daemon alone restarted). `None`: the replay has everything after `last`.
    pub fn resume_gap(&self, last: u64) -> Option<ResumeGap> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if last >= inner.next_id {
            return Some(ResumeGap::UnknownId {
                next: inner.next_id,
            });
        }
        match inner.replay.front() {
            Some((oldest, _)) if last + 1 < oldest.id => Some(ResumeGap::TooFarBehind {
                oldest_kept: oldest.id,
            }),
            _ => None,
        }
    }

    fn append(
        inner: &mut Inner,
        tx: &broadcast::Sender<Arc<Event>>,
        event: Event,
        payload_size: usize,
    ) -> u64 {
        let size = payload_size + EVENT_OVERHEAD;
        let event = Arc::new(event);
        inner.next_id = event.id + 1;
        while inner.replay.len() == REPLAY || inner.replay_bytes + size > REPLAY_BYTES {
            let Some((_, dropped)) = inner.replay.pop_front() else {
                break;
            };
            inner.replay_bytes -= dropped;
        }
        inner.replay.push_back((event.clone(), size));
        inner.replay_bytes += size;
        // Sent under the lock so ids reach every subscriber in order; no receivers is fine.
        let _ = tx.send(event.clone());
        event.id
    }

    /// A live subscription plus the buffered events after `last_id` (for resumption). Events
    /// published between the two are in exactly one of them: subscribe under the lock.
    pub fn subscribe_after(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let backlog = match last_id {
            Some(last) => inner
                .replay
                .iter()
                .filter(|(e, _)| e.id > last)
                .map(|(e, _)| e.clone())
                .collect(),
            None => Vec::new(),
        };
        (backlog, rx)
    }

    pub fn recent(&self, limit: usize) -> Vec<Arc<Event>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .replay
            .iter()
            .rev()
            .take(limit)
            .rev()
            .map(|(e, _)| e.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resumption_that_lost_events_is_told_so() {
        let bus = EventBus::new();
        for _ in 0..(REPLAY + 10) {
            bus.publish(EventKind::GatewayStatus, Some(GatewayId(1)), json!({}));
        }
        // Kept: 11 ..= REPLAY + 10.
        assert_eq!(bus.resume_gap(REPLAY as u64 + 5), None);
        assert_eq!(bus.resume_gap(10), None);
        assert_eq!(
            bus.resume_gap(3),
            Some(ResumeGap::TooFarBehind { oldest_kept: 11 })
        );
        // An id this bus never issued (a restarted daemon numbers from 1 again).
        assert_eq!(
            bus.resume_gap(99_999),
            Some(ResumeGap::UnknownId {
                next: REPLAY as u64 + 11
            })
        );
    }

    #[test]
    fn in_a_cluster_events_wait_for_their_number_and_arrive_in_its_order() {
        let bus = EventBus::new();
        let mut outbox = bus.through_outbox(8);
        let (_, mut rx) = bus.subscribe_after(None);
        assert_eq!(
            bus.publish(
                EventKind::GatewayStatus,
                Some(GatewayId(1)),
                json!({"a": 1})
            ),
            0
        );
        // Queued for the database, not delivered yet.
        assert!(rx.try_recv().is_err());
        let mut queued = outbox.try_recv().unwrap();
        queued.id = 41;
        bus.deliver(queued.clone());
        // Numbered by the database: delivered once, in order; an older number is ignored.
        bus.deliver(queued);
        bus.deliver(Event {
            id: 40,
            kind: EventKind::GatewayStatus,
            gateway_id: None,
            ts: 0,
            payload: json!({}),
        });
        assert_eq!(rx.try_recv().unwrap().id, 41);
        assert!(rx.try_recv().is_err());
        // A full outbox drops and counts.
        for _ in 0..9 {
            bus.publish(EventKind::GatewayStatus, None, json!({}));
        }
        assert_eq!(bus.outbox_dropped(), 1);
    }

    #[test]
    fn event_types_keep_the_names_clients_filter_on() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "gateway.changed",
                "gateway.status",
                "gateway.primary",
                "connection.changed",
                "session.changed",
                "agent.status",
                "gateway.spawn_result",
                "spawn.result",
                "log",
                "operation.progress",
                "session.watchdog",
                "approval.requested",
                "approval.escalated",
                "approval.resolved",
                "gateway.config_drift",
                "gateway.config_changed",
                "gateway.managed",
                "spend.soft_limit",
                "gateway.cron",
                "cron.missed",
            ]
        );
        let bus = EventBus::new();
        bus.publish(EventKind::SpawnResult, Some(GatewayId(3)), json!({}));
        let event = serde_json::to_value(&*bus.recent(1)[0]).unwrap();
        assert_eq!(event["type"], "spawn.result");
    }

    #[test]
    fn ids_increase_and_resumption_replays_what_was_missed() {
        let bus = EventBus::new();
        for i in 0..5 {
            bus.publish(
                EventKind::GatewayStatus,
                Some(GatewayId(i)),
                json!({"i": i}),
            );
        }
        let (backlog, mut rx) = bus.subscribe_after(Some(3));
        assert_eq!(backlog.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 5]);
        bus.publish(EventKind::GatewayStatus, None, json!({}));
        assert_eq!(rx.try_recv().unwrap().id, 6);
    }

    #[test]
    fn replay_is_bounded() {
        let bus = EventBus::new();
        for _ in 0..(REPLAY + 10) {
            bus.publish(EventKind::GatewayStatus, None, json!({}));
        }
        let (backlog, _) = bus.subscribe_after(Some(0));
        assert_eq!(backlog.len(), REPLAY);
        assert_eq!(backlog[0].id, 11);
    }

    #[test]
    fn large_payloads_are_cut_and_the_replay_is_bounded_by_bytes() {
        let bus = EventBus::new();
        for _ in 0..400 {
            bus.publish(
                EventKind::Log,
                Some(GatewayId(1)),
                json!({"message": "x".repeat(1 << 20)}),
            );
        }
        let (backlog, _) = bus.subscribe_after(Some(0));
        let kept: usize = backlog.iter().map(|e| e.to_json_len()).sum();
        assert!(kept <= REPLAY_BYTES, "{kept} bytes kept");
        assert!(!backlog.is_empty());
        let last = backlog.last().unwrap();
        assert_eq!(last.id, 400);
        assert!(last.payload.to_string().len() <= bounded::PAYLOAD);
    }

    impl Event {
        fn to_json_len(&self) -> usize {
            serde_json::to_string(self).unwrap().len()
        }
    }

    #[test]
    fn a_slow_subscriber_lags_without_blocking_the_bus() {
        let bus = EventBus::new();
        let (_, mut slow) = bus.subscribe_after(None);
        for _ in 0..(SUBSCRIBER_BUFFER * 4) {
            bus.publish(EventKind::GatewayStatus, None, json!({}));
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
