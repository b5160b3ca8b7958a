//! A full disk under a SQLite daemon (issue 61): the database on a small tmpfs of its own, the
//! rest of that filesystem filled. Every write is refused with a 503 `storage_full` that says
//! so, and the log names the database's path and the space left; reads are served throughout;
//! once space is freed, writes succeed again with no restart, and every write that was
//! acknowledged is there — none refused half-done.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{Daemon, wait_for};

/// A tmpfs of `size` mounted on a temporary directory for the test (root only: the suites run
/// as root), unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (scripts/test.sh runs the suites as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// Writes zeros to `file` until the filesystem has no room left.
fn fill(file: &PathBuf) {
    let mut f = std::fs::File::create(file).expect("filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Also what a partial block could still take.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
}

/// Every gateway's name: reads are served.
fn names(d: &Daemon) -> Vec<String> {
    crate::support::fleet::gateway_names(d, "limit=1000")
}

/// Registers a gateway `name` at a port of its own (addresses are unique).
fn add(d: &Daemon, name: &str, port: u16) -> crate::support::Response {
    d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": name, "host": "127.0.0.1", "port": port}),
    )
}

#[test]
fn a_full_disk_refuses_writes_with_a_clear_503_serves_reads_and_recovers_by_itself() {
    let fs = Tmpfs::mount("16m");
    let db = fs.path().join("supervisor.db");
    let url = format!("sqlite://{}", db.display());
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__DATABASE__URL", url.as_str())]);
    assert_eq!(add(&d, "before", 1).status, 201);

    fill(&fs.path().join("filler"));
    // Writes go on into space SQLite already holds (its WAL) until it is used up: each
    // acknowledged one is kept, and then one is refused.
    let mut acknowledged = vec!["before".to_owned()];
    let mut refused = None;
    for i in 0..500u16 {
        let name = format!("during-{i}");
        let res = add(&d, &name, 1000 + i);
        match res.status {
            201 => acknowledged.push(name),
            _ => {
                refused = Some((name, res));
                break;
            }
        }
    }
    let (refused_name, res) = refused.expect("a write refused on a full disk");
    assert_eq!(res.status, 503, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "storage_full", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("disk is full"),
        "{body}"
    );
    // The log says where and how much room is left.
    wait_for(
        "the log line of the refused write",
        Duration::from_secs(5),
        || {
            let log = String::from_utf8_lossy(&d.logs()).into_owned();
            match log
                .lines()
                .find(|l| l.contains("write refused: the database's disk is full"))
            {
                Some(l) if l.contains(&db.display().to_string()) && l.contains("free_bytes=") => {
                    Ok(())
                }
                Some(l) => Err(l.to_owned()),
                None => Err("no such line".into()),
            }
        },
    );
    // Reads are served, with every acknowledged write and not the refused one.
    let listed = names(&d);
    for n in &acknowledged {
        assert!(
            listed.contains(n),
            "{n} acknowledged, not listed: {listed:?}"
        );
    }
    assert!(!listed.contains(&refused_name), "a refused write is listed");

    std::fs::remove_file(fs.path().join("filler")).unwrap();
    wait_for("a write accepted again", Duration::from_secs(10), || {
        let res = add(&d, "after", 2);
        match res.status {
            201 => Ok(()),
            s => Err(format!("{s} {}", res.text())),
        }
    });
    acknowledged.push("after".into());
    let listed = names(&d);
    for n in &acknowledged {
        assert!(listed.contains(n), "{n} lost: {listed:?}");
    }
    assert_eq!(d.get("/readyz", "").status, 200, "ready throughout");
}
