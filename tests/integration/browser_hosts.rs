//! The console's Hosts page in a real headless Chromium: an admin installs a managed gateway
//! from the page; this host shows it with its state and the reason it failed (no Node here),
//! its facts (CPUs, memory); its restart is asked from the page; an upgrade of the host's
//! gateways starts an operation; a viewer sees the same page without a button.

use std::time::Duration;

use crate::browser::{assert_contrast, log_in_as, shots};
use crate::support::fleet::{add, fake, link_daemon};
use crate::support::webdriver::Browser;

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn the_hosts_page_installs_shows_restarts_and_upgrades_managed_gateways() {
    let d = link_daemon(&[(
        "GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE",
        "/nonexistent/node",
    )]);
    // Another gateway is primary.
    let other = fake(|_| {});
    add(&d, "primary", &other, Some("fake-token"));
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1280, 900);
    log_in_as(&b, &base, &d.admin_key, "(admin)");
    b.click_css("a[href='#/hosts']", DEADLINE);
    b.type_into(&b.find("#managed-name", DEADLINE), "edge-<b>1</b>");
    // The page is drawn again after the alert: the form shown now is marked, to wait for the next.
    b.script("document.getElementById('managed-install').dataset.before = 'yes'; return true");
    b.click_css("#managed-install-submit", DEADLINE);
    // A name the API refuses: its words in the page's alert.
    let said = b.accept_dialog(DEADLINE);
    assert!(said.contains("name contains '<'"), "{said}");
    b.find("#managed-install:not([data-before])", DEADLINE);
    b.type_into(&b.find("#managed-name", DEADLINE), "edge-1");
    b.click_css("#managed-install-submit", DEADLINE);

    let row = "tr[data-managed]";
    let shown = b.wait_text(row, DEADLINE, |t| t.contains("failed"));
    assert!(
        shown.contains("edge-1")
            && shown.contains("2026.9.6")
            && shown.contains("managed_runtime.node"),
        "{shown}"
    );
    let host = b.wait_text("section.host", DEADLINE, |t| t.contains("CPUs"));
    assert!(
        host.contains("supervised") && host.contains("GiB"),
        "{host}"
    );
    assert_contrast(&b, "hosts");
    b.screenshot(&shots().join("hosts.png"));

    let managed = d.get("/api/managed", &d.admin_key).json()["managed"][0].clone();
    let id = managed["gateway_id"].as_i64().unwrap();
    assert_eq!(managed["name"], "edge-1");
    // Restart from the page: audited as the console's admin.
    b.click_css(&format!("tr[data-managed='{id}'] button.restart"), DEADLINE);
    crate::support::wait_for("the restart answered", DEADLINE, || {
        let said = b.script("return document.getElementById('announce').textContent");
        if said == "Restart edge-1: done" {
            Ok(())
        } else {
            Err(said.to_string())
        }
    });
    // Upgrade the host's gateways: an operation with the version asked.
    // Filled and sent in one turn of the page: the restart's events redraw it meanwhile.
    b.find("section.host form.upgrade", DEADLINE);
    b.script(
        "const f = document.querySelector('section.host form.upgrade'); \
         f.querySelector('input').value = '2026.9.7'; f.requestSubmit(); return true",
    );
    b.wait_text("main h1", DEADLINE, |t| t.contains("Operations"));
    let ops = d.get("/api/operations", &d.admin_key).json();
    let op = &ops["operations"][0];
    assert_eq!(op["kind"], "upgrade", "{ops:#}");
    assert_eq!(op["params"]["release"]["version"], "2026.9.7", "{ops:#}");
    assert_eq!(op["gateways"][0]["gateway_id"], id, "{ops:#}");

    // A viewer: the same page, no button.
    let viewer = d.create_key("viewer", "wall");
    log_in_as(&b, &base, &viewer, "(viewer)");
    b.click_css("a[href='#/hosts']", DEADLINE);
    b.wait_text(row, DEADLINE, |t| t.contains("edge-1"));
    assert!(b.all("main button").is_empty(), "a viewer gets no button");
    assert!(b.all("#managed-install").is_empty());
    // Where the admin's form was, nothing: not the word "null".
    let main = b.wait_text("main", DEADLINE, |_| true);
    assert!(!main.contains("null"), "{main}");
}
