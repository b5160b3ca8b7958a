//! Alerts out, for operators without Alertmanager: the watch ([`rule::Watch`]) looks at the
//! registry every second, at failed operations and at approvals nobody answers, and what it decides is POSTed to
//! `alerts.webhook_url`, signed, retried with backoff, and logged (docs/design.md, *Alerts*).
//! Only the instance that decides for the fleet (alone, or the cluster's coordinator) watches,
//! so a cluster sends each alert once.

pub mod deliver;
pub mod rule;

use crate::gateway_reads::GatewayReads;
use std::time::{Duration, Instant};

use actix::Addr;

use tokio::sync::mpsc;

use crate::config::AlertsConfig;
use crate::db::Store;
use crate::domain::operation::{OperationState, ProgressEvent};
use crate::fleet::watchdog::{WatchdogEvent, WatchdogStep};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::{EventBus, EventKind};
use gateway_supervisor_actors::messages::GatewaySnapshot;
use gateway_supervisor_actors::model::{BreakerState, GatewayId, GatewayView};
use gateway_supervisor_actors::registry::Decides;
use gateway_supervisor_actors::registry::peer_table::PeersHeld;
use rule::{Alert, GatewayFact, Thresholds, Watch};

/// Alerts waiting for delivery; beyond this they are dropped and counted.
const QUEUE: usize = 1024;

/// How often the watch looks.
const EVERY: Duration = Duration::from_secs(1);

/// The watch and the delivery worker, to be run in the background, when a webhook is set.
pub fn loops(
    cfg: &AlertsConfig,
    registry: Addr<RegistryActor>,
    gateways: GatewayReads,
    events: EventBus,
    store: Store,
    counter: prometheus::IntCounterVec,
) -> Option<(
    impl Future<Output = ()> + use<>,
    impl Future<Output = ()> + use<>,
)> {
    let (Some(url), Some(secret)) = (cfg.webhook_url.clone(), cfg.secret.clone()) else {
        return None;
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let hook = deliver::Webhook::new(url, secret.as_bytes(), cfg.timeout, cfg.retries);
    tracing::info!(target = %hook.describe(), "alerts go to the webhook");
    let worker = deliver::worker(hook, rx, store, counter.clone());
    let thresholds = Thresholds {
        offline_after: cfg.offline_after,
        all_down_after: cfg.all_down_after,
        damping: cfg.damping,
    };
    Some((
        worker,
        watch(
            registry,
            gateways,
            events,
            thresholds,
            Queue { tx, counter },
        ),
    ))
}

/// The delivery queue, with its drop counter.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Alert>,
    counter: prometheus::IntCounterVec,
}

impl Queue {
    fn send(&self, alert: Alert) {
        let kind = alert.kind.as_str();
        if self.tx.try_send(alert).is_err() {
            self.counter.with_label_values(&[kind, "dropped"]).inc();
            tracing::warn!(kind, "alert queue full: alert dropped");
        }
    }
}

async fn watch(
    registry: Addr<RegistryActor>,
    gateways: GatewayReads,
    events: EventBus,
    t: Thresholds,
    queue: Queue,
) {
    let (_, mut operations) = events.subscribe_after(None);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only while this instance decides; a new decider starts from what it sees.
    let mut watch: Option<Watch> = None;
    // What the registry showed, with the count of its changes it is as of.
    let mut facts: Option<(u64, Vec<GatewayFact>, Option<GatewayId>)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !registry.send(Decides).await.unwrap_or(false) {
                    watch = None;
                    continue;
                }
                // Asked by what the registry decides, not by the live numbers every pong moves:
                // at 10,000 gateways the list would otherwise be rebuilt and copied every second.
                let since = facts.as_ref().map(|(changes, _, _)| *changes);
                let Ok(changed) = gateways.changed_since(since).await else { continue };
                if let Some(GatewaySnapshot { changes, views, peers }) = changed {
                    let acting = acting_primary(&views, &peers);
                    facts = Some((changes, gateway_facts(&views, &peers), acting));
                }
                let Some((_, facts, acting)) = &facts else { continue };
                let w = watch.get_or_insert_with(Watch::default);
                let before = w.suppressed;
                for alert in w.observe(Instant::now(), facts, *acting, &t) {
                    queue.send(alert);
                }
                for _ in before..w.suppressed {
                    queue.counter.with_label_values(&["flap", "suppressed"]).inc();
                }
            }
            event = operations.recv() => match event {
                Ok(e) if e.kind == EventKind::SessionWatchdog => {
                    let stalled = serde_json::from_value::<WatchdogEvent>(e.payload.clone());
                    if let (Some(w), Some(gateway), Ok(ev)) = (watch.as_mut(), e.gateway_id, stalled)
                        && matches!(ev.step, WatchdogStep::Unrecovered | WatchdogStep::Recovered)
                        && let Some(alert) = w.session(gateway, &ev.session_key, ev.step == WatchdogStep::Unrecovered, e.payload.clone())
                    {
                        queue.send(alert);
                    }
                }
                Ok(e) if matches!(e.kind, EventKind::ApprovalEscalated | EventKind::ApprovalResolved) => {
                    let escalated = e.kind == EventKind::ApprovalEscalated;
                    if watch.is_some()
                        && let Ok(approval) = serde_json::from_value(e.payload.clone())
                        && let Some(alert) = Watch::approval(escalated, &approval)
                    {
                        queue.send(alert);
                    }
                }
                Ok(e) if e.kind == EventKind::ManagedGateway => {
                    if let Some(w) = watch.as_mut()
                        && let Ok(event) = serde_json::from_value(e.payload.clone())
                        && let Some(alert) = w.managed_gateway(e.gateway_id, &event)
                    {
                        queue.send(alert);
                    }
                }
                Ok(e) if e.kind == EventKind::SpendSoftLimit => {
                    if watch.is_some()
                        && let Ok(said) = serde_json::from_value(e.payload.clone())
                    {
                        queue.send(Watch::spend_soft_limit(e.gateway_id, &said));
                    }
                }
                Ok(e) if e.kind == EventKind::CronMissed => {
                    if watch.is_some()
                        && let Ok(missed) = serde_json::from_value(e.payload.clone())
                        && let Some(alert) = Watch::cron_missed(&missed)
                    {
                        queue.send(alert);
                    }
                }
                Ok(e) if e.kind == EventKind::OperationProgress && e.gateway_id.is_none() => {
                    if watch.is_some()
                        && let Some(ended) = ProgressEvent::read(&e.payload)
                        && ended.state == OperationState::Failed
                    {
                        queue.send(Watch::operation_failed(&ended));
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
        }
    }
}

fn gateway_facts(views: &[std::sync::Arc<GatewayView>], peers: &PeersHeld) -> Vec<GatewayFact> {
    let here = views.iter().map(|v| GatewayFact {
        id: v.record.id,
        name: v.record.name.clone(),
        status: v.record.status,
        connected: v.record.status.reachable(),
        breaker_open: v.breaker.state == BreakerState::Open,
        maintenance: v.record.maintenance.is_some(),
    });
    // In a cluster a gateway linked elsewhere is known by the status its owner wrote (its
    // breaker is its owner's to know).
    let elsewhere = peers.iter().map(|p| GatewayFact {
        id: p.id(),
        name: p.candidate.name.to_string(),
        status: p.status,
        connected: p.status.reachable(),
        breaker_open: false,
        maintenance: p.in_maintenance,
    });
    here.chain(elsewhere).collect()
}

fn acting_primary(views: &[std::sync::Arc<GatewayView>], peers: &PeersHeld) -> Option<GatewayId> {
    (views.iter().find(|v| v.acting_primary).map(|v| v.record.id)).or_else(|| {
        peers
            .iter()
            .find(|p| p.candidate.acting_primary)
            .map(|p| p.id())
    })
}

/// The metric of what became of alerts: `alerts_total{kind, outcome}` (outcome: delivered,
/// failed, dropped, suppressed).
pub fn counter() -> Result<prometheus::IntCounterVec, prometheus::Error> {
    prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "alerts_total",
            "Webhook alerts by kind and outcome (delivered, failed after every retry, dropped on a full queue; flaps held back by damping as kind=\"flap\", outcome=\"suppressed\").",
        ),
        &["kind", "outcome"],
    )
}
