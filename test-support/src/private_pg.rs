//! A PostgreSQL server of a test's own (initdb in a temporary directory, started with the
//! machine's PostgreSQL binaries as the `postgres` user when the test runs as root), so that
//! it can be really restarted under a cluster without touching the server the other tests
//! share — and a streaming replica of it (`pg_basebackup -R`), to be promoted when the primary
//! is killed.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::daemon::{psql, wait_for};

pub struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn as_postgres(cmd: &std::path::Path, args: &[&str]) -> Output {
    as_postgres_with(cmd, args, &[])
}

/// `cmd` as the `postgres` user when the test runs as root, with `env` added.
fn as_postgres_with(cmd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    };
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()))
}

/// Debian's libfaketime (package `faketime`), for a process whose clock runs apart.
pub fn libfaketime() -> PathBuf {
    ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .map(|arch| PathBuf::from(format!("/usr/lib/{arch}/faketime/libfaketime.so.1")))
        .find(|p| p.exists())
        .expect("libfaketime (the `faketime` package; scripts/test.sh installs it)")
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn new_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let _ = Command::new("chown")
        .args(["postgres"])
        .arg(dir.path())
        .output();
    dir
}

impl PrivatePg {
    pub fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = new_dir();
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        check(
            "initdb",
            &as_postgres(
                &bin.join("initdb"),
                &["-D", data, "-A", "trust", "-U", "postgres"],
            ),
        );
        let port = free_port();
        let pg = PrivatePg { bin, dir, port };
        pg.ctl(&["start"]);
        let out = Command::new("psql")
            .args([&pg.url("postgres"), "-qc", "CREATE DATABASE gs"])
            .output()
            .expect("psql");
        check("CREATE DATABASE", &out);
        pg
    }

    fn ctl(&self, action: &[&str]) {
        self.ctl_with(action, &[]);
    }

    fn ctl_with(&self, action: &[&str], env: &[(&str, &str)]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-o",
            &options,
        ];
        args.extend_from_slice(action);
        check(
            &format!("pg_ctl {action:?}"),
            &as_postgres_with(&self.bin.join("pg_ctl"), &args, env),
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server stops and starts again.
    pub fn restart(&self) {
        self.ctl(&["restart"]);
    }

    /// A streaming replica of this server (`pg_basebackup -R`: a standby that follows it),
    /// started on a port of its own, with every database this one has.
    pub fn replica(&self) -> PrivatePg {
        let dir = new_dir();
        let data = dir.path().join("data");
        let port = self.port.to_string();
        check(
            "pg_basebackup",
            &as_postgres(
                &self.bin.join("pg_basebackup"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-R",
                    // At once, not after a spread checkpoint (about 90 s here).
                    "--checkpoint=fast",
                    "-X",
                    "stream",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                ],
            ),
        );
        let replica = PrivatePg {
            bin: self.bin.clone(),
            dir,
            port: free_port(),
        };
        replica.ctl(&["start"]);
        replica
    }

    /// A standby stops following its primary (its `primary_conninfo` emptied and reloaded,
    /// and its WAL receiver gone): what the primary commits from now on is not here, as with
    /// asynchronous replication lagging behind at a failover.
    pub fn stop_following(&self) {
        let url = self.url("postgres");
        psql(&url, "ALTER SYSTEM SET primary_conninfo = ''");
        psql(&url, "SELECT pg_reload_conf()");
        wait_for(
            "the standby's WAL receiver to stop",
            Duration::from_secs(30),
            || match psql(&url, "SELECT count(*) FROM pg_stat_wal_receiver").as_str() {
                "0" => Ok(()),
                n => Err(format!("{n} receivers")),
            },
        );
    }

    /// Every commit waits for a standby's flush (synchronous replication): what a client was
    /// told is committed survives a failover to that standby.
    pub fn synchronous(&self) {
        let url = self.url("postgres");
        psql(&url, "ALTER SYSTEM SET synchronous_standby_names = '*'");
        psql(&url, "SELECT pg_reload_conf()");
    }

    /// Commits no longer wait for a standby (asynchronous replication again).
    pub fn asynchronous(&self) {
        let url = self.url("postgres");
        psql(&url, "ALTER SYSTEM SET synchronous_standby_names = ''");
        psql(&url, "SELECT pg_reload_conf()");
    }

    /// Restarted with its clock `offset` from the machine's (libfaketime, e.g. `+5s`, `-5s`):
    /// `now()`, and so every expiry it computes, runs that far apart.
    pub fn restart_with_clock(&self, offset: &str) {
        let lib = libfaketime();
        self.ctl(&["stop"]);
        self.ctl_with(
            &["start"],
            &[("LD_PRELOAD", lib.to_str().unwrap()), ("FAKETIME", offset)],
        );
    }

    /// Killed: `pg_ctl stop -m immediate`, as a crashed host (no shutdown checkpoint).
    pub fn kill(&self) {
        self.ctl(&["-m", "immediate", "stop"]);
    }

    /// A standby made primary (`pg_promote()`, waiting for the promotion): a new timeline.
    pub fn promote(&self) {
        let out = Command::new("psql")
            .args([
                &self.url("postgres"),
                "-qAtc",
                "SELECT pg_promote(true, 60)",
            ])
            .output()
            .expect("psql");
        check("pg_promote", &out);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t", "promoted");
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
