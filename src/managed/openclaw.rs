//! How an `openclaw` process is started for a managed gateway: the release's entry point under
//! the configured Node, with exactly the environment OpenClaw's external-supervisor contract
//! asks for (`OPENCLAW_SUPERVISOR_MODE=external`, `OPENCLAW_SERVICE_REPAIR_POLICY=external`;
//! never `OPENCLAW_NO_RESPAWN`), and as PID 1 of its own PID namespace (`unshare`): an openclaw
//! 2026.9.6 helper whose parent has exited signals its parent's process group, which after
//! reparenting is `kill(-1, SIGKILL)` — every process of the user, this daemon included
//! (docs/design.md, *Managed gateways*).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::command::{self, Finished, RunError};
use super::handoff;
use super::install::Release;
use super::policy::Handoff;

/// The manager id claimed on each gateway's state (OpenClaw's docs use this very id).
pub const MANAGER_ID: &str = "gateway-supervisor";

/// One gateway's folders: `home/`, `state/`, `openclaw.json`, `run/` (its keeper's).
#[derive(Debug, Clone)]
pub struct GatewayDir(pub PathBuf);

impl GatewayDir {
    pub fn home(&self) -> PathBuf {
        self.0.join("home")
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }
    pub fn config(&self) -> PathBuf {
        self.0.join("openclaw.json")
    }
    pub fn run(&self) -> PathBuf {
        self.0.join("run")
    }
}

/// What an openclaw process of one gateway is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    pub node: PathBuf,
    pub release: Release,
    pub dir: GatewayDir,
    /// `[managed_runtime] env`.
    pub extra_env: BTreeMap<String, String>,
}

/// The `unshare` arguments that work here: a PID namespace with its own /proc (as root), or
/// inside a user namespace too (as another user where unprivileged ones are allowed).
fn unshare_prefix() -> Result<&'static [&'static str], String> {
    static PREFIX: OnceLock<Option<Vec<&'static str>>> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let base = ["--pid", "--fork", "--mount-proc"];
            [
                base.to_vec(),
                [&["--user", "--map-root-user"][..], &base[..]].concat(),
            ]
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
        })
        .as_deref()
        .ok_or_else(|| {
            "openclaw must run in its own PID namespace: `unshare --pid` (util-linux) failed — \
             run as root or allow unprivileged user namespaces"
                .to_owned()
        })
}

impl Launch {
    pub fn env(&self) -> Vec<(String, OsString)> {
        let node_dir = self.node.parent().unwrap_or(Path::new("/"));
        let mut env: Vec<(String, OsString)> = vec![
            (
                "PATH".into(),
                format!("{}:/usr/local/bin:/usr/bin:/bin", node_dir.display()).into(),
            ),
            ("HOME".into(), self.dir.home().into()),
            ("TMPDIR".into(), self.dir.home().into()),
            ("OPENCLAW_STATE_DIR".into(), self.dir.state().into()),
            ("OPENCLAW_CONFIG_PATH".into(), self.dir.config().into()),
            ("OPENCLAW_SUPERVISOR_MODE".into(), "external".into()),
            ("OPENCLAW_SERVICE_REPAIR_POLICY".into(), "external".into()),
        ];
        for (k, v) in &self.extra_env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.into()));
        }
        env
    }

    /// `unshare … node openclaw.mjs <args>`; `kill_child`: the namespace ends with `unshare`
    /// (for CLI calls a timeout kills; never for a gateway, which must outlive its keeper).
    pub fn argv(&self, args: &[&str], kill_child: bool) -> Result<Vec<OsString>, String> {
        let mut argv: Vec<OsString> = vec!["unshare".into()];
        argv.extend(unshare_prefix()?.iter().map(OsString::from));
        if kill_child {
            argv.push("--kill-child=SIGKILL".into());
        }
        argv.push(self.node.clone().into());
        argv.push(self.release.entry().into());
        argv.extend(args.iter().map(OsString::from));
        Ok(argv)
    }

    /// The gateway's own command line.
    pub fn gateway_argv(&self, port: u16) -> Result<Vec<OsString>, String> {
        self.argv(&["gateway", "run", "--port", &port.to_string()], false)
    }

    /// Runs an openclaw CLI command of this gateway to its end (blocking).
    pub fn cli(&self, args: &[&str], timeout: Duration) -> Result<Finished, String> {
        let argv = self.argv(args, true)?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.env())
            .current_dir(&self.dir.0);
        command::run(cmd, timeout).map_err(|e: RunError| e.to_string())
    }

    /// `openclaw database ownership claim --manager gateway-supervisor --json`.
    pub fn claim(&self, timeout: Duration) -> Result<(), String> {
        let out = self.cli(
            &[
                "database",
                "ownership",
                "claim",
                "--manager",
                MANAGER_ID,
                "--json",
            ],
            timeout,
        )?;
        match handoff::ownership_manager(&out.stdout) {
            Some(id) if out.code == Some(0) && id == MANAGER_ID => Ok(()),
            Some(other) => Err(format!(
                "the gateway's state is owned by `{}`",
                gateway_supervisor_actors::bounded::text(&other, 128)
            )),
            None => Err(format!("ownership claim failed: {}", out.last_words())),
        }
    }

    /// `openclaw gateway restart-handoff consume --expected-pid <pid> --json`.
    pub fn consume(&self, expected_pid: u32, timeout: Duration) -> Handoff {
        match self.cli(
            &[
                "gateway",
                "restart-handoff",
                "consume",
                "--expected-pid",
                &expected_pid.to_string(),
                "--json",
            ],
            timeout,
        ) {
            Ok(out) => handoff::consume_answer(out.code, &out.stdout),
            Err(e) => Handoff::Failed { reason: e },
        }
    }
}

impl Launch {
    /// `openclaw database preflight <copy> --json` by this launch's release: whether it would
    /// migrate the copied state (`Ok(true)`), read it as it is (`Ok(false)`), or refuses it.
    pub fn preflight(&self, copy: &Path, timeout: Duration) -> Result<bool, String> {
        let copy = copy.display().to_string();
        let out = self.cli(&["database", "preflight", &copy, "--json"], timeout)?;
        handoff::preflight_answer(out.code, &out.stdout)
    }
}

/// `name` found on PATH, or `name` itself.
pub fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}
