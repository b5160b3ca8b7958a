//! A key's lifecycle: it expires when it was made to, is rotated with an overlap (a new secret
//! shown once, the old one working for the grace asked, then refused), is revoked from the API,
//! and shows when it was last used — each change audited, no secret in any answer but the one
//! that hands it over.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Daemon, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn works(d: &Daemon, key: &str) -> bool {
    d.get("/api/gateways", key).status == 200
}

fn listed(d: &Daemon, name: &str) -> Value {
    let keys = d.get("/api/keys", &d.admin_key).json();
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no key {name}: {keys}"))
}

#[test]
fn a_key_expires_is_rotated_with_an_overlap_and_is_revoked() {
    let d = Daemon::start();
    // Made to last two seconds: it works, then it does not.
    let brief = d.create_scoped_key("viewer", "brief", &["--expires-in", "2s"]);
    assert!(works(&d, &brief));
    assert!(listed(&d, "brief")["expires_at"].is_i64());
    wait_until("the key to expire", DEADLINE, || {
        (!works(&d, &brief)).then_some(())
    });

    // Rotated with a grace: both secrets work, then only the new one.
    let ci = d.create_key("operator", "ci");
    assert!(works(&d, &ci));
    let id = listed(&d, "ci")["id"].as_i64().unwrap();
    wait_until("its use on record", DEADLINE, || {
        listed(&d, "ci")["last_used_at"].as_i64()
    });
    let res = d.call(
        "POST",
        &format!("/api/keys/{id}/rotate"),
        &d.admin_key,
        &json!({"grace_seconds": 2}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let new = res.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, ci);
    assert_eq!(res.json()["key"]["previous_prefix"], &ci[..12]);
    assert!(works(&d, &new), "the new secret at once");
    assert!(works(&d, &ci), "the old one in its grace");
    // Rotating again now would drop the secret still in its grace: refused.
    let res = d.call(
        "POST",
        &format!("/api/keys/{id}/rotate"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["error"], "rotation_in_grace");
    wait_until("the old secret refused", DEADLINE, || {
        (!works(&d, &ci)).then_some(())
    });
    assert!(works(&d, &new));

    // No secret in the list or the audit; the rotation is on record with both prefixes.
    let list = d.get("/api/keys", &d.admin_key).text();
    let audit = d.get("/api/audit?limit=50", &d.admin_key).text();
    for text in [&list, &audit] {
        assert!(!text.contains(&new) && !text.contains(&ci[12..]), "{text}");
    }
    assert!(
        audit.contains("api_key.rotate") && audit.contains(&new[..12]),
        "{audit}"
    );

    // Rotated from the command line, with no grace: the API's secret is refused at once.
    let out = d.cli(&["keys", "rotate", &id.to_string(), "--grace", "0s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    wait_until("the CLI's secret working", DEADLINE, || {
        works(&d, &third).then_some(())
    });
    wait_until("the API's secret refused", DEADLINE, || {
        (!works(&d, &new)).then_some(())
    });

    // Revoked from the API.
    let res = d.call(
        "DELETE",
        &format!("/api/keys/{id}"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["revoked_at"].is_i64());
    wait_until("the revoked key refused", DEADLINE, || {
        (!works(&d, &third)).then_some(())
    });
    let res = d.call(
        "POST",
        &format!("/api/keys/{id}/rotate"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 404, "{}", res.text());
    assert_eq!(res.json()["error"], "key_not_found");
    let res = d.call(
        "POST",
        "/api/keys/1/rotate",
        &d.admin_key,
        &json!({"grace_seconds": -1}),
    );
    assert_eq!(res.status, 400, "{}", res.text());
}

/// `keys revoke <old prefix>` after a rotation named no key at all ("no key with id or prefix"),
/// as if the key did not exist; it names the key the prefix was rotated away from, and revokes
/// nothing: the key under its new secret may be what keeps a service up.
#[test]
fn revoking_a_rotated_away_prefix_names_its_key_and_revokes_nothing() {
    let d = Daemon::start();
    let old = d.create_key("operator", "deployer");
    let id = listed(&d, "deployer")["id"].as_i64().unwrap();
    let out = d.cli(&["keys", "rotate", &id.to_string(), "--grace", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = d.cli(&["keys", "revoke", &old[..12]]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains(&format!("previous secret of key #{id} `deployer`"))
            && said.contains(&new[..12]),
        "{said}"
    );
    assert!(listed(&d, "deployer")["revoked_at"].is_null());
    assert!(
        works(&d, &new) && works(&d, &old),
        "both secrets still work in the grace"
    );
    // Unknown prefixes are still unknown.
    let out = d.cli(&["keys", "revoke", "gsk_nonesuch0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key with id or prefix"));
}
