//! Releases installed side by side, one folder per version under the releases folder, each a
//! complete `npm install` of `openclaw@<version>` (or of a tarball) — so an upgrade starts the
//! new release beside the old one, and a rollback has the old one still there. An install goes
//! into a fresh temporary folder renamed into place when complete: a half install is never
//! found, and two daemons on one host installing the same version both end with one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::command::{self, RunError};
use super::engines;

/// Where the tools are and how long an install may take.
#[derive(Debug, Clone)]
pub struct Tools {
    pub node: PathBuf,
    pub npm: PathBuf,
    pub releases: PathBuf,
    pub install_timeout: Duration,
}

/// An installed release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub dir: PathBuf,
    /// `engines.node` of its package.json.
    pub engines: Option<String>,
}

impl Release {
    /// The `openclaw` entry point Node runs.
    pub fn entry(&self) -> PathBuf {
        self.dir.join("node_modules/openclaw/openclaw.mjs")
    }
}

/// Where a release comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `openclaw@<version>` from the registry npm is configured for.
    Registry,
    /// A package tarball on this host (`npm pack`'s output).
    Tarball(PathBuf),
}

impl Source {
    pub fn parse(raw: &str) -> Source {
        if raw == "npm" || raw.is_empty() {
            Source::Registry
        } else {
            Source::Tarball(PathBuf::from(raw))
        }
    }

    pub fn as_stored(&self) -> String {
        match self {
            Source::Registry => "npm".into(),
            Source::Tarball(p) => p.display().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("Node.js not found at {path}: set managed_runtime.node ({source})")]
    NodeMissing {
        path: String,
        #[source]
        source: RunError,
    },
    #[error("`{path} --version` printed no version")]
    NodeUnreadable { path: String },
    #[error(
        "openclaw {version} needs Node.js {engines}; {path} is {node}: set managed_runtime.node"
    )]
    NodeTooOld {
        version: String,
        engines: String,
        node: String,
        path: String,
    },
    #[error("npm failed installing openclaw {version}: {detail}")]
    Npm { version: String, detail: String },
    #[error("npm did not finish installing openclaw {version}: {source}")]
    NpmRun {
        version: String,
        #[source]
        source: RunError,
    },
    #[error("the tarball holds openclaw {found}, not {version}")]
    WrongVersion { version: String, found: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn package_json(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(dir.join("node_modules/openclaw/package.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

fn release_at(dir: PathBuf) -> Option<Release> {
    let pkg = package_json(&dir)?;
    Some(Release {
        version: pkg["version"].as_str()?.to_owned(),
        engines: pkg
            .pointer("/engines/node")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        dir,
    })
}

impl Tools {
    fn folder(&self, version: &str) -> PathBuf {
        self.releases.join(version)
    }

    /// The release `version` when it is installed.
    pub fn installed(&self, version: &str) -> Option<Release> {
        release_at(self.folder(version)).filter(|r| r.version == version)
    }

    /// Every installed version.
    pub fn versions(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(&self.releases)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.') && self.installed(name).is_some())
            .collect();
        found.sort();
        found
    }

    /// The Node version `node --version` prints; a clear error when there is no Node there.
    pub fn node_version(&self) -> Result<(String, semver::Version), InstallError> {
        let path = self.node.display().to_string();
        let mut cmd = Command::new(&self.node);
        cmd.arg("--version");
        let out = command::run(cmd, Duration::from_secs(30)).map_err(|source| {
            InstallError::NodeMissing {
                path: path.clone(),
                source,
            }
        })?;
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let node = engines::parse_node_version(&printed)
            .ok_or_else(|| InstallError::NodeUnreadable { path: path.clone() })?;
        Ok((printed, node))
    }

    /// The Node version, checked against `release`'s engines.
    pub fn check_node(&self, release: &Release) -> Result<String, InstallError> {
        let path = self.node.display().to_string();
        let (printed, node) = self.node_version()?;
        if let Some(range) = &release.engines
            && !engines::satisfies(&node, range).unwrap_or(false)
        {
            return Err(InstallError::NodeTooOld {
                version: release.version.clone(),
                engines: range.clone(),
                node: printed,
                path,
            });
        }
        Ok(printed)
    }

    /// Installs `version` from `source` unless it is installed; blocking (minutes).
    pub fn install(
        &self,
        version: &str,
        source: &Source,
        env: &BTreeMap<String, String>,
    ) -> Result<Release, InstallError> {
        if let Some(r) = self.installed(version) {
            self.check_node(&r)?;
            return Ok(r);
        }
        // No Node, no install: said before npm spends minutes.
        self.node_version()?;
        std::fs::create_dir_all(&self.releases).map_err(io(&self.releases))?;
        let tmp = self.releases.join(format!(
            ".{version}.{}.{}",
            std::process::id(),
            super::process::now_ms()
        ));
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let result = self.npm_install(&tmp, version, source, env);
        let outcome = result.and_then(|()| {
            let found = release_at(tmp.clone()).ok_or_else(|| InstallError::Npm {
                version: version.to_owned(),
                detail: "no node_modules/openclaw/package.json after the install".into(),
            })?;
            if found.version != version {
                return Err(InstallError::WrongVersion {
                    version: version.to_owned(),
                    found: gateway_supervisor_actors::bounded::text(&found.version, 64),
                });
            }
            self.check_node(&found)?;
            let dest = self.folder(version);
            // Another daemon may have won the race; then its complete install is used.
            if std::fs::rename(&tmp, &dest).is_err() && self.installed(version).is_none() {
                return Err(InstallError::Io {
                    path: dest.display().to_string(),
                    source: std::io::Error::other("cannot move the install into place"),
                });
            }
            self.installed(version).ok_or_else(|| InstallError::Npm {
                version: version.to_owned(),
                detail: "the installed folder is not a release".into(),
            })
        });
        let _ = std::fs::remove_dir_all(&tmp);
        outcome
    }

    fn npm_install(
        &self,
        into: &Path,
        version: &str,
        source: &Source,
        env: &BTreeMap<String, String>,
    ) -> Result<(), InstallError> {
        std::fs::write(into.join("package.json"), br#"{"private":true}"#).map_err(io(into))?;
        let spec = match source {
            Source::Registry => format!("openclaw@{version}"),
            Source::Tarball(p) => p.display().to_string(),
        };
        // npm runs install scripts with the Node first on PATH: the release's, not the host's
        // (2026.9.6's preinstall refuses Node 20).
        let node_dir = self.node.parent().map(Path::to_owned).unwrap_or_default();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let mut cmd = Command::new(&self.npm);
        cmd.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--omit=dev",
        ])
        .arg(&spec)
        .current_dir(into)
        .envs(env)
        .env("PATH", format!("{}:{path}", node_dir.display()));
        let out =
            command::run(cmd, self.install_timeout).map_err(|source| InstallError::NpmRun {
                version: version.to_owned(),
                source,
            })?;
        if out.code != Some(0) {
            return Err(InstallError::Npm {
                version: version.to_owned(),
                detail: out.last_words(),
            });
        }
        Ok(())
    }
}
