//! Config rollouts on fake gateways (each answers `config.get` and `config.patch` as 2026.9.6
//! does, captured): canaries first then waves, each write over the hash read and audited, a
//! race read again, a dry run that touches nothing, and a rollout stopped by an unhealthy
//! gateway that puts every changed gateway back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{fleet_of, link_daemon, steps_of, wait_operation};
use crate::support::{Daemon, wait_for};
use fake_gateway::FakeGateway;

const CHAT: &str = "gateway.http.endpoints.chatCompletions.enabled";
const DEADLINE: Duration = Duration::from_secs(40);

fn chat_on() -> Value {
    json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}})
}

/// Starts a rollout; its id.
fn roll_out(d: &Daemon, body: &Value) -> String {
    let res = d.call("POST", "/api/config/rollouts", &d.admin_key, body);
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header("location"),
        Some(format!("/api/config/rollouts/{id}").as_str())
    );
    id
}

fn over(op: &Value) -> bool {
    ![
        "running",
        "cancelling",
        "paused",
        "awaiting_promotion",
        "reverting",
    ]
    .contains(&op["state"].as_str().unwrap_or(""))
}

fn audit(d: &Daemon) -> Vec<Value> {
    let res = d.get("/api/audit?limit=200", &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn a_rollout_goes_canary_first_then_in_waves_and_every_write_is_audited() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(3, &d, |_, _| {});
    let id = roll_out(
        &d,
        &json!({"selector": "", "patch": chat_on(), "canary": 1, "max_parallel": 2,
                "min_healthy_time": "1s", "healthy_deadline": 20, "note": "chat on"}),
    );
    let shown = d
        .get(&format!("/api/config/rollouts/{id}"), &d.admin_key)
        .json();
    assert_eq!(
        shown["waves"],
        json!([{"canary": true, "gateways": [ids[0]]}, {"canary": false, "gateways": [ids[1], ids[2]]}])
    );
    assert_eq!(shown["rollout"]["patch"], chat_on());
    let op = wait_operation(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(steps_of(&op), ["done", "done", "done"]);
    for f in &fakes {
        assert_eq!(
            f.config_value(CHAT),
            Some(json!(true)),
            "written and applied"
        );
    }
    // The canary was done before any other gateway started.
    let g = op["gateways"].as_array().unwrap();
    let canary_done = g[0]["finished_at"].as_i64().unwrap();
    for other in &g[1..] {
        assert!(
            other["started_at"].as_i64().unwrap() >= canary_done,
            "{op:#}"
        );
        assert_eq!(other["changed_paths"], json!(["gateway.http.endpoints"]));
    }
    let writes: Vec<Value> = audit(&d)
        .into_iter()
        .filter(|e| e["action"] == "config.rollout.write")
        .collect();
    assert_eq!(writes.len(), 3, "one audited write per gateway");
    for w in &writes {
        let details: Value = serde_json::from_str(w["details"].as_str().unwrap()).unwrap();
        assert_eq!(details["operation_id"], id.as_str());
        assert_eq!(details["paths"], json!([CHAT]));
        assert!(w["actor"].as_str().unwrap().contains(&id), "{w}");
    }

    // The same patch again changes nothing: every gateway answers noop, nothing is written.
    let again = roll_out(
        &d,
        &json!({"selector": "", "patch": chat_on(), "canary": 0, "max_parallel": 3, "min_healthy_time": 0, "healthy_deadline": 20}),
    );
    let op = wait_operation(&d, &again, "the identical rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    for g in op["gateways"].as_array().unwrap() {
        assert!(g["detail"].as_str().unwrap().contains("noop"), "{op:#}");
        assert!(g.get("written").is_none(), "{op:#}");
    }
}

#[test]
fn a_dry_run_answers_each_gateway_s_diff_and_the_waves_and_touches_nothing() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |_, _| {});
    fakes[1].set_config(CHAT, json!(true));
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &json!({"selector": "", "patch": chat_on(), "dry_run": true}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let plan = res.json();
    assert_eq!(
        plan["gateways"][0]["changes"],
        json!([{"path": CHAT, "secret": false, "desired": true, "present": false}])
    );
    assert_eq!(
        plan["gateways"][1]["changes"],
        json!([]),
        "already as desired"
    );
    assert_eq!(
        plan["waves"],
        json!([{"canary": true, "gateways": [ids[0]]}, {"canary": false, "gateways": [ids[1]]}])
    );
    assert_eq!(fakes[0].config_writes(), 0, "nothing written");
    assert_eq!(fakes[0].config_value(CHAT), None);
    let listed = d.get("/api/config/rollouts", &d.admin_key).json();
    assert_eq!(listed["rollouts"], json!([]), "no operation recorded");
}

#[test]
fn a_write_that_loses_a_race_is_read_again_and_keeps_the_other_writer_s_change() {
    let d = link_daemon(&[]);
    let (fakes, _) = fleet_of(1, &d, |_, _| {});
    fakes[0].race_next_config_patch("agents.defaults.maxConcurrent", json!(3));
    let id = roll_out(
        &d,
        &json!({"selector": "", "patch": chat_on(), "min_healthy_time": 0, "healthy_deadline": 20}),
    );
    let op = wait_operation(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(fakes[0].config_value(CHAT), Some(json!(true)));
    assert_eq!(
        fakes[0].config_value("agents.defaults.maxConcurrent"),
        Some(json!(3)),
        "the other writer's change stands"
    );
    assert_eq!(
        fakes[0].config_writes(),
        2,
        "refused once as stale, then written"
    );
}

#[test]
fn an_unhealthy_gateway_stops_the_rollout_and_every_changed_gateway_is_put_back() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |_, _| {});
    for f in &fakes {
        f.set_config("agents.defaults.maxConcurrent", json!(4));
    }
    let patch = json!({"agents": {"defaults": {"maxConcurrent": 2}}, "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}});
    let id = roll_out(
        &d,
        &json!({"selector": "", "patch": patch, "canary": 1, "min_healthy_time": "3s", "healthy_deadline": "10s"}),
    );
    // The second gateway, written, goes down while it is to stay healthy (back in 9 s: too
    // late to stay healthy 3 s within 10 s, in time to be put back within 10 s more).
    wait_operation(&d, &id, "the second gateway settling", |op| {
        op["gateways"][1]["step"] == "settling"
    });
    assert_eq!(fakes[1].config_value(CHAT), Some(json!(true)));
    fakes[1].restart(Duration::from_secs(9));
    let op = wait_for("the rollout put back", DEADLINE, || {
        let op = crate::support::fleet::operation(&d, &id);
        if over(&op) {
            Ok(op)
        } else {
            Err(format!("{op:#}"))
        }
    });
    assert_eq!(op["state"], "reverted", "{op:#}");
    let why = op["detail"].as_str().unwrap();
    // Not healthy for 3 s within 10 s, or back too soon as another process: either way it
    // failed, and the rollout put both back.
    assert!(
        why.starts_with(&format!("gateway {} failed: ", ids[1])),
        "{why}"
    );
    assert_eq!(steps_of(&op), ["reverted", "reverted"]);
    for f in &fakes {
        assert_eq!(f.config_value(CHAT), None, "put back as not set");
        assert_eq!(
            f.config_value("agents.defaults.maxConcurrent"),
            Some(json!(4)),
            "its earlier value"
        );
    }
    let reverts = audit(&d)
        .into_iter()
        .filter(|e| e["action"] == "config.rollout.revert")
        .count();
    assert_eq!(reverts, 2);
}

#[test]
fn a_rollout_without_auto_promote_waits_after_its_canaries_and_can_be_paused() {
    let d = link_daemon(&[]);
    let (fakes, _) = fleet_of(3, &d, |_, _| {});
    let id = roll_out(
        &d,
        &json!({"selector": "", "patch": chat_on(), "canary": 1, "max_parallel": 2, "auto_promote": false,
                "min_healthy_time": 0, "healthy_deadline": 20}),
    );
    let op = wait_operation(&d, &id, "awaiting promotion", |op| {
        op["state"] == "awaiting_promotion"
    });
    assert_eq!(steps_of(&op), ["done", "pending", "pending"]);
    assert_eq!(fakes[1].config_value(CHAT), None);
    let path = |what: &str| format!("/api/config/rollouts/{id}/{what}");
    let call = |what: &str| d.call("POST", &path(what), &d.admin_key, &json!({}));
    let paused = call("pause");
    assert_eq!(paused.status, 202, "{}", paused.text());
    assert_eq!(paused.json()["operation"]["state"], "paused");
    let refused = call("pause");
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(refused.json()["error"], "operation_over");
    assert_eq!(call("promote").status, 202);
    let op = wait_operation(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(fakes[2].config_value(CHAT), Some(json!(true)));
    let actions: Vec<String> = audit(&d)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"operation.pause".to_owned()));
    assert!(actions.contains(&"operation.promote".to_owned()));
}

#[test]
fn a_rollout_request_that_cannot_be_carried_out_is_refused_naming_the_field() {
    let d = link_daemon(&[]);
    fleet_of(1, &d, |_, _| {});
    let cases = [
        (json!({"patch": chat_on()}), "profile"),
        (json!({"profile": "nope"}), ""),
        (
            json!({"selector": "region=mars", "patch": chat_on()}),
            "selector",
        ),
        (
            json!({"selector": "", "patch": chat_on(), "canary": 2}),
            "canary",
        ),
        (
            json!({"selector": "", "patch": chat_on(), "max_parallel": 0}),
            "max_parallel",
        ),
        (
            json!({"selector": "", "patch": chat_on(), "min_healthy_time": "30s", "healthy_deadline": "10s"}),
            "healthy_deadline",
        ),
        (
            json!({"selector": "", "patch": chat_on(), "min_healthy_time": "soon"}),
            "min_healthy_time",
        ),
        (json!({"selector": "", "patch": {}}), "patch"),
    ];
    for (body, field) in cases {
        let res = d.call("POST", "/api/config/rollouts", &d.admin_key, &body);
        if field.is_empty() {
            assert_eq!(res.status, 404, "{body}: {}", res.text());
            assert_eq!(res.json()["error"], "config_profile_not_found");
        } else {
            assert_eq!(res.status, 400, "{body}: {}", res.text());
            assert_eq!(
                res.json()["details"]["field"],
                field,
                "{body}: {}",
                res.text()
            );
        }
    }
}

/// A defect found against real gateways: the drift judged before a rollout stayed until the
/// next `config.drift_interval` (5 minutes by default), so a rolled-out profile still read
/// drifted; each gateway the rollout is over with is judged again at once.
#[test]
fn a_rolled_out_profile_reads_in_sync_as_soon_as_the_rollout_is_over() {
    let d = link_daemon(&[]);
    let (_fakes, ids) = fleet_of(2, &d, |_, _| {});
    let res = d.call(
        "PUT",
        "/api/config/profiles/chat",
        &d.admin_key,
        &json!({"selector": "", "patch": chat_on()}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let drift = |want: &'static str| {
        wait_for(want, DEADLINE, || {
            let all = d.get("/api/config/drift", &d.admin_key).json();
            let states: Vec<Value> = all["gateways"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["state"].clone())
                .collect();
            if states.len() == ids.len() && states.iter().all(|s| s == want) {
                Ok(())
            } else {
                Err(format!("{all:#}"))
            }
        })
    };
    drift("drifted");
    let id = roll_out(
        &d,
        &json!({"profile": "chat", "canary": 0, "max_parallel": 2, "min_healthy_time": 0, "healthy_deadline": 20}),
    );
    let op = wait_operation(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    drift("in_sync");
}

/// Two gateways rolled out one at a time, canary first, the canary done: the second is about
/// to fail its read-back (its value changed behind the rollout). `stop_canary`: the canary's
/// gateway goes away first, for good.
fn a_rollout_about_to_revert(
    d: &Daemon,
    healthy_deadline: &str,
) -> (Vec<FakeGateway>, Vec<i64>, String) {
    let (fakes, ids) = fleet_of(2, d, |_, _| {});
    let id = roll_out(
        d,
        &json!({"selector": "", "patch": chat_on(), "canary": 1, "max_parallel": 1,
                "min_healthy_time": "2s", "healthy_deadline": healthy_deadline}),
    );
    wait_operation(d, &id, "the canary done", |op| {
        op["gateways"][0]["step"] == "done"
    });
    fakes[0].stop();
    crate::support::fleet::wait_gateway(d, ids[0], "the canary gone", |g| {
        !crate::support::online(g)
    });
    wait_operation(d, &id, "the second settling", |op| {
        op["gateways"][1]["step"] == "settling"
    });
    fakes[1].set_config(CHAT, json!(false));
    (fakes, ids, id)
}

/// Deletes gateway `gone` once the primary is moved off it to `to`.
fn delete_lost(d: &Daemon, gone: i64, to: i64) -> crate::support::Response {
    let moved = d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": to, "is_primary": true}),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    d.call(
        "DELETE",
        &format!("/api/gateways/{gone}"),
        &d.admin_key,
        &json!({}),
    )
}

#[test]
fn a_rollout_whose_changed_gateway_is_gone_for_good_ends_by_its_deadline_naming_it() {
    let d = link_daemon(&[]);
    let (_fakes, ids, id) = a_rollout_about_to_revert(&d, "4s");
    // The canary cannot be reached to be put back: waited for healthy_deadline, not for ever.
    let op = wait_operation(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "failed", "{op:#}");
    let why = op["detail"].as_str().unwrap();
    assert!(
        why.contains(&format!(
            "the revert did not put back gateway(s) {}",
            ids[0]
        )),
        "{why}"
    );
    let canary = &op["gateways"][0];
    assert_eq!(canary["step"], "failed", "{op:#}");
    assert!(
        canary["detail"]
            .as_str()
            .unwrap()
            .starts_with("could not be put back within 4s of the revert: not connected"),
        "{op:#}"
    );
    // Over, the rollout holds the lost gateway no more: it can leave the registry.
    let res = delete_lost(&d, ids[0], ids[1]);
    assert_eq!(res.status, 200, "{}", res.text());
}

#[test]
fn a_rollout_can_be_cancelled_while_it_reverts_and_names_what_it_did_not_put_back() {
    let d = link_daemon(&[]);
    let (_fakes, ids, id) = a_rollout_about_to_revert(&d, "60s");
    wait_operation(&d, &id, "reverting, the canary waited for", |op| {
        op["state"] == "reverting" && op["gateways"][0]["step"] == "reverting"
    });
    // Delete is refused while the rollout holds the gateway, and says how to stop it.
    let res = delete_lost(&d, ids[0], ids[1]);
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(
        res.text().contains(&format!("/api/operations/{id}/cancel")),
        "{}",
        res.text()
    );
    let cancel = d.call(
        "POST",
        &format!("/api/operations/{id}/cancel"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    assert_eq!(cancel.json()["operation"]["state"], "cancelling");
    let op = wait_operation(&d, &id, "cancelled", over);
    assert_eq!(op["state"], "cancelled", "{op:#}");
    let why = op["detail"].as_str().unwrap();
    assert!(
        why.starts_with("cancelled; gateway(s) ") && why.contains(&ids[0].to_string()),
        "{why}"
    );
    assert!(
        op["gateways"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("the rollout was cancelled while it was putting gateways back"),
        "{op:#}"
    );
    let res = delete_lost(&d, ids[0], ids[1]);
    assert_eq!(res.status, 200, "{}", res.text());
}

/// `kill -9` of the daemon while a rollout's write is at the gateway (applied 2 s after it
/// arrives, after the daemon died): the restarted daemon takes the same rollout up from its
/// record — the write it did not see answered is read back, found applied, and the rollout
/// ends; nothing written is left without a record. Runs on SQLite and, in the PostgreSQL
/// pass of the suite, on PostgreSQL.
#[test]
fn a_rollout_interrupted_by_a_daemon_kill_is_taken_up_after_the_restart() {
    let mut d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |_, _| {});
    fakes[0]
        .update_faults(|x| x.slow_method = Some(("config.patch".into(), Duration::from_secs(2))));
    let id = roll_out(
        &d,
        &json!({"selector": "", "patch": chat_on(), "canary": 1, "max_parallel": 1,
                "min_healthy_time": "1s", "healthy_deadline": "30s"}),
    );
    crate::support::wait_until("the first write at the gateway", DEADLINE, || {
        (fakes[0]
            .counters()
            .config_patches_received
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .then_some(())
    });
    d.kill9();
    crate::support::wait_until("the write applied with nobody to answer", DEADLINE, || {
        (fakes[0].config_value(CHAT) == Some(json!(true))).then_some(())
    });
    fakes[0].update_faults(|x| x.slow_method = None);
    d.launch();
    let op = wait_operation(&d, &id, "the rollout over after the restart", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(steps_of(&op), ["done", "done"], "{op:#}");
    for f in &fakes {
        assert_eq!(f.config_value(CHAT), Some(json!(true)));
    }
    // Each gateway written once or, for the one whose answer was lost, seen as already done.
    let writes = audit(&d)
        .into_iter()
        .filter(|e| e["action"] == "config.rollout.write")
        .count();
    assert!((1..=2).contains(&writes), "{writes} writes audited");
    crate::support::fleet::wait_gateway(&d, ids[1], "online", crate::support::online);
}
