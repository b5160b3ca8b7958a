//! Webhook alerts: a gateway that goes down is announced once (offline, breaker), signed with the configured secret, retried when the receiver fails, logged; the
//! same gateway bouncing again within the damping window sends nothing more.

use std::time::Duration;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::webhook::{count, delivered, receiver};
use crate::support::{online, wait_for};

const SECRET: &str = "webhook-secret-0123456789";

#[test]
fn a_failing_gateway_is_announced_once_signed_retried_and_logged() {
    let (url, got) = receiver();
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL", url.as_str()),
        ("GATEWAY_SUPERVISOR__ALERTS__SECRET", SECRET),
        ("GATEWAY_SUPERVISOR__ALERTS__OFFLINE_AFTER", "1s"),
        ("GATEWAY_SUPERVISOR__ALERTS__DAMPING", "1h"),
        ("GATEWAY_SUPERVISOR__ALERTS__RETRIES", "3"),
    ]);
    let fakes = [fake(|_| {}), fake(|_| {})];
    let ids = [
        add(&d, "alpha", &fakes[0], Some("fake-token")),
        add(&d, "bravo", &fakes[1], Some("fake-token")),
    ];
    for id in ids {
        wait_gateway(&d, id, "online", online);
    }
    // The one shown acting as primary goes away.
    let (x, _) = if crate::support::fleet::gateway(&d, ids[0])["acting_primary"] == true {
        (0, 1)
    } else {
        (1, 0)
    };
    let names = ["alpha", "bravo"];
    let (a, ia) = (&fakes[x], ids[x]);
    // Offline, its breaker open, the other acting for it.
    a.stop();
    let first = wait_for(
        "the alerts of the primary going down",
        Duration::from_secs(30),
        || {
            let alerts = delivered(&got);
            let all_in = count(&alerts, "gateway_offline", "firing") == 1
                && count(&alerts, "breaker_open", "firing") == 1;
            if all_in {
                Ok(alerts)
            } else {
                Err(format!("{alerts:#?}"))
            }
        },
    );
    let offline = first
        .iter()
        .find(|a| a["kind"] == "gateway_offline")
        .unwrap();
    assert_eq!(offline["gateway_id"], ia);
    let name = format!("`{}`", names[x]);
    assert!(
        offline["summary"].as_str().unwrap().contains(&name),
        "{offline}"
    );
    // Every body is signed with the secret, and names its delivery.
    for r in got.lock().unwrap().iter() {
        let expected = crate::support::webhook::signature(SECRET, &r.body);
        assert_eq!(
            r.header("x-gateway-supervisor-signature"),
            Some(expected.as_str())
        );
        assert_eq!(
            r.header("x-gateway-supervisor-delivery"),
            r.json()["id"].as_str()
        );
    }
    // The first delivery met a 500 and was tried again: the same alert, delivered on attempt 2
    // (other alerts may go in between: they are delivered side by side).
    let (refused, retried) = {
        let all = got.lock().unwrap();
        let refused = all[0].json();
        let retried = all[1..]
            .iter()
            .map(|r| r.json())
            .find(|r| r["id"] == refused["id"]);
        (refused, retried)
    };
    assert!(retried.is_some(), "the refused delivery was tried again");
    // The outcome is recorded once the receiver's answer is back: a moment after the receiver
    // saw the body.
    wait_for(
        "the delivery logged as delivered on attempt 2",
        Duration::from_secs(10),
        || {
            let log = d.get("/api/alerts", &d.admin_key).json();
            let row = log["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == refused["id"])
                .cloned()
                .ok_or_else(|| format!("{log:#}"))?;
            if (row["status"].as_str(), row["attempts"].as_i64()) == (Some("delivered"), Some(2)) {
                Ok(())
            } else {
                Err(row.to_string())
            }
        },
    );

    // Back: resolved. Down and back again within the damping window: nothing more fires.
    a.resume().unwrap();
    wait_for("its alerts resolved", Duration::from_secs(30), || {
        let alerts = delivered(&got);
        let resolved = count(&alerts, "gateway_offline", "resolved") == 1
            && count(&alerts, "breaker_open", "resolved") == 1;
        if resolved {
            Ok(())
        } else {
            Err(format!("{alerts:#?}"))
        }
    });
    wait_gateway(&d, ia, "online again", online);
    a.stop();
    wait_gateway(&d, ia, "offline again", |g| g["status"] == "offline");
    wait_for("the bounce held back", Duration::from_secs(30), || {
        let metrics = d.get("/metrics", "").text();
        let held = metrics.lines().any(|l| {
            l.starts_with("gateway_supervisor_alerts_total{kind=\"flap\",outcome=\"suppressed\"}")
        });
        if held {
            Ok(())
        } else {
            Err("no suppressed flap yet".to_owned())
        }
    });
    let alerts = delivered(&got);
    for kind in ["gateway_offline", "breaker_open"] {
        assert_eq!(
            count(&alerts, kind, "firing"),
            1,
            "{kind} fired once: {alerts:#?}"
        );
    }
    // Its firing and its resolve; the second outage was held back.
    let metrics = d.get("/metrics", "").text();
    assert!(
        metrics.contains(
            "gateway_supervisor_alerts_total{kind=\"gateway_offline\",outcome=\"delivered\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        !crate::support::contains(&d.logs(), SECRET.as_bytes()),
        "the secret is never logged"
    );
}

#[test]
fn a_webhook_without_a_secret_is_refused_by_the_configuration_check() {
    let out = std::process::Command::new(crate::support::binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL",
            "http://127.0.0.1:9/hook",
        )
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("alerts.secret"), "{stderr}");
}

/// A receiver that hangs on one alert holds up only that one: the others are delivered
/// meanwhile (one at a time, each later alert waited ~91 s), and the alert in flight shows
/// its attempt (it read `attempts: 0`).
#[test]
fn a_receiver_hanging_on_one_alert_holds_up_no_other() {
    let (url, got) = crate::support::webhook::receiver_hanging_first();
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL", url.as_str()),
        ("GATEWAY_SUPERVISOR__ALERTS__SECRET", SECRET),
        ("GATEWAY_SUPERVISOR__ALERTS__OFFLINE_AFTER", "1s"),
        ("GATEWAY_SUPERVISOR__ALERTS__TIMEOUT", "60s"),
    ]);
    let fakes = [fake(|_| {}), fake(|_| {}), fake(|_| {})];
    let ids: Vec<i64> = ["alpha", "bravo", "charlie"]
        .iter()
        .zip(&fakes)
        .map(|(name, f)| add(&d, name, f, Some("fake-token")))
        .collect();
    for id in &ids {
        wait_gateway(&d, *id, "online", online);
    }
    for f in &fakes[1..] {
        f.stop();
    }
    // Four alerts at least (offline and breaker for each of two); the first hangs for 60 s.
    let alerts = wait_for(
        "the other alerts delivered while one hangs",
        Duration::from_secs(30),
        || {
            let n = got.lock().unwrap().len();
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("{n} delivered"))
            }
        },
    );
    assert!(alerts >= 3);
    // A delivery's outcome is recorded once the receiver's answer is back, a moment after the
    // receiver saw it: wait until only the hanging one is in flight.
    let in_flight = wait_for(
        "only the hanging delivery in flight",
        Duration::from_secs(10),
        || {
            let list = d.get("/api/alerts", &d.admin_key).json();
            let pending: Vec<serde_json::Value> = list["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["status"] == "pending")
                .cloned()
                .collect();
            if pending.len() == 1 {
                Ok(pending)
            } else {
                Err(format!("{list:#}"))
            }
        },
    );
    assert_eq!(in_flight[0]["attempts"], 1, "{in_flight:#?}");
}

/// A failed operation of any kind is alerted with what an operator needs to act: a config
/// rollout's `operation_failed` names every gateway with its step and why, and the rollout's
/// own `detail` (before the one engine, a rollout's end carried no gateways: the alert named
/// none).
#[test]
fn a_failed_rollout_is_alerted_naming_its_gateways_and_why() {
    let (url, got) = receiver();
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL", url.as_str()),
        ("GATEWAY_SUPERVISOR__ALERTS__SECRET", SECRET),
        ("GATEWAY_SUPERVISOR__ALERTS__OFFLINE_AFTER", "1h"),
    ]);
    let (fakes, ids) = crate::support::fleet::fleet_of(2, &d, |_, _| {});
    // The second is down past the rollout's deadline: not written, failed.
    fakes[1].stop();
    wait_gateway(&d, ids[1], "offline", |g| !online(g));
    let patch = serde_json::json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}});
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &serde_json::json!({"selector": "", "patch": patch, "canary": 0, "max_parallel": 2,
            "min_healthy_time": 0, "healthy_deadline": "2s", "auto_revert": false}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let alerts = wait_for(
        "the operation_failed alert",
        Duration::from_secs(30),
        || {
            let a = delivered(&got);
            if count(&a, "operation_failed", "firing") == 1 {
                Ok(a)
            } else {
                Err(format!("{a:#?}"))
            }
        },
    );
    let fired = alerts
        .iter()
        .find(|a| a["kind"] == "operation_failed")
        .unwrap();
    let details = &fired["details"];
    assert_eq!(details["operation_id"], id.as_str(), "{fired:#}");
    assert_eq!(details["kind"], "config_rollout", "{fired:#}");
    let gateways = details["gateways"].as_array().expect("the gateways named");
    let steps: Vec<(i64, &str)> = gateways
        .iter()
        .map(|g| {
            (
                g["gateway_id"].as_i64().unwrap(),
                g["step"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [(ids[0], "done"), (ids[1], "failed")], "{fired:#}");
    assert!(
        gateways[1]["detail"]
            .as_str()
            .unwrap()
            .contains("not written"),
        "{fired:#}"
    );
    assert!(
        details["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("gateway {} failed", ids[1]))),
        "{fired:#}"
    );
}
