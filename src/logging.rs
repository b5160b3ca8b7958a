//! Structured logs: human-readable (coloured on a TTY) or JSON lines (`log.format = "json"`),
//! to stderr (journald captures it under systemd). The level can be changed on SIGHUP.
//!
//! Lines are written by a thread of their own (`tracing-appender`), through a buffer flushed
//! whenever no more lines are waiting: a request's access line costs a hand-over, not a write
//! to stderr on the thread that serves it, and a burst of lines goes out in a few writes. No
//! line is dropped (a full queue — [`LINES_QUEUED`] lines — makes the logging thread wait), and
//! the buffer is flushed when the daemon stops ([`LogHandle`] holds the writer's guard). Spans
//! also go to an OpenTelemetry collector when the `OTEL_*` variables ask ([`crate::otel`]).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogConfig, LogFormat};

/// Lines waiting for the writer at most; past that a logging thread waits (no line is lost).
const LINES_QUEUED: usize = 4096;

pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// Span export, when the environment asks for it; flushed when dropped.
    _otel: Option<crate::otel::Otel>,
    /// Flushes what is still queued when dropped.
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.level `{level}`: {reason}")]
    Filter { level: String, reason: String },
    #[error("logging already initialised: {0}")]
    Init(String),
    #[error("span export: {0}")]
    Otel(#[from] crate::otel::OtelError),
}

fn filter(level: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(level).map_err(|e| LogError::Filter {
        level: level.to_owned(),
        reason: e.to_string(),
    })
}

pub fn init(cfg: &LogConfig) -> Result<LogHandle, LogError> {
    let (filter_layer, handle) = reload::Layer::new(filter(&cfg.level)?);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue's slots are allocated (and touched) up front: tracing-appender's default of
        // 128,000 lines is 4 MB of resident memory for a burst nobody logs.
        .buffered_lines_limit(LINES_QUEUED)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let otel = crate::otel::from_env()?;
    let otel_layer = otel
        .as_ref()
        .map(|o| tracing_opentelemetry::layer().with_tracer(o.tracer.clone()));
    let registry = tracing_subscriber::registry()
        .with(filter_layer)
        .with(otel_layer);
    let result = match cfg.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(writer),
            )
            .try_init(),
    };
    result.map_err(|e| LogError::Init(e.to_string()))?;
    Ok(LogHandle {
        filter: handle,
        _otel: otel,
        _writer: guard,
    })
}

impl LogHandle {
    pub fn set_level(&self, level: &str) -> Result<(), LogError> {
        let new = filter(level)?;
        self.filter
            .reload(new)
            .map_err(|e| LogError::Init(e.to_string()))
    }
}
