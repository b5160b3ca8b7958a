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
