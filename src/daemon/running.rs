//! What a started daemon holds while it runs: read by the serve loop ([`super::run`]) and
//! replaced piece by piece by a reload ([`super::reload`]).

use std::path::PathBuf;

use crate::config::{Config, FlagOverrides};
use crate::http::AppState;
use crate::logging::LogHandle;

pub(super) struct Running {
    pub(super) config_file: Option<PathBuf>,
    pub(super) flags: FlagOverrides,
    pub(super) cfg: Config,
    pub(super) log: LogHandle,
    pub(super) state: AppState,
    pub(super) listeners: Listeners,
    /// In a cluster: the events this instance publishes, for the database.
    pub(super) event_outbox:
        Option<tokio::sync::mpsc::Receiver<gateway_supervisor_actors::events::Event>>,
    /// The background loops: some started while building (the managed gateways'), the rest
    /// when serving begins; stopped together.
    pub(super) background: super::background::Background,
    /// What the links hear about approvals, for the inbox.
    pub(super) approval_news: Option<
        tokio::sync::mpsc::Receiver<gateway_supervisor_actors::link::messages::ApprovalReport>,
    >,
}

/// Listening sockets bound before anything else starts.
pub(super) struct Listeners {
    /// Taken when the server starts.
    pub(super) http: Option<std::net::TcpListener>,
    pub(super) metrics: Option<std::net::TcpListener>,
}
