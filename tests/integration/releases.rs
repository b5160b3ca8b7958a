//! Older OpenClaw releases, as the fake imitates them with each release's own frames
//! (`fake_gateway::Release`): their handshakes and their HTTP endpoints differ from 2026.9.6, and
//! each must be supervised all the same. The real releases run in the real-gateway e2e.

use fake_gateway::Release;
use serde_json::Value;

use crate::support::fleet::{add, imitating, link_daemon, wait_gateway};
use crate::support::{Daemon, Request, contains, online};

/// `POST /api/gateways/health` for every gateway; the probe results.
fn probe_all(d: &Daemon) -> Value {
    let res = d.send(Request::new("POST", "/api/gateways/health").key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Releases before 2026.2.26 verify only v2 signatures and refuse a v3 proof, each in its own
/// words; the link signs v2 and connects (over protocol 3) with every one of them.
#[test]
fn releases_that_verify_only_v2_signatures_are_supervised() {
    let d = link_daemon(&[]);
    for release in [Release::R2026_1_30, Release::R2026_2_25] {
        let f = imitating(release);
        let id = add(&d, &format!("{release:?}"), &f, Some("fake-token"));
        let g = wait_gateway(&d, id, "online over v2", online);
        assert_eq!(g["connection"]["protocol"], 3, "{release:?}: {g}");
        assert_eq!(g["connection"]["server_version"], "dev", "{release:?}: {g}");
        assert!(
            contains(&d.logs(), b"retrying with v2"),
            "{release:?}: the fallback is logged"
        );
    }
}

/// openclaw 2026.3.31 answers every HTTP path with 500 while its WebSocket and `health` RPC
/// work: probes degrade it and say why, but never eject it.
#[test]
fn a_release_whose_http_side_is_broken_is_degraded_not_offline() {
    let d = link_daemon(&[]);
    let f = imitating(Release::R2026_3_31);
    let id = add(&d, "r331", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    for _ in 0..4 {
        let probe = probe_all(&d);
        assert_eq!(probe["results"][0]["healthy"], true, "{probe}");
    }
    let g = wait_gateway(&d, id, "degraded with the probe's error", |g| {
        g["status"] == "degraded"
    });
    assert_eq!(g["connection"]["state"], "connected", "{g}");
    assert_eq!(g["breaker"]["state"], "closed", "{g}");
    assert!(
        g["connection"]["probe_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{g}"
    );
    // The acting primary is connected and healthy: agent sync reaches it.
    let res = d.send(Request::new("POST", "/api/agents/sync").key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
}

/// Releases before 2026.3 answer `/health` with their Control UI page: it measures nothing.
#[test]
fn a_control_ui_page_for_health_leaves_the_gateway_online() {
    let d = link_daemon(&[]);
    let f = imitating(Release::R2026_2_25);
    let id = add(&d, "r225", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    for _ in 0..4 {
        let probe = probe_all(&d);
        assert_eq!(probe["results"][0]["healthy"], true, "{probe}");
    }
    let g = wait_gateway(&d, id, "online", online);
    assert_eq!(g["connection"]["probe_error"], Value::Null, "{g}");
    assert_eq!(g["breaker"]["consecutive_failures"], 0, "{g}");
}
