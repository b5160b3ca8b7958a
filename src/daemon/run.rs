//! Serving: the API and metrics servers on the listeners bound at start, the background tasks,
//! the signal loop, and the orderly stop — requests finished, leases given up, every gateway
//! socket closed with 1000, the last events and key usage stored, the database checkpointed.

use std::fs;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use gateway_supervisor_actors::messages::StopAllLinks;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use super::loops::{
    OPERATIONS_ROUND, adopt_runs, expire_maintenance, reap_connections, refresh_keys, watchdog,
};
use super::reload::reload;
use super::running::Running;
use super::{DaemonError, HTTP_ADDR_FILE};
use crate::http::{self, observe::Observe};
use crate::{db, systemd};

pub(super) fn bind_listener(
    addr: std::net::SocketAddr,
) -> Result<std::net::TcpListener, DaemonError> {
    std::net::TcpListener::bind(addr).map_err(|e| listen_error(addr, e))
}

/// Writes `<state>/http.addr`: where the API listens (useful with port 0).
fn write_addrs(state_dir: &std::path::Path, listening: &[String]) {
    if let Err(e) = fs::write(
        state_dir.join(HTTP_ADDR_FILE),
        format!("{}\n", listening.join(" ")),
    ) {
        warn!(%e, "could not write the http.addr file");
    }
}

/// [`write_addrs`] for a listener the stand-in answers on before the server starts.
pub(super) fn write_addr_file(state_dir: &std::path::Path, listener: &std::net::TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        write_addrs(state_dir, &[addr.to_string()]);
    }
}

pub(super) fn listen_error(addr: impl ToString, e: std::io::Error) -> DaemonError {
    DaemonError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}

pub(super) async fn run(mut rt: Running) -> Result<(), DaemonError> {
    let metrics_separate = rt.cfg.metrics.bind;
    let max_body = rt.cfg.limits.max_body_bytes;
    let app_state = rt.state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(Observe::new(
                app_state.metrics.clone(),
                app_state.access_log,
            ))
            .configure(http::routes(
                app_state.clone(),
                max_body,
                metrics_separate.is_none(),
            ))
    })
    .disable_signals()
    // A request head must arrive within 10 s; a client gets 2 s to take a response before
    // its connection is dropped (bodies have their own deadline: `json::BODY_TIMEOUT`).
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .shutdown_timeout(rt.cfg.server.shutdown_timeout.as_secs());
    if rt.cfg.server.workers > 0 {
        server = server.workers(rt.cfg.server.workers);
    }
    let server = server
        .listen(
            rt.listeners
                .http
                .take()
                .ok_or_else(|| DaemonError::Startup("the HTTP listener was taken".into()))?,
        )
        .map_err(|e| listen_error(rt.cfg.server.bind, e))?;
    let addrs = server.addrs();
    let listening: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    write_addrs(&rt.cfg.state.dir, &listening);
    let server = server.run();
    let handle = server.handle();
    let server_task = actix::spawn(server);

    let metrics_handle = match (metrics_separate, rt.listeners.metrics.take()) {
        (Some(bind), Some(listener)) => {
            let state = rt.state.clone();
            let metrics_server = HttpServer::new(move || {
                App::new()
                    .wrap(Observe::new(state.metrics.clone(), state.access_log))
                    .configure(http::metrics_routes(state.clone()))
            })
            .disable_signals()
            .workers(1)
            .listen(listener)
            .map_err(|e| listen_error(bind, e))?
            .run();
            let h = metrics_server.handle();
            actix::spawn(metrics_server);
            info!(%bind, "metrics listening");
            Some(h)
        }
        _ => None,
    };

    rt.state.ready.store(true, Ordering::Release);
    info!(addr = %listening.join(" "), "listening");
    systemd::ready(&format!("serving on {}", listening.join(" ")));

    let mut background = std::mem::take(&mut rt.background);
    let (state, cfg) = (&rt.state, &rt.cfg);
    if let Some(interval) = systemd::watchdog_interval() {
        background.start(
            "systemd watchdog",
            watchdog(state.registry.clone(), interval),
        );
    }
    let keys = refresh_keys(state.keys.clone(), cfg.auth.key_refresh_interval);
    background.start("API key refresh", keys);
    background.start(
        "log follow",
        state.logs.clone().follow(state.events.clone()),
    );
    let timeout = cfg.connections.timeout;
    background.start(
        "connection reaper",
        reap_connections(state.clone(), timeout),
    );
    background.start("run adoption", adopt_runs(state.fleet.clone()));
    if let Some(news) = rt.approval_news.take() {
        background.start("approvals inbox", state.approvals.clone().run(news));
    }
    background.start("config drift", state.fleet_config.clone().run());
    background.start("cron", state.cron.clone().run());
    background.start(
        "maintenance expiry",
        expire_maintenance(state.fleet.clone()),
    );
    // A token rotation a stopped daemon left on record: settled once the links are up.
    let gateway_ops = state.fleet.gateway_ops.clone();
    background.start("rotation settle", async move {
        gateway_ops.settle_rotations().await
    });
    let operations = state.fleet.operations.clone();
    background.start(
        "operations engine",
        operations.operations_loop(OPERATIONS_ROUND),
    );
    let watchdog = state.fleet.watchdog.clone();
    let (wcfg, wmetrics) = (cfg.watchdog.clone(), state.metrics.watchdog.clone());
    background.start("session watchdog", watchdog.watchdog_loop(wcfg, wmetrics));
    let log_tail = state.fleet.log_tail.clone();
    background.start("log tail", log_tail.log_tail_loop(cfg.gateway_logs.clone()));
    let usage = state.fleet.usage.clone();
    let (ucfg, umetrics) = (cfg.usage.clone(), state.metrics.usage.clone());
    background.start("usage roll-up", usage.usage_loop(ucfg, umetrics));
    if let Some((deliver, watch)) = crate::alerts::loops(
        &cfg.alerts,
        state.registry.clone(),
        state.gateways(),
        state.events.clone(),
        state.store.clone(),
        state.metrics.alerts.clone(),
    ) {
        background.start("alert delivery", deliver);
        background.start("alert watch", watch);
    }
    let (audit, audit_metrics) = (cfg.audit.clone(), state.metrics.audit.clone());
    if audit.sink_url.is_some() {
        let sink = crate::audit::sink::run(
            audit.clone(),
            state.registry.clone(),
            state.store.clone(),
            audit_metrics.clone(),
        );
        background.start("audit sink", sink);
    }
    if audit.retention.is_some() || !audit.retention_by_tenant.is_empty() {
        let sweep = crate::audit::sweep::run(
            audit,
            state.registry.clone(),
            state.store.clone(),
            audit_metrics,
        );
        background.start("audit retention", sweep);
    }
    let cluster_stop = tokio::sync::watch::Sender::new(false);
    let events_stop = tokio::sync::watch::Sender::new(false);
    let events_task = match (rt.state.cluster.clone(), rt.event_outbox.take()) {
        (Some(cluster), Some(outbox)) => Some(actix::spawn(crate::cluster::events::pump(
            cluster,
            rt.cfg.cluster.poll_interval,
            rt.state.store.clone(),
            rt.state.events.clone(),
            outbox,
            events_stop.subscribe(),
        ))),
        _ => None,
    };
    if let Some(cluster) = &rt.state.cluster {
        crate::cluster::wake::listen(
            rt.cfg.database.url.clone(),
            cluster.wake.clone(),
            cluster_stop.subscribe(),
        );
    }
    let cluster_task = rt.state.cluster.clone().map(|cluster| {
        let mut cfg = rt.cfg.cluster.clone();
        // Unset: where this daemon listens (its host name for a wildcard address).
        if cfg.advertise_url.is_none() {
            cfg.advertise_url = addrs.first().map(crate::cluster::default_advertise_url);
        }
        // On a thread of its own: the heartbeat is this instance's life, and on the system
        // thread it waited behind the registry's work — 10 instances starting with 100,000
        // gateways on two cores missed every round for 12 s while their registries took in
        // link reports, fenced themselves and lapsed (docs/design.md, *Cluster*).
        let arbiter = actix::Arbiter::new();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let run = crate::cluster::runner::run(
            cluster,
            cfg,
            rt.state.store.clone(),
            rt.state.registry.clone(),
            cluster_stop.subscribe(),
        );
        arbiter.spawn(async move {
            run.await;
            let _ = done.send(());
        });
        (arbiter, finished)
    });

    let mut term =
        signal(SignalKind::terminate()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => reload(&mut rt),
        }
    }

    systemd::stopping();
    rt.state.ready.store(false, Ordering::Release);
    // Event streams never finish on their own: end them, then stop accepting and let
    // in-flight requests finish (up to server.shutdown_timeout).
    rt.state.shutdown.send_replace(true);
    // Let them go before the server stops: a connection still open when it does costs a whole
    // second (the server's workers look again once a second), and a WebSocket client that
    // never answers our close frame used to hold the stop for two.
    let streams = rt.state.streams.clone();
    let ended = tokio::time::timeout(Duration::from_millis(250), async move {
        while streams.open() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if ended.is_err() {
        warn!(
            open = rt.state.streams.open(),
            "event streams still open at the stop"
        );
    }
    handle.stop(true).await;
    if let Some(h) = metrics_handle {
        h.stop(true).await;
    }
    let _ = server_task.await;
    // The loops stop before the links close: none acts on a gateway whose socket goes away.
    background.stop().await;
    // No more leases taken; then every gateway socket closed with 1000; then the leases
    // released, so peers adopt the gateways at once.
    cluster_stop.send_replace(true);
    if let Some((arbiter, finished)) = cluster_task {
        let _ = finished.await;
        arbiter.stop();
    }
    if let Err(e) = rt.state.registry.send(StopAllLinks).await {
        warn!(%e, "could not stop the gateway links");
    }
    if let Some(cluster) = &rt.state.cluster {
        crate::cluster::runner::leave(cluster, &rt.state.store, Duration::from_secs(5)).await;
    }
    // The links' last events are queued by now: store them.
    events_stop.send_replace(true);
    if let Some(task) = events_task {
        let _ = task.await;
    }
    let keys = rt.state.keys.clone();
    if let Err(e) = web::block(move || keys.refresh())
        .await
        .map(|r| r.map_err(|e| e.to_string()))
    {
        warn!(%e, "final key usage flush failed");
    }
    if let Err(e) = rt.state.store.call(|s| db::checkpoint(&s.pool)).await {
        warn!(%e, "final database checkpoint failed");
    }
    info!("stopped");
    actix::System::current().stop();
    Ok(())
}
