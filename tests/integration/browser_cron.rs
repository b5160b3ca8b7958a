//! The console's Cron page in a real headless Chromium: every gateway's jobs with their
//! schedule, the extra copy of a job and the job whose fires the gateway skips flagged; a
//! job's row opens its runs (the forced ones) and its missed fires; an admin removes the extra
//! copy from the page; a viewer sees the same page without the button.

use std::time::Duration;

use serde_json::json;

use crate::browser::{assert_contrast, log_in_as, shots};
use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::online;
use crate::support::webdriver::Browser;

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn the_cron_page_shows_jobs_flags_copies_and_skips_and_removes_copies() {
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "10s"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__CRON__GRACE", "2s"),
        ("GATEWAY_SUPERVISOR__CRON__RECOVER", "force"),
    ]);
    let f = fake(|_| {});
    let gw = add(&d, "cron-edge", &f, Some("fake-token"));
    wait_gateway(&d, gw, "online", online);
    let job = |name: &str, schedule: serde_json::Value| {
        f.cron(
            "cron.add",
            json!({"name": name, "schedule": schedule, "sessionTarget": "isolated",
                   "payload": {"kind": "agentTurn", "message": "report"}, "delivery": {"mode": "none"}}),
        )
        .unwrap()["job"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let daily = json!({"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Oslo"});
    job("daily-report", daily.clone());
    job("daily-report", daily);
    let every = job("every-ten", json!({"kind": "every", "everyMs": 10_000}));
    // The fake never fires a job: wait until one skip is on record and run again (the forced
    // run takes its turn under the gateway's write limit, after the declaration's write).
    crate::support::wait_until("a skipped fire run again", Duration::from_secs(60), || {
        let j = d.get(&format!("/api/cron/jobs/{gw}/{every}"), &d.admin_key);
        (j.status == 200
            && j.json()["misses"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["recovery"] == "forced")))
        .then_some(())
    });

    // A declared job, written to the gateway (its rollout over).
    let res = d.call(
        "PUT",
        "/api/cron/declarations/weekly-digest",
        &d.admin_key,
        &json!({"selector": "", "job": {"name": "weekly-digest",
            "schedule": {"kind": "cron", "expr": "0 8 * * 1", "tz": "UTC"},
            "payload": {"kind": "agentTurn", "message": "digest"}, "delivery": {"mode": "none"}}}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    crate::support::wait_until("the declaration written", DEADLINE, || {
        let v = d
            .get("/api/cron/declarations/weekly-digest", &d.admin_key)
            .json();
        (v["gateways"].as_array()?.len() == 1).then_some(())
    });

    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &d.admin_key, "(admin)");
    b.click_css("a[href='#/cron']", DEADLINE);
    let table = b.wait_text("table.cron", DEADLINE, |t| {
        t.contains("every-ten") && t.contains("duplicate")
    });
    assert!(table.contains("cron-edge"), "{table}");
    let declared = b.wait_text("table.cron-declared", DEADLINE, |t| {
        t.contains("weekly-digest")
    });
    assert!(
        declared.contains("0 8 * * 1 (UTC)")
            && declared.contains("every one picked")
            && declared.contains("in sync"),
        "{declared}"
    );
    assert!(table.contains("0 9 * * * (Europe/Oslo)"), "{table}");
    assert!(table.contains("every 10s"), "{table}");
    assert!(
        !table.contains("heartbeat"),
        "the gateway's own jobs hidden: {table}"
    );
    let main = b.wait_text("main", DEADLINE, |_| true);
    assert!(!main.contains("null"), "{main}");
    // The job's runs and misses, opened from its row.
    b.click_css(
        &format!("tr[data-job='{gw}/{every}'] button.cron-open"),
        DEADLINE,
    );
    let detail = b.wait_text(".cron-detail", DEADLINE, |t| t.contains("Missed fires"));
    assert!(detail.contains("manual:"), "the forced runs: {detail}");
    assert!(
        detail.contains("missed") && detail.contains("forced"),
        "{detail}"
    );
    assert_contrast(&b, "cron");
    b.screenshot(&shots().join("cron.png"));

    // A viewer: the same jobs, no button.
    let viewer = d.create_key("viewer", "cron-viewer");
    log_in_as(&b, &base, &viewer, "(viewer)");
    b.click_css("a[href='#/cron']", DEADLINE);
    b.wait_text("table.cron", DEADLINE, |t| t.contains("duplicate"));
    assert!(b.all("button.remove-duplicates").is_empty());

    // The admin removes the extra copy from the page.
    log_in_as(&b, &base, &d.admin_key, "(admin)");
    b.click_css("a[href='#/cron']", DEADLINE);
    b.click_css("button.remove-duplicates", DEADLINE);
    crate::support::wait_for("the removal announced", DEADLINE, || {
        let said = b.script("return document.getElementById('announce').textContent");
        if said == format!("Removed 1 extra copies on gateway {gw}") {
            Ok(())
        } else {
            Err(said.to_string())
        }
    });
    b.wait_text("table.cron", DEADLINE, |t| !t.contains("duplicate"));
    let left = d.get("/api/cron/jobs?q=daily", &d.admin_key).json();
    assert_eq!(left["jobs"].as_array().unwrap().len(), 1, "{left:#}");
}
