//! The command line: check-config, migrate, keys.

use std::io::Write;
use std::time::Duration;

use crate::support::{Daemon, binary};
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn check_config_names_unknown_keys_and_bad_values() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[gateways]\nheartbeat_intervall = \"30s\"").unwrap();
    let out = run(
        &["check-config", "--config", file.path().to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("heartbeat_intervall"), "{stderr}");

    let out = run(
        &["check-config"],
        &[("GATEWAY_SUPERVISOR__SERVER__BIND", "not-an-address")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/gateway-supervisor.example.toml"
    );
    let secret = "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyE=";
    let out = run(
        &["check-config", "--config", example],
        &[
            ("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", secret),
            (
                "GATEWAY_SUPERVISOR__DATABASE__URL",
                "postgres://app:pw123@db/gs",
            ),
            (
                "GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL",
                "https://bot:hookpass@hooks.example:8443/services/T0/B0/hookpath?token=hooktoken",
            ),
            (
                "GATEWAY_SUPERVISOR__ALERTS__SECRET",
                "a-webhook-signing-secret",
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("heartbeat_interval") && stdout.contains("30s"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(secret) && !stdout.contains("pw123"),
        "secrets are not printed: {stdout}"
    );
    // A webhook's credentials, path and query are often its secret: only where it goes.
    for leak in [
        "hookpass",
        "hookpath",
        "hooktoken",
        "T0/B0",
        "a-webhook-signing-secret",
    ] {
        assert!(!stdout.contains(leak), "{leak} printed: {stdout}");
    }
    assert!(stdout.contains("https://hooks.example:8443/…"), "{stdout}");
    // For tools: only the settings, as one JSON document.
    let out = run(
        &["check-config", "--config", example, "--format", "json"],
        &[("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", secret)],
    );
    assert!(out.status.success());
    let settings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(settings["gateways"]["heartbeat_interval"], "30s");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    // Asked for JSON, an error is JSON too: one object naming what failed, nothing on stdout.
    let out = run(
        &["check-config", "--format", "json"],
        &[("GATEWAY_SUPERVISOR__SERVER__BIND", "not-an-address")],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{out:?}");
    let error: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(error["error"], "invalid_configuration");
    assert!(
        error["message"].as_str().unwrap().contains("server.bind"),
        "{error}"
    );
}

#[test]
fn migrate_and_keys_commands() {
    let d = Daemon::start();
    let out = d.cli(&["migrate"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 migration(s) applied"));

    let out = d.cli(&["keys", "create", "--role", "superuser", "--name", "x"]);
    assert!(!out.status.success());
    let key = d.create_key("operator", "ci bot");
    assert!(key.starts_with("gsk_") && key.len() == 44, "{key}");
    let out = d.cli(&["keys", "revoke", "999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));
    let out = d.cli(&["keys", "revoke", &key[..12]]);
    assert!(out.status.success());
    let out = d.cli(&["keys", "revoke", &key[..12]]);
    assert!(!out.status.success(), "revoking twice is an error");
    let listing = String::from_utf8_lossy(&d.cli(&["keys", "list"]).stdout).to_string();
    assert!(
        listing
            .lines()
            .any(|l| l.contains("ci bot") && l.contains("revoked")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains("initial-admin") && l.contains("active")),
        "{listing}"
    );
    // Times are dates, not Unix seconds: the year this runs in, UTC.
    let year = &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..4];
    let admin = listing
        .lines()
        .find(|l| l.contains("initial-admin"))
        .unwrap();
    assert!(
        admin.contains(&format!(" {year}-")) && admin.contains('Z'),
        "{listing}"
    );
    assert!(
        !admin
            .split_whitespace()
            .any(|w| w.len() == 10 && w.parse::<u64>().is_ok()),
        "no bare Unix seconds: {listing}"
    );
}

/// A start that cannot work fails at once with one line naming the cause: no panic, no
/// backtrace, no retries, nothing written for a busy port.
#[test]
fn start_up_failures_are_one_clear_line() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(&["serve", "--bind", &addr, "--state-dir", dir], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        !state.path().join("master.key").exists(),
        "nothing is created before the listener is bound"
    );

    // A file that is not a database.
    std::fs::write(state.path().join("supervisor.db"), vec![0x5a; 8192]).unwrap();
    let out = run(&["serve", "--bind", "127.0.0.1:0", "--state-dir", dir], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("r2d2"),
        "{stderr}"
    );
    let errors = stderr.lines().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");

    // A mistyped SQLite path: the directory is named, and not created.
    let typo = state.path().join("var/lib/gatway-supervisor");
    let url = format!("sqlite://{}/supervisor.db", typo.display());
    let other_state = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--state-dir",
            other_state.path().to_str().unwrap(),
        ],
        &[("GATEWAY_SUPERVISOR__DATABASE__URL", &url)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} does not exist", typo.display())),
        "{stderr}"
    );
    assert!(
        !typo.exists(),
        "no directory is created for a mistyped path"
    );
    assert!(!state.path().join("var").exists());
}

/// The bash completion script loads in a real bash and completes the subcommands and their
/// flags: what an operator typing `gateway-supervisor ch<TAB>` gets.
#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let script = run(&["completions", "bash"], &[]);
    assert!(script.status.success(), "{script:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway-supervisor.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // As bash calls a completion function: the words, the index of the one being completed,
    // and as arguments the command, that word and the one before it.
    let complete = |words: &str| {
        let list: Vec<&str> = words.split(' ').collect();
        let cword = list.len() - 1;
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; \
             COMP_POINT=${{#COMP_LINE}}; _gateway__supervisor gateway-supervisor {} {}; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            list[cword],
            list[cword - 1],
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &program])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let subcommands = complete("gateway-supervisor ch");
    assert_eq!(subcommands.trim(), "check-config", "{subcommands}");
    let flags = complete("gateway-supervisor check-config --fo");
    assert_eq!(flags.trim(), "--format", "{flags}");
    for verb in ["list", "show", "allow", "deny"] {
        let got = complete(&format!("gateway-supervisor ctl approvals {}", &verb[..2]));
        assert_eq!(got.trim(), verb, "{got}");
    }
    let always = complete("gateway-supervisor ctl approvals allow --al");
    assert_eq!(always.trim(), "--always", "{always}");

    let unknown = run(&["completions", "tcsh"], &[]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("bash"),
        "the error lists the shells it knows"
    );
}

/// The manual page renders with groff, without a warning, and documents every subcommand and
/// global flag; `--dir` writes the pages its SUBCOMMANDS section refers to.
#[test]
fn the_manual_page_renders_and_lists_every_command() {
    let page = run(&["man"], &[]);
    assert!(page.status.success(), "{page:?}");
    // `man | head` ends quietly: no panic, no error, exit 0. The reader is gone before the
    // command writes (its end of the pipe closed as soon as it starts).
    let state = tempfile::tempdir().unwrap();
    for args in [&["man"][..], &["completions", "bash"], &["keys", "list"]] {
        let mut child = Command::new(binary())
            .args(args)
            .env("GATEWAY_SUPERVISOR__STATE__DIR", state.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        assert!(done.status.success(), "{args:?}: {done:?}");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
    let roff = String::from_utf8(page.stdout).unwrap();
    assert!(roff.contains(".TH gateway-supervisor 1"), "{roff}");
    let dir = tempfile::tempdir().unwrap();
    let pages = run(&["man", "--dir", dir.path().to_str().unwrap()], &[]);
    assert!(pages.status.success(), "{pages:?}");
    for page in [
        "gateway-supervisor.1",
        "gateway-supervisor-serve.1",
        "gateway-supervisor-keys-create.1",
        "gateway-supervisor-cluster-status.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page} not written");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gateway-supervisor.1")).unwrap(),
        roff,
        "the page on stdout is the main page of the set"
    );
    let mut groff = Command::new("groff")
        // Plain text: no bold or underline by overstrike or escape sequences.
        .args(["-man", "-Tutf8", "-P-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff (package groff-base) renders manual pages");
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(roff.as_bytes())
        .unwrap();
    let shown = groff.wait_with_output().unwrap();
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        shown.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    // Lines may wrap or hyphenate anywhere: compare letters only.
    let text: String = String::from_utf8_lossy(&shown.stdout)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    for word in [
        "serve",
        "migrate",
        "checkconfig",
        "keys",
        "cluster",
        "completions",
        "man",
        "statedir",
        "databaseurl",
        "Supervisesfleets",
    ] {
        assert!(text.contains(word), "{word} missing from the rendered page");
    }
}

/// A backup taken while the daemon runs restores (`restore`, once the daemon is stopped, the
/// replaced database kept) what the fleet was at that moment, tokens readable; a key that does not read the database leaves no file behind; on PostgreSQL the
/// command is the recipe.
#[test]
fn a_backup_taken_live_restores_the_fleet_with_its_tokens() {
    use crate::support::Database;
    let mut d = Daemon::start();
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("nightly");
    let dir_arg = dir.to_str().unwrap();
    if let Database::Postgres { .. } = d.db {
        let out = d.cli(&["backup", dir_arg]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("pg_dump --format=custom") && text.contains("pg_restore"),
            "{text}"
        );
        assert!(!dir.exists(), "nothing is written for PostgreSQL");
        let file = backups.path().join("some.dump");
        std::fs::write(&file, b"x").unwrap();
        let refused = d.cli(&["restore", file.to_str().unwrap()]);
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("pg_restore"),
            "{refused:?}"
        );
        return;
    }
    let kept = d.create_gateway("kept", 1, Some("tok-kept-secret"))["id"]
        .as_i64()
        .unwrap();

    let out = d.cli(&["backup", dir_arg]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("the master key is NOT in the backup"),
        "{text}"
    );
    assert!(
        text.contains("master.key"),
        "names where the key is: {text}"
    );
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file, no WAL beside it: {files:?}");
    let copy = &files[0];
    assert!(text.contains(copy.to_str().unwrap()), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !crate::support::contains(&std::fs::read(copy).unwrap(), b"tok-kept-secret"),
        "tokens stay encrypted in the copy"
    );

    // Another key than the one that encrypted the database: refused, nothing left behind.
    let mut other = d.command();
    other.env(
        "GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY",
        "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyE=",
    );
    let refused = other.args(["backup", dir_arg]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not decrypt"),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "the refused copy was removed"
    );

    // After the backup the fleet changes; restoring brings back the moment of the backup.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{kept}"),
        &d.admin_key,
        &serde_json::json!({"token": ""}),
    );
    assert!(res.status < 300, "{}", res.text());
    d.create_gateway("after-backup", 2, None);
    let copy_arg = copy.to_str().unwrap();
    let busy = d.cli(&["restore", copy_arg]);
    assert!(!busy.status.success(), "not while the daemon runs");
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("another gateway-supervisor"),
        "{busy:?}"
    );
    assert!(d.terminate().success());
    let restored = d.cli(&["restore", copy_arg]);
    assert!(restored.status.success(), "{restored:?}");
    let said = String::from_utf8_lossy(&restored.stdout).to_string();
    let kept = said
        .lines()
        .find_map(|l| l.strip_prefix("the database it replaced is kept as "))
        .unwrap_or_else(|| panic!("names the kept database: {said}"));
    assert!(
        std::path::Path::new(kept).is_file(),
        "the replaced database is kept: {said}"
    );
    d.launch();
    let names: Vec<(String, bool)> = d
        .gateways()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["token_set"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("kept".to_owned(), true)]);
}

/// A backup of `d` (in a directory the caller keeps) and the copy's path.
fn backup_copy(d: &Daemon) -> (tempfile::TempDir, std::path::PathBuf) {
    let backups = tempfile::tempdir().unwrap();
    let out = d.cli(&["backup", backups.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let copy = std::fs::read_dir(backups.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (backups, copy)
}

/// A backup changed with plain SQL to hold a trigger (it fired inside the running daemon after
/// a restore, sending a gateway's tokens wherever the attacker liked) is refused by restore,
/// naming what is not the schema's own; the database in place is left as it was.
#[test]
fn restore_refuses_a_backup_holding_what_the_schema_does_not() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut d = Daemon::start();
    if let crate::support::Database::Postgres { .. } = d.db {
        return; // restore is SQLite's (PostgreSQL: pg_restore), covered above
    }
    d.create_gateway("kept", 1, Some("tok-kept-secret"));
    let (_backups, copy) = backup_copy(&d);
    let mut conn = diesel::SqliteConnection::establish(copy.to_str().unwrap()).unwrap();
    conn.batch_execute(
        "CREATE TRIGGER leak AFTER UPDATE ON gateways BEGIN \
           UPDATE gateways SET host = '203.0.113.9', port = 4444; END;",
    )
    .unwrap();
    drop(conn);
    assert!(d.terminate().success());
    let before = std::fs::read(d.state_dir().join("supervisor.db")).unwrap();
    let refused = d.cli(&["restore", copy.to_str().unwrap()]);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("trigger leak"), "{stderr}");
    assert_eq!(
        std::fs::read(d.state_dir().join("supervisor.db")).unwrap(),
        before,
        "the database in place is untouched"
    );
    d.launch();
    let g = &d.gateways()[0];
    assert_eq!(g["host"], "127.0.0.1");
}

/// A backup whose gateway was pointed elsewhere with plain SQL (no master key needed): the
/// daemon that runs on it never sends that gateway's tokens to the new address. Before, it
/// sent the device token, then the shared token, to the attacker's address at its next start.
#[test]
fn a_gateway_moved_behind_the_daemons_back_gets_none_of_its_tokens() {
    use crate::support::fleet::{fake, link_daemon, wait_gateway};
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut d = link_daemon(&[]);
    if let crate::support::Database::Postgres { .. } = d.db {
        return; // the backup and restore are SQLite's; the binding itself is the store's test
    }
    let honest = fake(|c| c.token = Some("tok-kept-secret".into()));
    // Expects the same token, so that a token presented to it is seen.
    let attacker = fake(|c| c.token = Some("tok-kept-secret".into()));
    let id = crate::support::fleet::add(&d, "kept", &honest, Some("tok-kept-secret"));
    wait_gateway(&d, id, "online", crate::support::online);
    let (_backups, copy) = backup_copy(&d);
    let mut conn = diesel::SqliteConnection::establish(copy.to_str().unwrap()).unwrap();
    conn.batch_execute(&format!(
        "UPDATE gateways SET port = {} WHERE id = {id}",
        attacker.port()
    ))
    .unwrap();
    drop(conn);
    assert!(d.terminate().success());
    let restored = d.cli(&["restore", copy.to_str().unwrap()]);
    assert!(restored.status.success(), "{restored:?}");
    d.launch();
    // The daemon dials the new address without the token, and is refused.
    crate::support::wait_until("the moved gateway dialled", Duration::from_secs(30), || {
        (attacker
            .counters()
            .refusals
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .then_some(())
    });
    assert_eq!(attacker.last_auth_method(), None, "no token reached it");
    let log = String::from_utf8_lossy(&d.logs()).into_owned();
    assert!(log.contains("does not belong to its address"), "{log}");
    assert!(!log.contains("tok-kept-secret"));
}
