//! Older real OpenClaw releases, each installed by `e2e/openclaw/install.sh VERSION` and named
//! in GS_OPENCLAW_RELEASES (install folders, space-separated; scripts/test.sh sets it):
//! 2026.2.25 verifies only v2 device signatures and has no health endpoints (its Control UI
//! page answers every path); 2026.3.31 speaks protocol 3 and answers every HTTP path with 500.
//! Each must come online, stay healthy through probes, and let the daemon sync its agents.

use std::path::PathBuf;

use gs_test_support::daemon::{Daemon, online, wait_for};
use gs_test_support::real_gateway::{RealGateway, calver};
use serde_json::json;

use super::{DEADLINE, add, free_gateway_port, gateway, log_count, wait_gateway};

#[test]
fn older_releases_are_supervised() {
    let installs: Vec<PathBuf> = std::env::var("GS_OPENCLAW_RELEASES")
        .expect("GS_OPENCLAW_RELEASES must name the older releases' install folders (scripts/test.sh sets it)")
        .split_whitespace()
        .map(PathBuf::from)
        .collect();
    assert!(
        !installs.is_empty(),
        "GS_OPENCLAW_RELEASES names no release"
    );
    for install in installs {
        let base = free_gateway_port();
        let mut gw = RealGateway::new(&install, base, "older-token-1", None);
        let version = gw.version.clone();
        gw.start();
        gw.wait_ready();
        let d = Daemon::start_with(&[
            ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
            // An older release's HTTP side answers before its WebSocket takes connects: retry
            // often rather than walk the backoff up to 30 s while it finishes starting.
            ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
            ("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "0s"),
        ]);
        let id = add(&d, "older", "127.0.0.1", gw.port, "older-token-1");
        let g = wait_for(&format!("{version} online"), DEADLINE * 2, || {
            let g = gateway(&d, id);
            if online(&g) {
                Ok(g)
            } else {
                Err(g.to_string())
            }
        });
        assert_eq!(g["connection"]["protocol"], 3, "{version}: {g}");
        let v2_only = calver(&version).is_some_and(|v| v < (2026, 2, 26, 0));
        assert_eq!(
            log_count(&d, "retrying with v2") > 0,
            v2_only,
            "{version}: v2 is offered exactly when the release refuses v3"
        );
        for _ in 0..4 {
            let probe = d
                .call(
                    "POST",
                    "/api/gateways/health",
                    &d.admin_key,
                    &json!({"gateway_id": id}),
                )
                .json();
            assert_eq!(probe["healthy"], true, "{version}: {probe}");
        }
        let g = wait_gateway(&d, id, &format!("{version} still connected"), |g| {
            g["connection"]["state"] == "connected"
        });
        assert_eq!(g["breaker"]["consecutive_failures"], 0, "{version}: {g}");
        assert_ne!(g["status"], "offline", "{version}: {g}");
        let sync = d.call("POST", "/api/agents/sync", &d.admin_key, &json!({}));
        assert_eq!(sync.status, 200, "{version}: {}", sync.text());
        assert!(
            sync.json()["synced"].as_u64().unwrap() >= 1,
            "{version}: {}",
            sync.text()
        );
        gw.stop();
    }
}
