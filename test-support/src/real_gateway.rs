//! Runs a real OpenClaw gateway (Node + openclaw from `e2e/openclaw/install.sh [VERSION]`) on
//! loopback with an offline configuration. Shared by the end-to-end test and the benchmark.
//! Older releases differ: their configuration has no `models.catalogRefresh` (before 2026.8),
//! and their HTTP side cannot say they are ready (before 2026.3 every path is the Control UI
//! page; 2026.3.31 answers every path with 500), so readiness is also a WebSocket that sends
//! `connect.challenge`.
//!
//! Every openclaw process (gateway and CLI) runs as PID 1 of its own PID namespace. Why: an
//! openclaw 2026.9.6 helper whose parent has exited signals its parent's process group, and once
//! it is reparented to init that is `kill(-1, SIGKILL)`: every process the user may signal dies
//! (observed under strace; as root it took down the test runner, the shell and CI). Inside its
//! own namespace such a signal reaches only that openclaw's own processes, and when the
//! namespace's PID 1 exits the kernel reaps whatever it left behind.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use gateway_supervisor_actors::protocol::version::calver;

pub const READY_BUDGET: Duration = Duration::from_secs(240);

/// Whether `GET /readyz` on 127.0.0.1:`port` answers 200.
pub fn ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    s.read(&mut buf)
        .map(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
        .unwrap_or(false)
}

/// Whether a WebSocket upgrade on 127.0.0.1:`port` is answered with `connect.challenge`.
pub fn accepting(port: u16) -> bool {
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok((mut ws, _)) = tungstenite::client::client(format!("ws://127.0.0.1:{port}/"), stream)
    else {
        return false;
    };
    let challenged =
        matches!(ws.read(), Ok(tungstenite::Message::Text(t)) if t.contains("connect.challenge"));
    let _ = ws.close(None);
    challenged
}

pub struct RealGateway {
    pub dir: tempfile::TempDir,
    install: PathBuf,
    /// The installed openclaw release, e.g. `2026.9.6`.
    pub version: String,
    pub port: u16,
    bind: Option<String>,
    token: String,
    child: Option<Child>,
    /// A fake OpenAI-compatible model for agent runs (`http://127.0.0.1:PORT/v1`).
    pub model_url: Option<String>,
    /// Merged over the configuration the harness writes ([`RealGateway::with_config`]).
    extra: Value,
}

impl RealGateway {
    pub fn new(install: &Path, port: u16, token: &str, bind: Option<&str>) -> RealGateway {
        let manifest = install.join("oc/node_modules/openclaw/package.json");
        let version = fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{} is not an openclaw install", manifest.display()));
        let g = RealGateway {
            dir: tempfile::tempdir().unwrap(),
            install: install.to_owned(),
            version,
            port,
            bind: bind.map(str::to_owned),
            token: token.to_owned(),
            child: None,
            model_url: None,
            extra: Value::Null,
        };
        fs::create_dir_all(g.dir.path().join("home")).unwrap();
        fs::create_dir_all(g.dir.path().join("state")).unwrap();
        g.write_config();
        g
    }

    fn write_config(&self) {
        let mut gateway = json!({"mode": "local", "port": self.port, "bind": "loopback", "auth": {"mode": "token", "token": self.token}});
        if let Some(ip) = &self.bind {
            gateway["bind"] = json!("custom");
            gateway["customBindHost"] = json!(ip);
        }
        let mut cfg = json!({
            "gateway": gateway,
            "update": {"checkOnStart": false},
            "models": {"catalogRefresh": {"enabled": false}},
            "logging": {"file": self.dir.path().join("openclaw.log")},
            "agents": {"defaults": {"heartbeat": {"every": "0m"}}},
        });
        // Unknown (and refused) before 2026.8.
        if calver(&self.version).is_some_and(|v| v < (2026, 8, 0, 0))
            && let Some(cfg) = cfg.as_object_mut()
        {
            cfg.remove("models");
        }
        if let Some(url) = &self.model_url {
            cfg["agents"]["defaults"]["model"] = json!({"primary": "fake/slow-model"});
            cfg["models"]["mode"] = json!("merge");
            cfg["models"]["providers"] = json!({"fake": {
                "baseUrl": url, "apiKey": "fake-local", "api": "openai-completions",
                "models": [{"id": "slow-model", "name": "Slow fake", "reasoning": false, "input": ["text"],
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                            "contextWindow": 128000, "maxTokens": 4096}],
            }});
        }
        merge(&mut cfg, &self.extra);
        // Written whole and renamed, so the gateway's hot reload never sees half a file.
        let tmp = self.dir.path().join("openclaw.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        fs::rename(&tmp, self.dir.path().join("openclaw.json")).unwrap();
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = contained();
        cmd.arg(self.install.join("node/node_modules/.bin/node"));
        cmd.env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/bin:/bin",
                    self.install.join("node/node_modules/.bin").display()
                ),
            )
            .env("HOME", d.join("home"))
            .env("TMPDIR", d.join("home"))
            .env("OPENCLAW_STATE_DIR", d.join("state"))
            .env("OPENCLAW_CONFIG_PATH", d.join("openclaw.json"))
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .env("OPENCLAW_NO_RESPAWN", "1")
            .env("OPENCLAW_SKIP_CHANNELS", "1")
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_EXEC_SHELL_SNAPSHOT", "0")
            .current_dir(d)
            .arg(self.install.join("oc/node_modules/openclaw/openclaw.mjs"));
        cmd
    }

    pub fn start(&mut self) {
        let log = fs::File::create(self.dir.path().join("stdout.log")).unwrap();
        let mut cmd = self.command();
        cmd.args(["gateway", "run", "--port", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().expect("start openclaw"));
    }

    /// The running gateway's `unshare` (as seen from here), whose death kills the gateway:
    /// `None` when it is not running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn wait_ready(&mut self) {
        let port = self.port;
        let child = self.child.as_mut().expect("started");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("openclaw on {port} exited with {status}");
            }
            if ready(port) || accepting(port) {
                return;
            }
            assert!(
                started.elapsed() < READY_BUDGET,
                "openclaw on {port} not ready after {READY_BUDGET:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to the gateway (PID 1 of its namespace, the child of `unshare`), then wait for
    /// the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let gateway = namespace_init(child.id());
            let _ = Command::new("kill")
                .args(["-TERM", &gateway.to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "openclaw did not exit after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILL to the gateway's PID namespace (its PID 1, and so every process in it): a crash,
    /// nothing drained or saved on the way out.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let gateway = namespace_init(child.id());
            let _ = Command::new("kill")
                .args(["-KILL", &gateway.to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Writes `dir/openclaw`: a script that runs this gateway's `openclaw` CLI (its own PID
    /// namespace, its state and configuration), for a recipe of docs/operations.md run as written.
    pub fn cli_script(&self, dir: &Path) -> std::path::PathBuf {
        let cmd = self.command();
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
        let envs: Vec<String> = cmd
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), quote(v))))
            .collect();
        let args: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(quote)
            .collect();
        let cwd = cmd
            .get_current_dir()
            .map(|d| quote(d.as_os_str()))
            .unwrap_or_default();
        let script = format!(
            "#!/bin/sh\ncd {cwd} && exec env -i {} {} \"$@\"\n",
            envs.join(" "),
            args.join(" ")
        );
        let path = dir.join("openclaw");
        fs::write(&path, script).unwrap();
        let mut perms = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(&path, perms).unwrap();
        path
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openclaw {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("openclaw gateway call {method}: {e}"))
    }

    /// `method` through `openclaw gateway call`: its JSON answer, or what the CLI printed when
    /// the gateway refused it.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let out = self
            .command()
            .args([
                "gateway",
                "call",
                method,
                "--params",
                &params.to_string(),
                "--json",
            ])
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() {
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out.stdout)))
        } else {
            Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
        }
    }

    pub fn devices(&self) -> Value {
        serde_json::from_slice(&self.cli(&["devices", "list", "--json"]).stdout).unwrap()
    }

    /// Merges `patch` into the gateway's configuration (a JSON merge patch; rewrites the file:
    /// call before `start`).
    pub fn with_config(&mut self, patch: Value) {
        merge(&mut self.extra, &patch);
        self.write_config();
    }

    /// Points agent runs at a fake model (rewrites the config; call before `start`).
    pub fn use_model(&mut self, url: &str) {
        self.model_url = Some(url.to_owned());
        self.write_config();
    }

    pub fn rotate_token(&mut self, token: &str) {
        self.token = token.to_owned();
        self.write_config();
    }
}

impl Drop for RealGateway {
    fn drop(&mut self) {
        // `--kill-child` passes the SIGKILL on to the namespace's PID 1, and its exit ends the
        // rest of the namespace.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `unshare` with a new PID namespace (and a /proc of it, so openclaw's /proc lookups see its
/// own PIDs); user namespace too when not root. Panics when neither works: running openclaw
/// uncontained can kill every process of the user (see the module comment).
fn contained() -> Command {
    static PREFIX: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let base = ["--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc"];
        let candidates: [Vec<&str>; 2] = [
            base.to_vec(),
            [&["--user", "--map-root-user"][..], &base[..]].concat(),
        ];
        candidates
            .into_iter()
            .find(|args| {
                Command::new("unshare")
                    .args(args)
                    .arg("true")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect(
                "openclaw must run in its own PID namespace (`unshare --pid`, util-linux), as root \
                 or with unprivileged user namespaces enabled",
            )
    });
    let mut cmd = Command::new("unshare");
    cmd.args(prefix);
    cmd
}

/// The PID (as seen from here) of the process `unshare` forked into the new namespace.
fn namespace_init(unshare: u32) -> u32 {
    let started = Instant::now();
    loop {
        let children = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "unshare {unshare} has no child"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// RFC 7396 merge of `patch` into `target`.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        if !patch.is_null() {
            *target = patch.clone();
        }
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}
