//! A typed handle on one link: what the rest of the daemon may ask of it. A link that is
//! gone or restarting (its mailbox closed) is simply not connected, so callers see one
//! `CallError::NotConnected` and never an actix `MailboxError`.

use std::time::Duration;

use actix::{Addr, Recipient};
use serde_json::Value;

use super::actor::GatewayActor;
use super::messages::{Call, CallError, ProbeNow, ProbeResult};

#[derive(Clone)]
pub struct GatewayLink {
    call: Recipient<Call>,
    probe: Recipient<ProbeNow>,
}

impl GatewayLink {
    pub fn of(addr: &Addr<GatewayActor>) -> Self {
        GatewayLink {
            call: addr.clone().recipient(),
            probe: addr.clone().recipient(),
        }
    }

    /// One RPC over the live socket, answered within `timeout`.
    pub async fn call(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.call
            .send(Call {
                method: method.to_owned(),
                params,
                timeout,
            })
            .await
            .unwrap_or(Err(CallError::NotConnected))
    }

    /// Probes now; `None` when the link is gone.
    pub async fn probe(&self) -> Option<ProbeResult> {
        self.probe.send(ProbeNow).await.ok()
    }
}
