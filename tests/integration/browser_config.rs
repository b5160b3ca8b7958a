//! The console's Config page in a real headless Chromium: each gateway's drift with the path
//! that differs and both values (a value from the gateway stays text), the profiles with their
//! secrets as the gateway shows them, and a drift that comes while the page is open.

use std::time::Duration;

use serde_json::json;

use crate::browser::{assert_contrast, log_in_as, shots};
use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::online;
use crate::support::webdriver::Browser;

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn the_config_page_shows_each_gateway_s_drift_and_the_profiles() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let gw = add(&d, "edge-porto", &f, Some("fake-token"));
    wait_gateway(&d, gw, "online", online);
    // A value the gateway holds that looks like markup.
    f.set_config("tools.banner", json!("<img src=x onerror=alert(1)>"));
    let res = d.call(
        "PUT",
        "/api/config/profiles/10-fleet",
        &d.admin_key,
        &json!({"selector": "", "patch": {"tools": {"banner": "hello"}, "models": {"providers": {"acme": {"apiKey": "sk-live-42"}}}}, "note": "the banner"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let viewer = d.create_key("viewer", "wall");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &viewer, "(viewer)");
    b.click_css("a[href='#/config']", DEADLINE);
    let row = format!("#drift tr[data-gateway='{gw}']");
    let shown = b.wait_text(&row, DEADLINE, |t| t.contains("drifted"));
    assert!(
        shown.contains(r#"tools.banner runs "<img src=x onerror=alert(1)>", profiles set "hello""#),
        "{shown}"
    );
    assert!(
        shown.contains("models.providers.acme.apiKey (secret: not set)"),
        "{shown}"
    );
    assert!(
        b.all(&format!("{row} img")).is_empty(),
        "a gateway's value stays text"
    );
    let profiles = b.wait_text("#profiles", DEADLINE, |t| t.contains("10-fleet"));
    assert!(
        profiles.contains("__OPENCLAW_REDACTED__") && !profiles.contains("sk-live"),
        "{profiles}"
    );
    // No approval waits: no count in the navigation (a `display` rule once showed a red 0).
    assert_eq!(
        b.script("return getComputedStyle(document.getElementById('approvals-badge')).display"),
        json!("none")
    );
    assert_contrast(&b, "config");
    b.screenshot(&shots().join("config.png"));

    // Put right on the gateway itself: the page follows (the drift event refreshes it).
    f.set_config("tools.banner", json!("hello"));
    f.set_config("models.providers.acme.apiKey", json!("sk-other"));
    let res = d.call(
        "PUT",
        "/api/config/profiles/10-fleet",
        &d.admin_key,
        &json!({"selector": "", "patch": {"tools": {"banner": "hello"}, "models": {"providers": {"acme": {"apiKey": "__OPENCLAW_REDACTED__"}}}}}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    b.wait_text(&row, DEADLINE, |t| t.contains("in sync"));
    b.wait_text("#drift-counts", DEADLINE, |t| t.starts_with("1 in sync"));
}

/// A rollout on the Config page: its waves (the canary first) and each gateway's step, followed
/// live to its end; the detail of one that was put back.
#[test]
fn the_config_page_shows_a_rollout_s_waves_live() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "edge-a", &fa, Some("fake-token"));
    let bb = add(&d, "edge-b", &fb, Some("fake-token"));
    for id in [a, bb] {
        wait_gateway(&d, id, "online", online);
    }
    let viewer = d.create_key("viewer", "wall");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &viewer, "(viewer)");
    b.click_css("a[href='#/config']", DEADLINE);
    b.wait_text("#rollouts", DEADLINE, |t| t.contains("No rollout yet"));
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &json!({"selector": "", "patch": {"tools": {"banner": "hi"}}, "canary": 1, "min_healthy_time": "3s", "healthy_deadline": "30s"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let block = format!("#rollouts section[data-rollout='{id}']");
    // Live: the canary settles while the next wave waits.
    let live = b.wait_text(&block, DEADLINE, |t| t.contains("settling"));
    assert!(live.contains("canary"), "{live}");
    assert_eq!(
        b.all(&format!("{block} li[data-wave='0'] li[data-gateway='{a}']"))
            .len(),
        1,
        "the canary wave holds the first gateway"
    );
    let done = b.wait_text(&block, Duration::from_secs(40), |t| t.contains("succeeded"));
    assert!(!done.contains("pending"), "{done}");
    assert_eq!(
        b.all(&format!("{block} li[data-step='done']")).len(),
        2,
        "every gateway done"
    );
    assert_contrast(&b, "config rollout");
    b.screenshot(&shots().join("config-rollout.png"));
}

#[test]
fn an_admin_steers_a_rollout_and_picks_the_gateways_of_a_fleet_action_from_the_console() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "edge-eu", &fa, Some("fake-token"));
    let bb = add(&d, "edge-us", &fb, Some("fake-token"));
    for (id, region) in [(a, "eu"), (bb, "us")] {
        wait_gateway(&d, id, "online", online);
        let res = d.call(
            "PATCH",
            &format!("/api/gateways/{id}/labels"),
            &d.admin_key,
            &json!({"region": region}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &json!({"selector": "", "patch": {"tools": {"banner": "hi"}}, "canary": 1,
                "min_healthy_time": "1s", "auto_promote": false}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &d.admin_key, "(admin)");
    b.click_css("a[href='#/config']", DEADLINE);
    let block = format!("#rollouts section[data-rollout='{id}']");
    b.wait_text(&block, DEADLINE, |t| t.contains("awaiting promotion"));
    b.click_css(&format!("{block} button[data-steer='pause']"), DEADLINE);
    b.wait_text(&block, DEADLINE, |t| t.contains("paused"));
    b.click_css(&format!("{block} button[data-steer='resume']"), DEADLINE);
    b.wait_text(&block, DEADLINE, |t| t.contains("awaiting promotion"));
    b.click_css(&format!("{block} button[data-steer='promote']"), DEADLINE);
    b.wait_text(&block, Duration::from_secs(40), |t| t.contains("succeeded"));
    assert!(
        b.all(&format!("{block} button")).is_empty(),
        "nothing to steer once it is over"
    );

    // A fleet action on the gateways a selector picks, not the whole fleet.
    b.click_css("a[href='#/operations']", DEADLINE);
    let picker = b.find("#operation-selector", DEADLINE);
    b.type_into(&picker, "region=eu");
    b.script("[...document.querySelectorAll('#start-operation button')].find(x => x.textContent === 'Hold updates').click()");
    let asked = b.accept_dialog(DEADLINE);
    assert!(asked.contains("the gateways region=eu picks"), "{asked}");
    let ops = wait_until_op(&d);
    assert_eq!(ops["gateways"].as_array().unwrap().len(), 1, "{ops}");
    assert_eq!(ops["gateways"][0]["gateway_id"], a, "{ops}");
}

/// The newest fleet operation, once there is one.
fn wait_until_op(d: &crate::support::Daemon) -> serde_json::Value {
    crate::support::wait_until("a fleet operation", DEADLINE, || {
        let all = d.get("/api/operations?limit=5", &d.admin_key).json();
        all["operations"]
            .as_array()
            .and_then(|ops| ops.iter().find(|o| o["kind"] == "update_hold").cloned())
    })
}
