//! A PostgreSQL server of the test's own (initdb in a temporary directory, started with the
//! machine's PostgreSQL binaries as the `postgres` user when the test runs as root), so that
//! it can be really restarted under a cluster without touching the server the other tests
//! share.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn as_postgres(cmd: &std::path::Path, args: &[&str]) -> Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let out = if root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(cmd)
            .args(args)
            .output()
    } else {
        Command::new(cmd).args(args).output()
    };
    out.unwrap_or_else(|e| panic!("{}: {e}", cmd.display()))
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = Command::new("chown")
            .args(["postgres"])
            .arg(dir.path())
            .output();
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        check(
            "initdb",
            &as_postgres(
                &bin.join("initdb"),
                &["-D", data, "-A", "trust", "-U", "postgres"],
            ),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
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
            &as_postgres(&self.bin.join("pg_ctl"), &args),
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server stops and starts again.
    pub fn restart(&self) {
        self.ctl(&["restart"]);
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
