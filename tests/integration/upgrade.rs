//! Canary-first upgrades against fake gateways that update themselves as 2026.9.6's managed
//! handoff does (`update.run` acknowledged with a run id, the run record's phases, a restart
//! into the new release or a rollback to the old): the canary goes first and bakes, the rest
//! follow onto its release; a canary that rolls back stops everything; a release without
//! `update.run` is passed over and a gateway that refuses is shown with its reason.

use std::sync::atomic::Ordering;

use fake_gateway::{FakeGateway, Release, Update};
use serde_json::{Value, json};

use crate::support::fleet::{
    audit_actions, fleet_of, gateway, link_daemon, start, steps_of, wait_gateway, wait_operation,
};
use crate::support::online;

fn updates(f: &FakeGateway) -> u64 {
    f.counters().update_runs.load(Ordering::Relaxed)
}

fn to(version: &str) -> Update {
    Update::To {
        version: version.into(),
    }
}

fn over(op: &Value) -> bool {
    op["state"] != "running"
}

#[test]
fn a_canary_upgrade_takes_the_canary_first_then_the_rest_onto_its_release() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(3, &d, |_, c| c.update = to("2026.10.1"));
    let before: Vec<String> = fakes.iter().map(FakeGateway::boot_id).collect();
    let op = start(
        &d,
        "/api/fleet/upgrade",
        &json!({"gateway_ids": ids, "canary": 1, "canary_bake_seconds": 1, "max_unavailable": 2,
                "wait_ready_seconds": 30}),
    );
    let done = wait_operation(&d, &op, "the upgrade over", over);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["kind"], "upgrade");
    let gws = done["gateways"].as_array().unwrap();
    for (i, (f, id)) in fakes.iter().zip(&ids).enumerate() {
        let p = &gws[i];
        assert_eq!(p["step"], "done", "{p:#}");
        assert_eq!(p["canary"], i == 0);
        assert_eq!(p["version_before"], "2026.9.6");
        assert_eq!(p["version_after"], "2026.10.1");
        assert_eq!(p["boot_id_before"], before[i].as_str());
        assert_eq!(p["boot_id_after"], f.boot_id().as_str());
        assert_ne!(before[i], f.boot_id(), "a new process");
        assert_eq!(updates(f), 1, "gateway {id} asked once");
        let g = wait_gateway(&d, *id, "online on the new release", |g| {
            online(g) && g["connection"]["server_version"] == "2026.10.1"
        });
        assert_eq!(g["cordoned"], false, "{g:#}");
    }
    assert!(
        gws[0]["detail"]
            .as_str()
            .unwrap()
            .contains("upgraded 2026.9.6 → 2026.10.1; stayed healthy through its bake"),
        "{:#}",
        gws[0]
    );
    // The canary, bake included, was over before any other began; the others went together.
    let canary_end = gws[0]["finished_at"].as_i64().unwrap();
    for p in &gws[1..] {
        assert!(p["started_at"].as_i64().unwrap() >= canary_end, "{gws:#?}");
    }
    let audit = audit_actions(&d);
    assert!(
        audit.iter().filter(|a| *a == "gateway.upgrade").count() == 3
            && audit.iter().any(|a| a == "gateway.update_run"),
        "{audit:?}"
    );
    // The inventory shows the whole fleet on the new release.
    let versions = d.get("/api/fleet/versions", &d.admin_key).json();
    assert_eq!(
        versions["versions"][0]["version"], "2026.10.1",
        "{versions:#}"
    );
    assert_eq!(
        versions["versions"][0]["gateway_ids"],
        json!(ids),
        "{versions:#}"
    );
}

#[test]
fn a_canary_that_rolls_back_stops_the_upgrade_and_leaves_the_rest_untouched() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(3, &d, |i, c| {
        c.update = if i == 0 {
            Update::RollsBack {
                version: "2026.10.1".into(),
            }
        } else {
            to("2026.10.1")
        };
    });
    // Without abort_on_failure, a failed canary still stops the rest: it is what it is for.
    let op = start(
        &d,
        "/api/fleet/upgrade",
        &json!({"gateway_ids": ids, "max_unavailable": 3, "abort_on_failure": false,
                "wait_ready_seconds": 30}),
    );
    let failed = wait_operation(&d, &op, "the upgrade over", over);
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert_eq!(steps_of(&failed), ["failed", "skipped", "skipped"]);
    let canary = &failed["gateways"][0];
    assert_eq!(
        canary["detail"],
        "the update was rolled back (runtime-verification-failed); the gateway runs its previous release",
        "{canary:#}"
    );
    assert_eq!(
        failed["gateways"][1]["detail"],
        format!("left untouched: canary gateway {} failed", ids[0])
    );
    assert_eq!(updates(&fakes[1]) + updates(&fakes[2]), 0, "no other asked");
    let g = gateway(&d, ids[0]);
    assert_eq!(
        g["cordoned"], true,
        "left out of service for the operator: {g:#}"
    );
    for id in &ids[1..] {
        assert_eq!(gateway(&d, *id)["cordoned"], false);
    }
}

#[test]
fn a_release_without_update_run_is_passed_over_and_a_refusal_is_shown_with_its_reason() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |i, c| {
        if i == 0 {
            *c = fake_gateway::FakeConfig {
                token: c.token.clone(),
                ..fake_gateway::FakeConfig::imitating(Release::R2026_3_31)
            };
        }
    });
    let op = start(
        &d,
        "/api/fleet/upgrade",
        &json!({"selector": {"all": true}, "canary": 0, "abort_on_failure": false}),
    );
    let done = wait_operation(&d, &op, "the upgrade over", over);
    assert_eq!(done["state"], "failed", "{done:#}");
    let by_id = |id: i64| {
        done["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gateway_id"] == id)
            .unwrap()
            .clone()
    };
    let old = by_id(ids[0]);
    assert_eq!(old["step"], "skipped", "{old:#}");
    assert_eq!(
        old["detail"],
        "OpenClaw 2026.3.31 does not offer update.run (2026.9 and later do): upgrade it by hand"
    );
    // The default fake answers as a real 2026.9.6 does in a container-like install.
    let refused = by_id(ids[1]);
    assert_eq!(refused["step"], "failed", "{refused:#}");
    assert_eq!(
        refused["detail"],
        "the gateway did not start the update: skipped (container-image-install)"
    );
    assert_eq!(updates(&fakes[1]), 0, "nothing was handed off");
    assert_eq!(
        gateway(&d, ids[0])["cordoned"],
        false,
        "a skipped gateway is left alone"
    );
}

#[test]
fn upgrade_requests_are_checked() {
    let d = link_daemon(&[]);
    let (_fakes, ids) = fleet_of(2, &d, |_, _| {});
    for (body, field) in [
        (json!({"gateway_ids": ids, "canary": 3}), "canary"),
        (
            json!({"gateway_ids": ids, "canary_bake_seconds": 3601}),
            "canary_bake_seconds",
        ),
        (
            json!({"gateway_ids": ids, "wait_ready_seconds": 0}),
            "wait_ready_seconds",
        ),
        (
            json!({"gateway_ids": ids, "max_unavailable": 0}),
            "max_unavailable",
        ),
        (json!({"gateway_ids": [ids[0], ids[0]]}), "gateway_ids"),
        (json!({"gateway_ids": ids, "version": "latest"}), "version"),
        (
            json!({"gateway_ids": ids, "version": "2026.9.6", "source": "openclaw.tgz"}),
            "source",
        ),
        (
            json!({"gateway_ids": ids, "source": "/srv/openclaw.tgz"}),
            "source",
        ),
        (
            json!({"gateway_ids": ids, "version": "2026.9.6", "min_healthy_seconds": 3601}),
            "min_healthy_seconds",
        ),
    ] {
        let res = d.call("POST", "/api/fleet/upgrade", &d.admin_key, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{}", res.text());
    }
    let operator = d.create_key("operator", "op");
    let res = d.call(
        "POST",
        "/api/fleet/upgrade",
        &operator,
        &json!({"gateway_ids": ids}),
    );
    assert_eq!(res.status, 403, "an upgrade is an admin's: {}", res.text());
}

/// A version given to an upgrade of gateways this daemon does not run changes nothing for
/// them: they are asked to update themselves (`update.run`), as before.
#[test]
fn a_version_is_recorded_and_observer_gateways_still_update_themselves() {
    let d = link_daemon(&[]);
    let (_fakes, ids) = fleet_of(1, &d, |_, _| {});
    let res = d.call(
        "POST",
        "/api/fleet/upgrade",
        &d.admin_key,
        &json!({"gateway_ids": ids, "version": "2026.9.6", "canary": 0}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"].clone();
    assert_eq!(op["params"]["release"]["version"], "2026.9.6", "{op:#}");
    assert_eq!(op["params"]["release"]["source"], "npm", "{op:#}");
    assert_eq!(op["params"]["release"]["min_healthy_s"], 10, "{op:#}");
    let id = op["id"].as_str().unwrap().to_owned();
    let over = wait_operation(&d, &id, "the upgrade over", |op| op["state"] != "running");
    let step = &over["gateways"][0];
    assert_ne!(step["step"], "swapping", "{over:#}");
    assert!(
        step["detail"].as_str().unwrap_or("").contains("update"),
        "asked to update itself: {over:#}"
    );
}
