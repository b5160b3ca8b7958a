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
use crate::support::{Daemon, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console")
}

/// Logs the console out (whoever it was) and in again with `key`; waits until the header
/// names `who`. A page still logged in is logged out as its user would, with its Log out
/// button, which draws the form: a navigation that changes only the part after `#` does not
/// reload the page, and one logged out behind its back (a `fetch` of `/console/logout`) kept
/// its logged-in view until its next API call, which only the next fleet event brings; in a
/// quiet fleet the form never came (20 s, the PostgreSQL suite under load, 2026-11-28).
pub(crate) fn log_in_as(b: &Browser, base: &str, key: &str, who: &str) {
    b.goto(&format!("{base}/console/#/"));
    // The page has decided once it shows the form or its Log out button.
    #[derive(serde::Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Shows {
        Form,
        LoggedIn,
    }
    const SHOWS: &str = "const out = document.getElementById('logout'); \
        return document.getElementById('key') ? 'form' : (out && !out.hidden ? 'logged_in' : null)";
    let shows = wait_until("the console to show the form or Log out", DEADLINE, || {
        serde_json::from_value::<Shows>(b.script(SHOWS)).ok()
    });
    if shows == Shows::LoggedIn {
        b.click_css("#logout", DEADLINE);
    }
    b.type_css("#key", key, DEADLINE);
    b.click_css("#login", DEADLINE);
    // If the header never names `who`, the failure says what the console showed instead.
    crate::support::wait_for(&format!(".who to name {who}"), DEADLINE, || {
        let who_shown = b.script("return document.querySelector('.who')?.textContent ?? ''");
        match who_shown.as_str() {
            Some(t) if t.contains(who) => Ok(()),
            _ => Err(b.console_state()),
        }
    });
}

/// No text under WCAG AA contrast on the page shown as `page` (`support/contrast.js` lists
/// each one with its ratio).
pub(crate) fn assert_contrast(b: &Browser, page: &str) {
    let low: Vec<String> = serde_json::from_value(b.script(include_str!("support/contrast.js")))
        .expect("a list of texts");
    assert!(low.is_empty(), "{page}: text under AA contrast: {low:#?}");
}

/// Another key logs in on a page still logged in, as the browser tests do between roles, on a
/// daemon with no gateway, so no event makes the page call the API by itself: the form comes and
/// the header names the second key. Then its session is logged out in another tab while the
/// events page is open (a page that calls no API on an event): the daemon ends the page's event
/// stream at the next event, and the page asks for a key again.
#[test]
fn a_second_key_logs_in_on_a_quiet_console_and_a_logout_elsewhere_asks_for_a_key_again() {
    let d = link_daemon(&[]);
    let operator = d.create_key("operator", "night-shift");
    let viewer = d.create_key("viewer", "wall-screen");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1024, 700);
    log_in_as(&b, &base, &operator, "night-shift (operator)");
    log_in_as(&b, &base, &viewer, "wall-screen (viewer)");
    assert_eq!(b.all("#logout").len(), 1, "logged in, with a way out");

    b.click_css("a[href='#/events']", DEADLINE);
    b.find("#event-list", DEADLINE);
    b.script("return fetch('/console/logout', {method: 'POST', credentials: 'same-origin'}).then(() => true)");
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &serde_json::json!({"name": "quiet", "host": "127.0.0.1", "port": 1}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    b.wait_text("#login-error", DEADLINE, |t| {
        t == "Your session ended; log in again."
    });
    // Why, in the daemon's words: the logout elsewhere left this browser no cookie.
    b.wait_text("#login-reason", DEADLINE, |t| {
        t == "The daemon said: no console session; log in"
    });
}

/// Log out clicked twice before its answer (a double click; a WebDriver click retried under
/// load) sends one logout, and a login after it stays in. Two logouts in flight let a login wait
/// for one of them only, and the other's answer, arriving after that login, cleared the cookie
/// the login had set (every logout answers `Max-Age=0`), and the page said "Your session ended"
/// right after logging in. (Suspected first for the browser tests' failure in CI on 2026-11-30;
/// the page's network log then showed that one was a login cookie equal to the one just
/// logged out — `console::the_session_ends_with_its_key_and_with_logout`.)
#[test]
fn log_out_clicked_twice_sends_one_logout_and_the_next_login_stays_in() {
    let (d, b) = a_viewer_logged_in();
    b.script(
        "const send = window.fetch; window.logouts = 0; \
         window.fetch = (url, opts) => { if (url === '/console/logout') window.logouts += 1; \
           return send(url, opts); }; \
         const out = document.getElementById('logout'); out.click(); out.click(); return true",
    );
    b.find("#key", DEADLINE);
    assert_eq!(
        b.script("return window.logouts").as_u64(),
        Some(1),
        "one logout sent for two clicks"
    );
    b.type_css("#key", &d.admin_key, DEADLINE);
    b.click_css("#login", DEADLINE);
    b.wait_text(".who", DEADLINE, |t| t.contains("(admin)"));
    let listed =
        b.script("return api('GET', '/api/gateways').then(() => 'listed', (e) => e.message)");
    assert_eq!(listed.as_str(), Some("listed"), "the admin's session works");
    assert_eq!(
        b.script("return document.getElementById('logout').disabled")
            .as_bool(),
        Some(false),
        "Log out works again in the new session"
    );
}

/// A request sent between a logout and the next login whose refusal arrives after that login
/// ends nothing: the 401 belongs to the session it was asked under. In CI (2026-11-29) a list
/// asked for under the viewer's session was answered 401 after the admin had logged in, and the
/// page drew the login form over the admin's session. Here the page's `fetch` holds one answer
/// until the test lets it go, so the order is certain.
#[test]
fn a_late_refusal_of_a_request_from_before_a_login_does_not_log_the_new_key_out() {
    let (d, b) = a_viewer_logged_in();
    b.click_css("#logout", DEADLINE);
    b.find("#key", DEADLINE);
    b.script(
        "const send = window.fetch; window.heldDone = false; \
         window.fetch = (...args) => { const answer = send(...args); \
           window.fetch = send; \
           return new Promise((done) => { window.releaseHeld = () => answer.then(done); }); }; \
         api('GET', '/api/gateways').catch(() => { window.heldDone = true; }); return true",
    );
    b.type_css("#key", &d.admin_key, DEADLINE);
    b.click_css("#login", DEADLINE);
    b.wait_text(".who", DEADLINE, |t| t.contains("(admin)"));
    b.script("window.releaseHeld(); return true");
    wait_until("the held refusal delivered", DEADLINE, || {
        b.script("return window.heldDone")
            .as_bool()
            .filter(|done| *done)
    });
    let who = b.wait_text(".who", DEADLINE, |_| true);
    assert!(
        who.contains("(admin)"),
        "still the admin's session: {who:?}"
    );
    assert!(
        b.all("#key").is_empty(),
        "no login form over the admin's session"
    );
    assert_eq!(d.get("/api/gateways", &d.admin_key).status, 200);
}

/// A daemon with no gateway, and a browser logged in to its console as a viewer.
fn a_viewer_logged_in() -> (Daemon, Browser) {
    let d = link_daemon(&[]);
    let viewer = d.create_key("viewer", "wall-screen");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1024, 700);
    log_in_as(&b, &base, &viewer, "wall-screen (viewer)");
    (d, b)
}

/// A viewer logged in whose Log out was clicked: the daemon has ended the session, and the
/// page's `fetch` holds the logout's answer until `window.releaseLogout()` (it sets
/// `window.logoutAnswered`). The page learns of the end from its next request's 401.
fn logged_out_with_the_answer_held() -> (Daemon, Browser) {
    let (d, b) = a_viewer_logged_in();
    b.script(
        "const send = window.fetch; window.logoutAnswered = false; \
         window.fetch = (url, opts) => { if (url !== '/console/logout') return send(url, opts); \
           window.fetch = send; const answer = send(url, opts); window.logoutSent = answer; \
           return new Promise((done) => { window.releaseLogout = () => answer.then((r) => { \
             window.logoutAnswered = true; done(r); }); }); }; return true",
    );
    b.click_css("#logout", DEADLINE);
    wait_until("the logout reached the daemon", DEADLINE, || {
        b.script("return window.logoutSent ? window.logoutSent.then(() => true) : false")
            .as_bool()
            .filter(|sent| *sent)
    });
    (d, b)
}

/// A logout whose own answer comes after another request of the same session was refused (the
/// daemon ended the session first): the refusal draws the login form, the key is typed into
/// it, and the logout's answer must not draw the form again, empty, over the key. That second
/// form was a way the browser tests' `log_in_as` failed in CI: the login button of an empty
/// form submits nothing (`required`), and the header never named the new key.
#[test]
fn a_logout_answered_late_keeps_the_key_typed_into_the_form_and_logs_it_in() {
    let (d, b) = logged_out_with_the_answer_held();
    b.script("api('GET', '/api/gateways').catch(() => {}); return true");
    b.type_css("#key", &d.admin_key, DEADLINE);
    b.script("window.releaseLogout(); return true");
    b.wait_text("#login-error", DEADLINE, |t| t == "Logged out.");
    let typed = b.script("return document.getElementById('key').value");
    assert_eq!(
        typed.as_str(),
        Some(d.admin_key.as_str()),
        "the key typed before the logout's answer is still in the form"
    );
    assert!(
        b.script("return window.logoutAnswered").as_bool() == Some(true),
        "the logout's answer was delivered"
    );
    b.click_css("#login", DEADLINE);
    b.wait_text(".who", DEADLINE, |t| t.contains("(admin)"));
}

/// [`logged_out_with_the_answer_held`], then the admin's key typed into the form the viewer's
/// refused request drew, and logged in: the logout's answer is still held.
fn the_admin_logged_in_before_the_logout_answered() -> (Daemon, Browser) {
    let (d, b) = logged_out_with_the_answer_held();
    b.script("api('GET', '/api/gateways').catch(() => {}); return true");
    b.type_css("#key", &d.admin_key, DEADLINE);
    b.click_css("#login", DEADLINE);
    // The login waits for the unanswered logout 30 s before it goes ahead.
    b.wait_text(".who", Duration::from_secs(45), |t| t.contains("(admin)"));
    (d, b)
}

/// The same late logout answer, now arriving after the key typed into the form has logged in
/// (CI, 2026-11-30: the header named nobody after a viewer's page logged out and the admin
/// logged in): the logout belongs to the session it ended, and the login made since stays.
#[test]
fn a_logout_answered_after_the_next_login_leaves_that_login_in() {
    let (_d, b) = the_admin_logged_in_before_the_logout_answered();
    b.find("#logout", DEADLINE);
    b.script("window.releaseLogout(); return true");
    wait_until("the logout's answer delivered", DEADLINE, || {
        b.script("return window.logoutAnswered")
            .as_bool()
            .filter(|a| *a)
    });
    // The page has run the logout's handler once its answer is in; an API call after it is
    // answered under whatever session the page then holds.
    let listed =
        b.script("return api('GET', '/api/gateways').then(() => 'listed', (e) => e.message)");
    assert_eq!(
        listed.as_str(),
        Some("listed"),
        "the admin's session still works"
    );
    assert!(
        b.all("#key").is_empty(),
        "no login form drawn over the admin's session"
    );
    b.wait_text(".who", DEADLINE, |t| t.contains("(admin)"));
}

/// The late logout answer again, but its `Set-Cookie` reached the browser after the login's and
/// cleared the new cookie (the test clears it by hand, as that answer would have): the page asks
/// who it is once the answer is in, and draws the form instead of showing a session it no longer
/// has — on a quiet daemon nothing else would ask (CI, 2026-11-30: the next login found no form
/// to type into).
#[test]
fn a_logout_answer_that_cleared_a_newer_login_s_cookie_asks_for_a_key_again() {
    let (_d, b) = the_admin_logged_in_before_the_logout_answered();
    b.delete_cookies();
    b.script("window.releaseLogout(); return true");
    b.wait_text("#login-error", DEADLINE, |t| {
        t == "Your session ended; log in again."
    });
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

    // Labels show in the table; the selector box narrows it, and a selector still being typed
    // says what is wrong with it beside the box, the table kept.
    let res = d.call(
        "PATCH",
        &format!("/api/gateways/{c}/labels"),
        &d.admin_key,
        &serde_json::json!({"region": "eu", "tier": "canary"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    b.wait_text("#gateways", DEADLINE, |t| t.contains("tier=canary"));
    b.type_into(&b.find("#selector", DEADLINE), "region in (eu");
    b.wait_text("#selector-error", DEADLINE, |t| {
        t.contains("at character 13: expected `)`, found the end")
    });
    b.type_into(&b.find("#selector", DEADLINE), ")");
    b.wait_text("#shown", DEADLINE, |t| t == "1 match");
    let table = b.wait_text("#gateways", DEADLINE, |t| t.contains("edge-paris"));
    assert!(!table.contains("edge-amsterdam"), "{table}");
    assert_eq!(b.text(&b.find("#selector-error", DEADLINE)), "");
    b.script("const s = document.getElementById('selector'); s.value = ''; s.dispatchEvent(new Event('input'));");
    b.wait_text("#shown", DEADLINE, |t| t == "3 match");
    // A status typed in the filter filters by status (the statuses are the daemon's, read from
    // the page's counts), not by names containing it: no gateway is named "online".
    b.type_into(&b.find("#filter", DEADLINE), "timeout");
    b.wait_text("#shown", DEADLINE, |t| t == "0 match");
    b.script("const s = document.getElementById('filter'); s.value = 'online'; s.dispatchEvent(new Event('input'));");
    b.wait_text("#shown", DEADLINE, |t| t == "3 match");
    b.script("const s = document.getElementById('filter'); s.value = ''; s.dispatchEvent(new Event('input'));");
    b.wait_text("#shown", DEADLINE, |t| t == "3 match");

    // A gateway's page: probe it twice, the 24-hour graph draws the samples.
    b.click_css(&format!("a[href='#/gateway/{a}']"), DEADLINE);
    b.wait_text("h1", DEADLINE, |t| t.contains("edge-amsterdam"));
    let samples = || {
        b.try_script("const c = document.getElementById('latency-chart'); return c ? c.getAttribute('aria-label') : ''")
            .unwrap_or_default()
            .as_str()
            .and_then(|l| l.split(": ").nth(1)?.split(' ').next()?.parse::<u32>().ok())
            .unwrap_or(0)
    };
    for n in 1..=2 {
        b.wait_text("main button", DEADLINE, |t| t == "Probe");
        b.click_css("main button", DEADLINE);
        // Samples are stored in batches: the page shows them once stored (reload to look —
        // every 2 s at most, so that a page loading slowly is let finish drawing).
        let mut reloaded = std::time::Instant::now();
        wait_until("a probe sample on the page", DEADLINE, || {
            if samples() >= n {
                return Some(());
            }
            if reloaded.elapsed() >= Duration::from_secs(2) {
                b.refresh();
                reloaded = std::time::Instant::now();
            }
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
    // Where an operator's form or an admin's buttons are, nothing: not the word "null".
    for (page, title) in [("spawns", "Spawns"), ("operations", "Operations")] {
        b.goto(&format!("{base}/console/#/{page}"));
        let main = b.wait_text("main", DEADLINE, |t| t.starts_with(title));
        assert!(!main.contains("null"), "{page}: {main}");
    }

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

/// The console acts, as the API lets it: an operator spawns from the form and sees the result
/// arrive; an admin holds updates, aborts the run that holds a drain and cancels another from
/// the Operations page; the log tail filters and follows; usage and versions are shown; a
/// gateway that never connected says why instead of showing figures; a viewer gets the same
/// pages with no form and no button.
#[test]
fn the_console_spawns_runs_operations_and_shows_logs_usage_and_versions() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    fa.log("info", "gateway", "console-visible line");
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__IDLE_INTERVAL", "1s"),
    ]);
    let a = add(&d, "edge-oslo", &fa, Some("fake-token"));
    let bb = add(&d, "edge-rome", &fb, Some("fake-token"));
    for id in [a, bb] {
        wait_gateway(&d, id, "online", online);
    }
    // Registered on a port nobody listens on: never connected.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &serde_json::json!({"name": "edge-nowhere", "host": "127.0.0.1", "port": dead_port, "token": "t"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let operator = d.create_key("operator", "day-shift");
    let viewer = d.create_key("viewer", "wall");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    let login = |key: &str, who: &str| log_in_as(&b, &base, key, who);

    // The fleet: the gateway never reached says so, not figures.
    login(&operator, "(operator)");
    let why = b.wait_text("#gateways", DEADLINE, |t| t.contains("never connected"));
    assert!(why.contains("edge-nowhere"), "{why}");

    // Spawn from the form; the result arrives on the page.
    b.click_css("a[href='#/spawns']", DEADLINE);
    b.type_into(&b.find("#spawn-task", DEADLINE), "say pong");
    b.script(&format!(
        "const s = document.getElementById('spawn-gateway'); s.value = '{a}'; s.dispatchEvent(new Event('change'));"
    ));
    b.click_css("#spawn-submit", DEADLINE);
    let said = b.wait_text("#spawn-result", DEADLINE, |t| t.contains(": ok"));
    assert!(said.contains("pong"), "the reply shown: {said}");
    // The list says what the run replied, not its record as raw JSON.
    let listed = b.wait_text("#spawns", DEADLINE, |t| {
        t.contains("edge-oslo") && t.contains("pong")
    });
    assert!(!listed.contains("{\""), "{listed}");
    // An operator starts no operation.
    b.click_css("a[href='#/operations']", DEADLINE);
    b.wait_text("main h1", DEADLINE, |t| t == "Operations");
    assert!(b.all("#start-operation").is_empty(), "admin only");
    assert_contrast(&b, "operations");

    // An admin: hold updates from the page.
    login(&d.admin_key, "(admin)");
    b.click_css("a[href='#/operations']", DEADLINE);
    b.wait_text("#start-operation", DEADLINE, |t| t.contains("Hold updates"));
    b.script("[...document.querySelectorAll('#start-operation button')].find(x => x.textContent === 'Hold updates').click()");
    assert!(b.accept_dialog(DEADLINE).contains("Hold updates"));
    // Each gateway's step, with the gateway's own word; the one never reached fails it.
    let held = b.wait_text("#operations", DEADLINE, |t| {
        t.contains("update hold failed")
    });
    assert!(
        held.contains("edge-oslo done nothing held")
            && held.contains("edge-nowhere failed not connected"),
        "{held}"
    );

    // A drain held by a run: named on the page, its runs aborted from it, it finishes.
    let key = crate::support::fleet::start_run(&d, bb, &fb, "SLOW");
    let op = d.drain(bb, "?timeout_seconds=600");
    let held = b.wait_text("#operations", DEADLINE, |t| t.contains(&key));
    assert!(held.contains("draining"), "{held}");
    b.click_css("[data-operation] .actions button.danger", DEADLINE);
    assert!(b.accept_dialog(DEADLINE).starts_with("Abort the runs"));
    wait_until("the drain done", DEADLINE, || {
        let drain = d.get(&format!("/api/operations/{op}"), &d.admin_key).json();
        (drain["operation"]["state"] == "succeeded").then_some(())
    });
    b.wait_text("#operations", DEADLINE, |t| t.contains("drained"));
    // Another drain, cancelled from the page.
    d.back_in_service(bb);
    crate::support::fleet::start_run(&d, bb, &fb, "SLOW");
    let op = d.drain(bb, "?timeout_seconds=600");
    let card = format!("[data-operation='{op}']");
    b.wait_text(&card, DEADLINE, |t| t.contains("draining"));
    b.script(&format!(
        "[...document.querySelectorAll(\"{card} button\")].find(x => x.textContent === 'Cancel').click()"
    ));
    assert!(b.accept_dialog(DEADLINE).starts_with("Cancel"));
    b.wait_text(&card, DEADLINE, |t| t.contains("cancelled"));
    b.screenshot(&shots().join("operations.png"));

    // Logs: filtered, then followed.
    b.click_css("a[href='#/logs']", DEADLINE);
    b.wait_text("#log-lines", DEADLINE, |t| {
        t.contains("console-visible line")
    });
    b.type_into(&b.find("#log-filter", DEADLINE), "no-such-text");
    b.wait_text("#log-lines", DEADLINE, |t| {
        !t.contains("console-visible line")
    });
    b.script("const f = document.getElementById('log-filter'); f.value = 'follow-me'; f.dispatchEvent(new Event('input'));");
    b.click_css("#log-follow", DEADLINE);
    b.find("#log-lines[data-following='true']", DEADLINE);
    fa.log("warn", "gateway", "follow-me: a line written now");
    b.wait_text("#log-lines", DEADLINE, |t| {
        t.contains("follow-me: a line written now")
    });
    assert_contrast(&b, "logs");

    // Usage and versions.
    b.click_css("a[href='#/usage']", DEADLINE);
    b.wait_text("#usage", DEADLINE, |t| t.contains("All"));
    b.click_css("a[href='#/versions']", DEADLINE);
    let versions = b.wait_text("#versions", DEADLINE, |t| t.contains("2026.9.6"));
    assert!(versions.contains("no handshake yet"), "{versions}");
    assert_contrast(&b, "versions");

    // A viewer: the same pages, no form, no button.
    login(&viewer, "(viewer)");
    for page in ["spawns", "operations", "logs", "usage", "versions"] {
        b.click_css(&format!("a[href='#/{page}']"), DEADLINE);
        b.wait_text("main h1", DEADLINE, |t| !t.is_empty());
        wait_until(&format!("the {page} page drawn"), DEADLINE, || {
            (b.script(
                "return document.querySelector('main table, main ul, main #operations') !== null",
            ) == serde_json::json!(true))
            .then_some(())
        });
        let buttons: Vec<String> = b.all("main button").iter().map(|e| b.text(e)).collect();
        assert_eq!(
            buttons,
            Vec::<String>::new(),
            "{page}: a viewer sees no actions"
        );
        assert!(b.all("#spawn-task").is_empty(), "{page}: no spawn form");
    }
}
