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

#[test]
fn a_deleted_master_key_is_refused_without_writing_a_new_one() {
    let mut d = Daemon::start();
    d.create_gateway("a", 1000, Some("tok"));
    d.terminate();
    let key_file = d.state_dir().join("master.key");
    let original = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let out = d.command().arg("serve").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is missing") && stderr.contains("restore"),
        "{stderr}"
    );
    assert!(
        !key_file.exists(),
        "a new key was written over the missing one"
    );

    // A key file others can read is refused too, with the fix in the message.
    std::fs::write(&key_file, &original).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.command().arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.launch();
    assert_eq!(d.gateways()[0]["token_set"], true);
}

/// The SQLite files are the owner's only, and after a clean stop the `.db` file alone holds
/// everything (main left it all in the `-wal`: a copy of the `.db` was an empty database).
#[test]
fn sqlite_files_are_private_and_complete_after_a_clean_stop() {
    let mut d = Daemon::start();
    if !matches!(d.db, crate::support::Database::Sqlite) {
        return; // PostgreSQL has no files of ours.
    }
    d.create_gateway("kept", 1000, None);
    let db = d.state_dir().join("supervisor.db");
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path}");
        }
    }
    d.terminate();
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("copy.db");
    std::fs::copy(&db, &copied).unwrap();
    let bytes = std::fs::read(&copied).unwrap();
    assert!(
        contains(&bytes, b"kept"),
        "the .db file alone lacks the gateway ({} bytes)",
        bytes.len()
    );
}
