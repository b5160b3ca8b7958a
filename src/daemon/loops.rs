//! The daemon's small periodic tasks: the systemd watchdog ping, the API-key refresh, agent runs
//! adopted from links that went away, and CLI connections reaped.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::web;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::messages::Ping;
use tracing::{error, info, warn};

use crate::auth::KeyCache;
use crate::http::AppState;
use crate::systemd;

/// Sends WATCHDOG=1 only while the registry actor answers, so a wedged daemon gets restarted.
pub(super) async fn watchdog(registry: Addr<RegistryActor>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match registry.send(Ping).timeout(interval).await {
            Ok(()) => systemd::watchdog(),
            Err(e) => error!(%e, "registry actor did not answer; withholding the watchdog ping"),
        }
    }
}

pub(super) async fn refresh_keys(keys: Arc<KeyCache>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let keys = keys.clone();
        match web::block(move || keys.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(%e, "API key refresh failed"),
            Err(e) => warn!(%e, "API key refresh task failed"),
        }
    }
}

/// How often running fleet operations are advanced (a drain's blockers asked again, a restarted
/// gateway looked at); an operation started here is taken at once.
pub(super) const OPERATIONS_ROUND: Duration = Duration::from_secs(1);

/// Every 2 s: agent runs left `running` by a link that went away (this daemon restarted, or a
/// gateway adopted from another instance) are followed again from the current link.
pub(super) async fn adopt_runs(fleet: Arc<crate::fleet::Fleet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        fleet.spawns.clone().adopt_runs().await;
    }
}

/// Marks CLI connections with no heartbeat for `connections.timeout` disconnected (and their
/// agents offline), checking a few times per timeout.
pub(super) async fn reap_connections(state: AppState, timeout: Duration) {
    let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(250)));
    loop {
        tick.tick().await;
        let secs = timeout.as_secs().max(1) as i64;
        match state.store.call(move |s| s.reap_connections(secs)).await {
            Ok(0) => {}
            Ok(n) => {
                info!(
                    connections = n,
                    "CLI connections without a heartbeat marked disconnected"
                );
                state.events.publish(
                    EventKind::AgentStatus,
                    None,
                    serde_json::json!({"reaped_connections": n, "status": crate::domain::ConnectionStatus::Disconnected}),
                );
            }
            Err(e) => warn!(%e, "connection reaper failed"),
        }
    }
}

/// How often ended maintenance windows are looked for.
const MAINTENANCE_ROUND: Duration = Duration::from_secs(5);

/// Ends maintenance windows whose `until` has passed (within [`MAINTENANCE_ROUND`]).
pub(super) async fn expire_maintenance(fleet: std::sync::Arc<crate::fleet::Fleet>) {
    let mut tick = tokio::time::interval(MAINTENANCE_ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        fleet
            .gateway_ops
            .expire_maintenance(gateway_supervisor_actors::unix_now())
            .await;
    }
}
