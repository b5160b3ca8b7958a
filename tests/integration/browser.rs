//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`):
//! an operator logs in with a key, watches gateways come online without reloading, opens a
//! gateway's latency graph, kills a session after confirming, lists spawns, sees an event
//! arrive live; a viewer's key gets no action buttons; an admin reads the audit log. Screenshots are kept under target/console/ (the
//! README's is `docs/console.png`, copied from `fleet.png`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::webdriver::Browser;
use crate::support::{online, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console")
}

/// No text under WCAG AA contrast on the page shown as `page` (`support/contrast.js` lists
/// each one with its ratio).
fn assert_contrast(b: &Browser, page: &str) {
    let low: Vec<String> = serde_json::from_value(b.script(include_str!("support/contrast.js")))
        .expect("a list of texts");
    assert!(low.is_empty(), "{page}: text under AA contrast: {low:#?}");
}

#[test]
fn an_operator_watches_the_fleet_live_and_acts_and_a_viewer_only_looks() {
    let (fa, fb, fc) = (
        fake(|c| c.sessions = 2),
        fake(|c| c.sessions = 1),
        fake(|_| {}),
    );
    let d = link_daemon(&[]);
    let a = add(&d, "edge-amsterdam", &fa, Some("fake-token"));
    wait_gateway(&d, a, "online", online);
    let operator = d.create_key("operator", "night-shift");
    let viewer = d.create_key("viewer", "wall-screen");
    let base = format!("http://{}", d.addr);

    let b = Browser::start(1280, 720);
    b.goto(&format!("{base}/"));
    let key = b.find("#key", DEADLINE);
    assert_contrast(&b, "login");
    b.type_into(&key, &operator);
    b.click_css("#login", DEADLINE);
    b.wait_text("#online-count", DEADLINE, |t| t == "1/1");
    // Every field has a label; the page starts with a way past the navigation.
    let unlabelled = b.script(
        "return [...document.querySelectorAll('input')].filter(i => i.labels.length === 0).length",
    );
    assert_eq!(unlabelled, serde_json::json!(0));
    b.find("a.skip[href='#main']", DEADLINE);
    b.wait_text(".who", DEADLINE, |t| t.contains("night-shift (operator)"));

    // Two more gateways registered elsewhere come online on the open page, no reload.
    let bb = add(&d, "edge-frankfurt", &fb, Some("fake-token"));
    let c = add(&d, "edge-paris", &fc, Some("fake-token"));
    for id in [bb, c] {
        wait_gateway(&d, id, "online", online);
    }
    b.wait_text("#online-count", DEADLINE, |t| t == "3/3");
    let table = b.wait_text("#gateways", DEADLINE, |t| t.contains("edge-paris"));
    assert!(table.contains("acting"), "{table}");
    assert_contrast(&b, "fleet");
    // Every status badge, as the fleet table draws it, whether or not a gateway has it now.
    b.script(
        "const t = document.querySelector('#gateways td'); \
         for (const s of ['online', 'degraded', 'timeout', 'offline', 'unknown']) { \
           const e = document.createElement('span'); e.className = `badge s-${s}`; \
           e.textContent = s; e.dataset.palette = ''; t.append(e); }",
    );
    assert_contrast(&b, "status badges");
    b.script("document.querySelectorAll('[data-palette]').forEach(e => e.remove())");
    b.screenshot(&shots().join("fleet.png"));

    // A gateway's page: probe it twice, the 24-hour graph draws the samples.
    b.click_css(&format!("a[href='#/gateway/{a}']"), DEADLINE);
    b.wait_text("h1", DEADLINE, |t| t.contains("edge-amsterdam"));
    let samples = || {
        b.script("const c = document.getElementById('latency-chart'); return c ? c.getAttribute('aria-label') : ''")
            .as_str()
            .and_then(|l| l.split(": ").nth(1)?.split(' ').next()?.parse::<u32>().ok())
            .unwrap_or(0)
    };
    for n in 1..=2 {
        b.wait_text("main button", DEADLINE, |t| t == "Probe");
        b.click_css("main button", DEADLINE);
        // Samples are stored in batches: the page shows them once stored (reload to look).
        wait_until("a probe sample on the page", DEADLINE, || {
            if samples() >= n {
                return Some(());
            }
            b.script("location.reload()");
            None
        });
    }
    b.find("#latency-chart canvas", DEADLINE);
    // The axis is the last 24 hours up to now, read as drawn: a few samples do not stretch it
    // over years, and nothing on the page reads `null`.
    let axis = b.script(
        "const c = document.getElementById('latency-chart'); \
         return {from: Number(c.dataset.xFrom), to: Number(c.dataset.xTo), labels: c.dataset.xLabels || ''}",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (from, to) = (axis["from"].as_i64().unwrap(), axis["to"].as_i64().unwrap());
    assert!((to - now).abs() < 120, "the axis ends now: {axis}");
    assert_eq!(to - from, 24 * 3600, "the axis spans 24 hours: {axis}");
    let labels: Vec<&str> = axis["labels"].as_str().unwrap().split('|').collect();
    assert!(
        labels.len() >= 3
            && labels.iter().all(|l| {
                l.len() == 5 && l.as_bytes()[2] == b':' && l.replace(':', "").parse::<u32>().is_ok()
            }),
        "hour labels along the day, no years: {labels:?}"
    );
    let page = b.text(&b.find("main", DEADLINE));
    assert!(!page.contains("null"), "{page}");
    assert!(
        page.contains("Probe latency, last 24 hours") && page.contains("Ping round trip"),
        "each figure named for what it is: {page}"
    );
    assert_contrast(&b, "gateway");
    b.screenshot(&shots().join("gateway.png"));

    // Sessions: kill one, after saying yes.
    b.click_css("a[href='#/sessions']", DEADLINE);
    b.wait_text("#sessions", DEADLINE, |t| t.contains("edge-amsterdam"));
    assert_contrast(&b, "sessions");
    let before = b.all("#sessions tbody tr").len();
    assert!(before >= 3, "{before} sessions listed");
    b.click_css("#sessions tbody tr button", DEADLINE);
    let asked = b.accept_dialog(DEADLINE);
    assert!(asked.starts_with("Kill session"), "{asked}");
    wait_until("the run aborted at the gateway", DEADLINE, || {
        [&fa, &fb]
            .iter()
            .any(|f| f.counters().aborts.load(Ordering::Relaxed) > 0)
            .then_some(())
    });

    // The spawn list and the audit log (an operator does not see the audit link).
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &serde_json::json!({"agent": "main", "task": "say pong", "gateway_id": bb}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    b.click_css("a[href='#/spawns']", DEADLINE);
    b.wait_text("#spawns", DEADLINE, |t| {
        t.contains("edge-frankfurt") || t.contains(&bb.to_string())
    });
    let audit_link = b.script("return document.getElementById('nav-audit').hidden");
    assert_eq!(
        audit_link,
        serde_json::json!(true),
        "an operator has no audit link"
    );

    // Events arrive on the open events page.
    b.click_css("a[href='#/events']", DEADLINE);
    let res = d.call(
        "POST",
        &format!("/api/gateways/{c}/cordon"),
        &d.admin_key,
        &serde_json::json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    b.wait_text("#event-list", DEADLINE, |t| t.contains("gateway.changed"));
    assert_contrast(&b, "events");

    // A viewer: the same pages, no buttons.
    b.click_css("#logout", DEADLINE);
    let key = b.find("#key", DEADLINE);
    // From the keyboard alone: the key, then Enter.
    b.type_into(&key, &format!("{viewer}\u{E007}"));
    b.wait_text(".who", DEADLINE, |t| t.contains("wall-screen (viewer)"));
    b.goto(&format!("{base}/console/#/gateway/{a}"));
    b.wait_text("h1", DEADLINE, |t| t.contains("edge-amsterdam"));
    let buttons: Vec<String> = b.all("main button").iter().map(|e| b.text(e)).collect();
    assert_eq!(buttons, Vec::<String>::new(), "a viewer sees no actions");

    // An admin reads the audit log: the daemon's own choice of the acting primary is in it.
    b.click_css("#logout", DEADLINE);
    b.type_into(&b.find("#key", DEADLINE), &d.admin_key);
    b.click_css("#login", DEADLINE);
    b.wait_text(".who", DEADLINE, |t| t.contains("(admin)"));
    b.click_css("a[href='#/audit']", DEADLINE);
    b.wait_text("#audit", DEADLINE, |t| t.contains("gateway.primary"));
    assert_contrast(&b, "audit");

    // A phone-sized window: no horizontal overflow of the page itself.
    b.set_window(390, 844);
    b.goto(&format!("{base}/console/#/"));
    b.wait_text("#online-count", DEADLINE, |t| t == "3/3");
    let overflow = b.script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    );
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "the page scrolls sideways by {overflow}"
    );
    b.screenshot(&shots().join("fleet-phone.png"));
}
