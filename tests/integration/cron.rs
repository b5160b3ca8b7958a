//! Cron across the fleet against fake gateways answering `cron.*` as 2026.9.6 does (captured):
//! every gateway's jobs in one view, the gateways' own left out unless asked for, copies of a
//! job found; the fake never fires a job on its schedule — a gateway skipping every slot, as
//! openclaw#139215 skips some — so each expected fire is found missing once, and with
//! `recover = "force"` run once; slots passed while the gateway was away are told apart.

use std::time::Duration;

use fake_gateway::FakeGateway;
use serde_json::{Value, json};

use crate::support::fleet::{add, audit_actions, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, metric, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn cron_daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        ("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "10s"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__CRON__GRACE", "2s"),
    ];
    env.extend_from_slice(extra);
    link_daemon(&env)
}

fn jobs(d: &Daemon, query: &str) -> Value {
    let res = d.get(&format!("/api/cron/jobs{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn count(d: &Daemon, query: &str) -> usize {
    jobs(d, query)["jobs"].as_array().unwrap().len()
}

/// A job made by hand on the gateway, as `openclaw cron add` makes one.
fn add_job(f: &FakeGateway, name: &str, schedule: Value) -> String {
    let answer = f
        .cron(
            "cron.add",
            json!({"name": name, "schedule": schedule, "sessionTarget": "isolated",
                   "payload": {"kind": "agentTurn", "message": "report"}, "delivery": {"mode": "none"}}),
        )
        .unwrap();
    answer["job"]["id"].as_str().unwrap().to_owned()
}

fn linked(d: &Daemon, name: &str, f: &FakeGateway) -> i64 {
    let id = add(d, name, f, Some("fake-token"));
    wait_gateway(d, id, "online", online);
    id
}

#[test]
fn every_gateways_jobs_are_in_one_view_and_copies_of_one_job_are_found() {
    // No sweep within the test: a job made by hand shows by the gateway's `cron` event.
    let d = cron_daemon(&[("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "24h")]);
    let (a, b) = (fake(|_| {}), fake(|_| {}));
    let (ga, gb) = (linked(&d, "cron-a", &a), linked(&d, "cron-b", &b));
    // A fresh gateway's own three jobs: there, but not shown unless asked for.
    wait_until("both gateways' own jobs", DEADLINE, || {
        (count(&d, "?system=true") == 6).then_some(())
    });
    assert_eq!(count(&d, ""), 0, "{}", jobs(&d, ""));
    let own = jobs(&d, &format!("?system=true&gateway_id={ga}"));
    assert!(
        own["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["system"] == true && j["gateway_id"] == ga),
        "{own:#}"
    );

    // Two copies of one job made by hand on gateway b, one elsewhere on a: found at once.
    let daily = json!({"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Oslo"});
    let first = add_job(&b, "daily-report", daily.clone());
    let second = add_job(&b, "daily-report", daily.clone());
    add_job(&a, "daily-report", daily);
    wait_until("the hand-made jobs", DEADLINE, || {
        (count(&d, "") == 3).then_some(())
    });
    let dup = jobs(&d, "?status=duplicate");
    let [copy] = dup["jobs"].as_array().unwrap().as_slice() else {
        panic!("one extra copy: {dup:#}");
    };
    assert_eq!(copy["gateway_id"], gb);
    // The older copy is kept (made in the same millisecond: the lower id).
    let mut pair = [
        copy["job_id"].as_str().unwrap(),
        copy["duplicate_of"].as_str().unwrap(),
    ];
    pair.sort_unstable();
    let mut made = [first.as_str(), second.as_str()];
    made.sort_unstable();
    assert_eq!(pair, made, "{copy:#}");
    let extra = copy["job_id"].as_str().unwrap().to_owned();
    assert_eq!(copy["schedule"]["tz"], "Europe/Oslo");
    wait_until("the duplicate gauge", DEADLINE, || {
        (metric(&d, "cron_duplicate_jobs") == 1.0).then_some(())
    });

    // Filters and pages: by name, by gateway, by cursor.
    assert_eq!(count(&d, "?q=DAILY"), 3);
    assert_eq!(count(&d, "?q=weekly"), 0);
    let page = jobs(&d, "?limit=2");
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = jobs(&d, &format!("?limit=2&cursor={cursor}"));
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_cursor").is_none(), "{rest:#}");

    // One job, with its (no) runs read from its gateway.
    let res = d.get(&format!("/api/cron/jobs/{gb}/{extra}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["job"]["name"], "daily-report");
    assert_eq!(res.json()["runs"], json!([]));

    // The same from a terminal: `ctl cron jobs` and `ctl cron show`.
    let ctl = |args: &[&str]| crate::support::admin_ctl(&d, args);
    let table = ctl(&["cron", "jobs", "--status", "duplicate"]);
    assert!(
        table.starts_with("GATEWAY") && table.contains(&extra) && table.contains("duplicate of"),
        "{table}"
    );
    assert!(table.contains("cron 0 9 * * * Europe/Oslo"), "{table}");
    let shown = ctl(&["cron", "show", &gb.to_string(), &extra]);
    assert!(
        shown.contains("daily-report") && shown.contains("RUN AT"),
        "{shown}"
    );

    // An admin removes the extra copies in one audited action; a viewer may not.
    let remove = format!("/api/cron/gateways/{gb}/remove-duplicates");
    let viewer = d.create_key("viewer", "looker");
    let res = d.call("POST", &remove, &viewer, &json!({}));
    assert_eq!(res.status, 403, "{}", res.text());
    let res = d.call("POST", &remove, &d.admin_key, &json!({}));
    assert_eq!(res.status, 200, "{}", res.text());
    let done = res.json();
    assert_eq!(done["removed"], json!([extra]), "{done:#}");
    assert_eq!(done["kept"].as_array().unwrap().len(), 1, "{done:#}");
    assert_eq!(done["failed"], json!([]));
    // The view is read back at once: the copy is gone, the kept job stays.
    assert_eq!(count(&d, "?status=duplicate"), 0);
    assert_eq!(count(&d, ""), 2);
    assert!(b.cron("cron.get", json!({"id": extra})).is_err());
    assert!(
        audit_actions(&d)
            .iter()
            .any(|a| a == "cron.duplicates_removed")
    );
    // Nothing left to remove: nothing done, nothing audited again.
    let again = d.call("POST", &remove, &d.admin_key, &json!({})).json();
    assert_eq!(again["removed"], json!([]));
}

#[test]
fn a_skipped_fire_is_found_once_and_with_force_run_once() {
    let d = cron_daemon(&[("GATEWAY_SUPERVISOR__CRON__RECOVER", "force")]);
    let f = fake(|_| {});
    let gw = linked(&d, "cron-skips", &f);
    let job = add_job(&f, "every-ten", json!({"kind": "every", "everyMs": 10_000}));
    let path = format!("/api/cron/jobs/{gw}/{job}");
    // 404 until the gateway's list is read with it.
    let detail = |d: &Daemon| {
        let res = d.get(&path, &d.admin_key);
        assert!(matches!(res.status, 200 | 404), "{}", res.text());
        (res.status == 200).then(|| res.json())
    };
    // The fake never fires it: each slot is missed, then run once by force.
    let seen = wait_until(
        "a missed slot run by force",
        Duration::from_secs(60),
        || {
            let j = detail(&d)?;
            let misses = j["misses"].as_array().unwrap().clone();
            misses
                .iter()
                .any(|m| m["cause"] == "missed" && m["recovery"] == "forced")
                .then_some(j)
        },
    );
    let misses = seen["misses"].as_array().unwrap();
    for m in misses.iter().filter(|m| m["recovery"] == "forced") {
        assert!(
            m["recovery_detail"]
                .as_str()
                .is_some_and(|r| r.starts_with(&format!("manual:{job}:"))),
            "{m:#}"
        );
    }
    // Each slot once, each forced run once: as many forced runs on the gateway as forced slots.
    let runs = seen["runs"].as_array().unwrap();
    let forced = misses.iter().filter(|m| m["recovery"] == "forced").count();
    assert!(runs.len() >= forced, "{seen:#}");
    assert!(
        runs.iter()
            .all(|r| r["model"] == "model" && r["total_tokens"] == 11),
        "{seen:#}"
    );
    let slots: Vec<i64> = misses
        .iter()
        .map(|m| m["slot_ms"].as_i64().unwrap())
        .collect();
    let mut unique = slots.clone();
    unique.dedup();
    assert_eq!(slots, unique, "a slot found twice: {seen:#}");
    assert!(metric(&d, "cron_missed_fires_total{cause=\"missed\"}") >= 1.0);
    assert!(metric(&d, "cron_forced_runs_total{outcome=\"forced\"}") >= 1.0);
    let actions = audit_actions(&d);
    assert!(
        actions.iter().any(|a| a == "cron.missed") && actions.iter().any(|a| a == "cron.recover"),
        "{actions:?}"
    );
    assert_eq!(count(&d, "?status=missed"), 0, "every miss was run again");
}

#[test]
fn slots_passed_while_the_gateway_was_away_are_not_called_skips() {
    let d = cron_daemon(&[]);
    let f = fake(|_| {});
    let gw = linked(&d, "cron-away", &f);
    let job = add_job(&f, "every-five", json!({"kind": "every", "everyMs": 5_000}));
    let path = format!("/api/cron/jobs/{gw}/{job}");
    let misses = |d: &Daemon| {
        let res = d.get(&path, &d.admin_key);
        assert!(matches!(res.status, 200 | 404), "{}", res.text());
        match res.status {
            200 => res.json()["misses"].as_array().unwrap().clone(),
            _ => Vec::new(),
        }
    };
    wait_until("a skip found while linked", DEADLINE, || {
        misses(&d)
            .iter()
            .any(|m| m["cause"] == "missed")
            .then_some(())
    });
    f.stop();
    wait_gateway(&d, gw, "offline", |g| !online(g));
    // The outage itself: two slots (5 s apart) pass while the gateway is away.
    let away_since = std::time::Instant::now();
    wait_until("two slots passed while away", DEADLINE, || {
        (away_since.elapsed() >= Duration::from_secs(12)).then_some(())
    });
    f.resume().unwrap();
    wait_gateway(&d, gw, "online again", online);
    let seen = wait_until("the slots passed away said so", DEADLINE, || {
        let m = misses(&d);
        m.iter().any(|m| m["cause"] == "unreachable").then_some(m)
    });
    // Nothing was run again for them (recover is off), and no skip was claimed for them.
    assert!(seen.iter().all(|m| m["recovery"].is_null()), "{seen:#?}");
    assert!(metric(&d, "cron_missed_fires_total{cause=\"unreachable\"}") >= 1.0);
}

#[test]
fn a_job_made_while_the_daemon_was_down_shows_after_its_restart_without_a_sweep() {
    let mut d = cron_daemon(&[("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "24h")]);
    let f = fake(|_| {});
    let gw = linked(&d, "cron-restart", &f);
    wait_until("the gateway's own jobs", DEADLINE, || {
        (count(&d, "?system=true") == 3).then_some(())
    });
    d.kill9();
    add_job(
        &f,
        "made-while-down",
        json!({"kind": "every", "everyMs": 60_000}),
    );
    d.restart();
    wait_gateway(&d, gw, "online again", online);
    let found = wait_until("the job made meanwhile", DEADLINE, || {
        jobs(&d, "?q=made-while-down")["jobs"]
            .as_array()
            .and_then(|j| j.first().cloned())
    });
    assert_eq!(found["gateway_id"], gw);
}

#[test]
fn cron_questions_are_checked_by_field() {
    let d = cron_daemon(&[]);
    for (query, field) in [
        ("?status=bogus", "status"),
        ("?cursor=nope", "cursor"),
        ("?limit=0", "limit"),
        ("?selector==x", "selector"),
    ] {
        let res = d.get(&format!("/api/cron/jobs{query}"), &d.admin_key);
        assert_eq!(res.status, 400, "{query}: {}", res.text());
        assert!(res.text().contains(field), "{query}: {}", res.text());
    }
    let res = d.get("/api/cron/jobs/1/bad%20id", &d.admin_key);
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("job_id"), "{}", res.text());
    let f = fake(|_| {});
    let gw = linked(&d, "cron-404", &f);
    let res = d.get(&format!("/api/cron/jobs/{gw}/no-such-job"), &d.admin_key);
    assert_eq!(res.status, 404, "{}", res.text());
    assert_eq!(res.json()["error"], "cron_job_not_found");
}
