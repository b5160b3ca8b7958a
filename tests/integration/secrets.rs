//! No plaintext gateway token in the database, the logs, or any response.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::support::{Daemon, contains};

#[test]
fn tokens_never_reach_disk_logs_or_responses_in_plaintext() {
    let mut d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__LOG__LEVEL", "trace"),
        ("OPENCLAW_GATEWAY_TOKEN", "seed-token-Q7w9Zx3"),
    ]);
    let tokens = ["tok-PLAINTEXT-4f1c9a7e", "second-secret-8b2d"];
    let g = d.create_gateway("a", 1000, Some(tokens[0]));
    let res = d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": g["id"], "token": tokens[1]}),
    );
    assert_eq!(res.status, 200);
    let mut bodies = Vec::new();
    bodies.extend(d.get("/api/gateways", &d.admin_key).body);
    bodies.extend(d.get("/api/audit?limit=1000", &d.admin_key).body);
    bodies.extend(d.get("/metrics", &d.admin_key).body);
    // A restart decrypts them again (and they still work as set).
    d.terminate();
    d.launch();
    assert!(d.gateways().iter().all(|g| g["token_set"] == true));

    let db = d.database_bytes();
    let logs = d.logs();
    assert!(db.len() > 1000 && !logs.is_empty());
    for t in tokens.iter().chain(["seed-token-Q7w9Zx3"].iter()) {
        assert!(
            !contains(&db, t.as_bytes()),
            "token {t} found in the database"
        );
        assert!(
            !contains(&logs, t.as_bytes()),
            "token {t} found in the logs"
        );
        assert!(
            !contains(&bodies, t.as_bytes()),
            "token {t} found in a response"
        );
    }
    // The admin API key is not in the logs either (only where it was written).
    assert!(!contains(&logs, d.admin_key.as_bytes()));
    for file in ["master.key", "admin.key"] {
        let mode = std::fs::metadata(d.state_dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_is_decrypted() {
    let mut d = Daemon::start();
    d.create_gateway("a", 1000, Some("tok"));
    d.terminate();
    let out = {
        let mut cmd = d.command();
        cmd.env("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", "00".repeat(32))
            .arg("serve");
        cmd.output().unwrap()
    };
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not the key this database was encrypted with"),
        "{stderr}"
    );
    // With the right key it starts and the token is intact.
    d.launch();
    assert_eq!(d.gateways()[0]["token_set"], true);
}
