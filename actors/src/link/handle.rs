//! A typed handle on one link: what the rest of the daemon may ask of it. A link that is
//! gone or restarting (its mailbox closed) is simply not connected, so callers see one
//! `CallError::NotConnected` and never an actix `MailboxError`.

use std::time::Duration;

use actix::Addr;
use serde_json::Value;

use super::actor::GatewayActor;
use std::collections::BTreeMap;

use super::activity::SessionActivity;
use super::messages::{
    ActivityNow, Call, CallError, ProbeNow, ProbeResult, ReadyNow, SessionsUnrecovered,
};

/// One mailbox sender on the link (a sender is an allocation per link; a fleet has thousands).
#[derive(Clone)]
pub struct GatewayLink {
    addr: Addr<GatewayActor>,
}

impl GatewayLink {
    pub fn of(addr: &Addr<GatewayActor>) -> Self {
        GatewayLink { addr: addr.clone() }
    }

    /// One RPC over the live socket, answered within `timeout`.
    pub async fn call(
        &self,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.call_on(None, method, params, timeout).await
    }

    /// One RPC, sent only if the socket reaches gateway process `process` (its `bootId`):
    /// otherwise `CallError::AnotherProcess`, and nothing is sent. Made inside an API request,
    /// it carries that request's trace ([`crate::trace`]).
    #[tracing::instrument(name = "gateway.call", skip_all, fields(method))]
    pub async fn call_on(
        &self,
        process: Option<String>,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.addr
            .send(Call {
                method,
                params,
                timeout,
                on_process: process,
                traceparent: crate::trace::for_call(),
            })
            .await
            .unwrap_or(Err(CallError::NotConnected))
    }

    /// Whether the gateway's `/readyz` answers 2xx now (`false` when the link is gone).
    pub async fn ready(&self) -> bool {
        self.addr.send(ReadyNow).await.unwrap_or(false)
    }

    /// What the connection said about its sessions' runs (empty when the link is gone).
    pub async fn activity(&self) -> BTreeMap<String, SessionActivity> {
        self.addr.send(ActivityNow).await.unwrap_or_default()
    }

    /// The watchdog's verdict: `true` reads the gateway `degraded` until cleared.
    pub async fn sessions_unrecovered(&self, unrecovered: bool) {
        let _ = self.addr.send(SessionsUnrecovered(unrecovered)).await;
    }

    /// Probes now; `None` when the link is gone.
    pub async fn probe(&self) -> Option<ProbeResult> {
        self.addr.send(ProbeNow).await.ok()
    }
}
