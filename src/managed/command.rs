//! Running a short command with a deadline, keeping the end of its output (a CLI call or an
//! install must not hang a supervisor, nor fill its memory).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output kept per stream: the end of it.
const KEPT: usize = 64 * 1024;

#[derive(Debug)]
pub struct Finished {
    /// `None`: ended by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The last line of stderr (or stdout), bounded: what to tell an operator.
    pub fn last_words(&self) -> String {
        let text = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &self.stderr
        } else {
            &self.stdout
        };
        let text = String::from_utf8_lossy(text);
        let line = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        gateway_supervisor_actors::bounded::text(line.trim(), 400)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {timeout:?} and was killed")]
    Timeout { program: String, timeout: Duration },
}

fn drain(mut from: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * KEPT {
            kept.drain(..kept.len() - KEPT);
        }
    }
    if kept.len() > KEPT {
        kept.drain(..kept.len() - KEPT);
    }
    kept
}

/// Runs `cmd` to its end or until `timeout` (then kills it).
pub fn run(mut cmd: Command, timeout: Duration) -> Result<Finished, RunError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RunError::Start {
            program: program.clone(),
            source,
        })?;
    let out = child
        .stdout
        .take()
        .map(|o| std::thread::spawn(move || drain(o)));
    let err = child
        .stderr
        .take()
        .map(|e| std::thread::spawn(move || drain(e)));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out), collect(err));
    match status {
        Some(status) => Ok(Finished {
            code: status.code(),
            stdout,
            stderr,
        }),
        None => Err(RunError::Timeout { program, timeout }),
    }
}
