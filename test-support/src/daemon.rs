//! The daemon harness: runs the real `gateway-supervisor` binary on 127.0.0.1 with a real
//! database (SQLite files, or a fresh PostgreSQL database when GS_TEST_DATABASE=postgres), talks
//! to it over real sockets, and waits on conditions with deadlines (never on sleeps).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::http::{Request, Response};

/// The daemon binary: `GS_DAEMON_BIN`, else `gateway-supervisor` beside the test executable's
/// `deps/` directory (where cargo puts a package's binaries before it runs the package's
/// integration tests).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("GS_DAEMON_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!(
        "gateway-supervisor{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        bin.exists(),
        "{} is missing: build the daemon first (cargo test builds it), or set GS_DAEMON_BIN",
        bin.display()
    );
    bin
}

/// Waits for `cond` to hold, polling, until the deadline; panics with `what` otherwise.
/// Runs one statement with psql on `url`; its rows, one a line, unaligned. Panics with psql's
/// words when it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql must be installed for the PostgreSQL suite");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn wait_until<T>(what: &str, deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    wait_for(what, deadline, || cond().ok_or(String::new()))
}

/// [`wait_until`] for a condition that can say what it last saw (`Err`), for the panic.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let last = match cond() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!("; last: {last}")
            }
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A gateway as the API reports it: status online over a connected link.
pub fn online(g: &Value) -> bool {
    g["status"] == "online" && g["connection"]["state"] == "connected"
}

/// Waits for a spawn to leave `pending`/`running`; returns its final record.
pub fn spawn_finished(d: &Daemon, spawn_id: &str, deadline: Duration) -> Value {
    wait_for("the spawn to finish", deadline, || {
        let s = d
            .get(&format!("/api/spawn/{spawn_id}"), &d.admin_key)
            .json();
        if ["pending", "running"].contains(&s["status"].as_str().unwrap_or("pending")) {
            Err(s.to_string())
        } else {
            Ok(s)
        }
    })
}

/// `POST /api/sessions/{key}/control` as admin.
pub fn control(d: &Daemon, key: &str, action: &str) -> Response {
    d.call(
        "POST",
        &format!("/api/sessions/{key}/control"),
        &d.admin_key,
        &json!({"action": action}),
    )
}

/// `POST /api/sessions/{key}/control?gateway_id=` as admin: the session `key` on that gateway.
pub fn control_on(d: &Daemon, gateway_id: i64, key: &str, action: &str) -> Response {
    d.call(
        "POST",
        &format!("/api/sessions/{key}/control?gateway_id={gateway_id}"),
        &d.admin_key,
        &json!({"action": action}),
    )
}

/// `GET /api/sessions` (with `query`, e.g. `?agent=main`) as admin: the sessions listed.
pub fn sessions(d: &Daemon, query: &str) -> Vec<serde_json::Value> {
    let res = d.get(&format!("/api/sessions{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["sessions"].as_array().unwrap().clone()
}

/// Waits until `GET /api/sessions` lists the session `key`.
pub fn wait_session_listed(d: &Daemon, key: &str, deadline: Duration) {
    wait_session_where(d, "the session in the cache", key, deadline, |_| true);
}

/// Waits until `GET /api/sessions` lists the session `key` as `holds` says (`what` names it).
pub fn wait_session_where(
    d: &Daemon,
    what: &str,
    key: &str,
    deadline: Duration,
    holds: impl Fn(&Value) -> bool,
) {
    wait_until(what, deadline, || {
        let list = d.get("/api/sessions?limit=1000", &d.admin_key).json();
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["key"] == key && holds(x))
            .then_some(())
    });
}

#[derive(Debug, Clone)]
pub enum Database {
    Sqlite,
    Postgres { url: String },
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Database {
    /// GS_TEST_DATABASE=sqlite (default) or postgres (needs GS_TEST_PG_URL, a server URL
    /// without a database name, e.g. postgres://postgres@127.0.0.1:55432).
    fn create() -> Database {
        match std::env::var("GS_TEST_DATABASE").as_deref() {
            Ok("postgres") => Database::postgres(),
            Ok("sqlite") | Err(_) => Database::Sqlite,
            Ok(other) => panic!("GS_TEST_DATABASE must be sqlite or postgres, not {other}"),
        }
    }

    /// A fresh PostgreSQL database on the server GS_TEST_PG_URL names (scripts/test.sh starts
    /// one).
    pub fn postgres() -> Database {
        {
            {
                let base = std::env::var("GS_TEST_PG_URL")
                    .expect("the PostgreSQL suites need GS_TEST_PG_URL (scripts/test.sh sets it)");
                let name = format!(
                    "gs_test_{}_{}_{}",
                    std::process::id(),
                    DB_COUNTER.fetch_add(1, Ordering::SeqCst),
                    Instant::now().elapsed().subsec_nanos()
                );
                psql(
                    &format!("{base}/postgres"),
                    &format!("CREATE DATABASE {name}"),
                );
                Database::Postgres {
                    url: format!("{base}/{name}"),
                }
            }
        }
    }
}

/// A running daemon with its own state directory and database.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub db: Database,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub admin_key: String,
    /// The network namespace the process runs in (`ip netns exec`), if not this one.
    pub netns: Option<String>,
    starts: u32,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// Starts with extra environment (e.g. `GATEWAY_SUPERVISOR__LIMITS__…`).
    pub fn start_with(env: &[(&str, &str)]) -> Daemon {
        Self::start_on(Database::create(), env)
    }

    /// Starts on `db` (e.g. [`Database::postgres`]) with extra environment.
    pub fn start_on(db: Database, env: &[(&str, &str)]) -> Daemon {
        let mut d = Self::spawn_on(db, env);
        d.wait_ready();
        d.admin_key = fs::read_to_string(d.dir.path().join("admin.key"))
            .expect("admin.key written on first start")
            .trim()
            .to_owned();
        d
    }

    /// A daemon on a SQLite state directory another daemon left (`from` holds its
    /// `supervisor.db`, `master.key` and `admin.key`: a fixture written by an older binary),
    /// copied, then started with extra environment.
    pub fn start_from(from: &Path, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["supervisor.db", "master.key", "admin.key"] {
            let to = dir.path().join(name);
            fs::copy(from.join(name), &to)
                .unwrap_or_else(|e| panic!("copy {name} from {}: {e}", from.display()));
            // A checkout does not keep a file's mode: the daemon refuses a key others can read.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        }
        let admin_key = fs::read_to_string(dir.path().join("admin.key"))
            .expect("admin.key")
            .trim()
            .to_owned();
        let mut d = Self::unstarted(dir, Database::Sqlite, env, admin_key);
        d.launch();
        d
    }

    /// Like [`Daemon::start_on`], in network namespace `netns` (`ip netns exec`; the process
    /// keeps its PID): `env` must bind the HTTP side to an address the test can reach there.
    pub fn start_in(netns: &str, db: Database, env: &[(&str, &str)]) -> Daemon {
        let mut d = Self::unstarted(
            tempfile::tempdir().expect("tempdir"),
            db,
            env,
            String::new(),
        );
        d.netns = Some(netns.to_owned());
        d.launch();
        d.admin_key = fs::read_to_string(d.dir.path().join("admin.key"))
            .expect("admin.key written on first start")
            .trim()
            .to_owned();
        d
    }

    /// Like [`Daemon::join`], in network namespace `netns`.
    pub fn join_in(first: &Daemon, netns: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::copy(
            first.dir.path().join("master.key"),
            dir.path().join("master.key"),
        )
        .expect("copy the master key");
        let mut d = Self::unstarted(dir, first.db.clone(), env, first.admin_key.clone());
        d.netns = Some(netns.to_owned());
        d.launch();
        d
    }

    /// Another daemon on `first`'s database (a cluster, on PostgreSQL): its own state
    /// directory, `first`'s master key (every instance must have the key the database was
    /// encrypted with) and admin key, and extra environment.
    pub fn join(first: &Daemon, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("master.key");
        fs::copy(first.dir.path().join("master.key"), &key).expect("copy the master key");
        let mut d = Self::unstarted(dir, first.db.clone(), env, first.admin_key.clone());
        d.launch();
        d
    }

    /// A daemon not started yet.
    fn unstarted(
        dir: tempfile::TempDir,
        db: Database,
        env: &[(&str, &str)],
        admin_key: String,
    ) -> Daemon {
        Daemon {
            dir,
            db,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_key,
            netns: None,
            starts: 0,
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    pub fn logs(&self) -> Vec<u8> {
        fs::read(self.log_path()).unwrap_or_default()
    }

    pub fn database_url(&self) -> String {
        match &self.db {
            Database::Sqlite => format!(
                "sqlite://{}",
                self.dir.path().join("supervisor.db").display()
            ),
            Database::Postgres { url } => url.clone(),
        }
    }

    /// The command with this daemon's state dir, database and environment.
    pub fn command(&self) -> Command {
        let mut cmd = match &self.netns {
            None => Command::new(binary()),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(binary());
                c
            }
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GATEWAY_SUPERVISOR__STATE__DIR", self.dir.path())
            .env("GATEWAY_SUPERVISOR__DATABASE__URL", self.database_url())
            .env("GATEWAY_SUPERVISOR__SERVER__BIND", "127.0.0.1:0")
            .env("GATEWAY_SUPERVISOR__AUTH__KEY_REFRESH_INTERVAL", "200ms")
            .env("GATEWAY_SUPERVISOR__SERVER__WORKERS", "2");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn launch(&mut self) {
        self.launch_with(|_| {});
    }

    /// A daemon on `db` with extra environment, its process started but not waited for
    /// ([`Daemon::wait_ready`] waits); no admin key read (on a shared database only the
    /// instance that set the database up writes one).
    pub fn spawn_on(db: Database, env: &[(&str, &str)]) -> Daemon {
        let mut d = Self::unstarted(
            tempfile::tempdir().expect("tempdir"),
            db,
            env,
            String::new(),
        );
        d.spawn_with(|_| {});
        d
    }

    /// Starts the process (with a chance to adjust the command) and waits until it is ready.
    pub fn launch_with(&mut self, adjust: impl FnOnce(&mut Command)) {
        self.spawn_with(adjust);
        self.wait_ready();
    }

    /// Starts the process, without waiting.
    pub fn spawn_with(&mut self, adjust: impl FnOnce(&mut Command)) {
        let _ = fs::remove_file(self.dir.path().join("http.addr"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut cmd = self.command();
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        adjust(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn daemon"));
        self.starts += 1;
    }

    /// Waits for the started process to say where it listens and to answer `/readyz` 200.
    pub fn wait_ready(&mut self) {
        let addr = self.wait_listening();
        wait_until("/readyz to answer 200", Duration::from_secs(30), || {
            (Request::new("GET", "/readyz").send(addr).ok()?.status == 200).then_some(())
        });
    }

    /// Waits for the started process to write where it listens (`http.addr`); panics if it
    /// exits meanwhile.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let addr_file = self.dir.path().join("http.addr");
        let mut child = self.child.take().expect("started");
        let addr = wait_until(
            "the daemon to write http.addr",
            Duration::from_secs(60),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "daemon exited with {status} during start:\n{}",
                        String::from_utf8_lossy(&self.logs())
                    );
                }
                fs::read_to_string(&addr_file)
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse::<SocketAddr>()
                    .ok()
            },
        );
        self.addr = addr;
        self.child = Some(child);
        addr
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        wait_until(
            "the daemon to exit after SIGTERM",
            Duration::from_secs(30),
            || child.try_wait().ok().flatten(),
        )
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn send(&self, req: Request) -> Response {
        req.send(self.addr)
            .unwrap_or_else(|e| panic!("request {} {} failed: {e}", req.method, req.path))
    }

    pub fn get(&self, path: &str, key: &str) -> Response {
        self.send(Request::new("GET", path).key(key))
    }

    pub fn call(&self, method: &str, path: &str, key: &str, body: &Value) -> Response {
        self.send(Request::new(method, path).key(key).json(body))
    }

    /// Runs a CLI subcommand against this daemon's state and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run cli")
    }

    /// Creates an API key through the CLI and returns it.
    pub fn create_key(&self, role: &str, name: &str) -> String {
        self.create_scoped_key(role, name, &[])
    }

    /// Creates an API key through the CLI with scope flags (`--tenant blue`, `--verbs read`…)
    /// and returns it.
    pub fn create_scoped_key(&self, role: &str, name: &str, scope: &[&str]) -> String {
        let mut args = vec!["keys", "create", "--role", role, "--name", name];
        args.extend_from_slice(scope);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "keys create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    /// Creates a gateway as admin and returns its JSON.
    pub fn create_gateway(&self, name: &str, port: u16, token: Option<&str>) -> Value {
        let mut body = json!({ "name": name, "host": "127.0.0.1", "port": port });
        if let Some(t) = token {
            body["token"] = json!(t);
        }
        let res = self.call("POST", "/api/gateways", &self.admin_key, &body);
        assert_eq!(res.status, 201, "create {name}: {}", res.text());
        res.json()["gateway"].clone()
    }

    /// Starts a drain of gateway `id` as admin (`query`: `""` or `?timeout_seconds=…`); the
    /// operation's id.
    pub fn drain(&self, id: i64, query: &str) -> String {
        let res = self.send(
            Request::new("POST", &format!("/api/gateways/{id}/drain{query}")).key(&self.admin_key),
        );
        assert_eq!(res.status, 202, "drain {id}: {}", res.text());
        res.json()["operation"]["id"].as_str().unwrap().to_owned()
    }

    /// Brings a drained gateway back: resumed, then uncordoned (each 200).
    pub fn back_in_service(&self, id: i64) {
        for step in ["resume", "uncordon"] {
            let res = self.send(
                Request::new("POST", &format!("/api/gateways/{id}/{step}")).key(&self.admin_key),
            );
            assert_eq!(res.status, 200, "{step} {id}: {}", res.text());
        }
    }

    pub fn gateways(&self) -> Vec<Value> {
        let res = self.get("/api/gateways", &self.admin_key);
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["gateways"]
            .as_array()
            .expect("gateways array")
            .clone()
    }

    /// All bytes the database holds: the SQLite files, or a pg_dump of the database.
    pub fn database_bytes(&self) -> Vec<u8> {
        match &self.db {
            Database::Sqlite => ["supervisor.db", "supervisor.db-wal", "supervisor.db-shm"]
                .iter()
                .flat_map(|f| fs::read(self.dir.path().join(f)).unwrap_or_default())
                .collect(),
            Database::Postgres { url } => {
                let out = Command::new("pg_dump")
                    .arg(url)
                    .output()
                    .expect("pg_dump must be installed");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if let Database::Postgres { url } = &self.db
            && let Some((base, name)) = url.rsplit_once('/')
        {
            let _ = Command::new("psql")
                .args([
                    &format!("{base}/postgres"),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
