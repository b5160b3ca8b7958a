//! Suspend, resume and restart a whole gateway with its own methods
//! (`gateway.suspend.prepare`, `gateway.suspend.resume`, `gateway.restart.request`). A gateway's
//! refusal (busy with active work) is `FleetError::Busy` with its reasons.

use gateway_supervisor_actors::events::EventKind;
use serde_json::{Value, json};

use super::{Fleet, FleetError};
use crate::secrets::random_hex;
use gateway_supervisor_actors::model::{Caller, GatewayId};

impl Fleet {
    fn suspensions(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<GatewayId, String>> {
        self.suspensions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Suspends the gateway; remembers its suspension id for [`Fleet::resume`].
    pub async fn suspend(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        // The gateway deduplicates suspensions by this id.
        let request_id = random_hex::<16>().map_err(FleetError::Random)?;
        let answer = self
            .call(
                id,
                "gateway.suspend.prepare",
                json!({"requestId": request_id}),
            )
            .await?;
        if answer.get("status").and_then(Value::as_str) == Some("busy") {
            let reason = answer
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("busy");
            return Err(FleetError::Busy {
                message: format!("gateway {id} refused to suspend: {reason}"),
                details: answer,
            });
        }
        if let Some(sid) = answer.get("suspensionId").and_then(Value::as_str) {
            self.suspensions().insert(id, sid.to_owned());
        }
        self.audited(
            by,
            "gateway.suspend",
            ("gateway", id.to_string()),
            json!({"request_id": request_id}),
        )
        .await;
        self.events.publish(
            EventKind::GatewayStatus,
            Some(id),
            json!({"suspension": "prepared"}),
        );
        Ok(answer)
    }

    /// Resumes a gateway this daemon suspended.
    pub async fn resume(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        let sid = self.suspensions().get(&id).cloned();
        let sid = sid.ok_or_else(|| FleetError::Busy {
            message: format!("gateway {id} has no suspension made through this daemon to resume"),
            details: json!({"gateway_id": id}),
        })?;
        let answer = self
            .call(id, "gateway.suspend.resume", json!({"suspensionId": sid}))
            .await?;
        self.suspensions().remove(&id);
        self.audited(by, "gateway.resume", ("gateway", id.to_string()), json!({}))
            .await;
        self.events.publish(
            EventKind::GatewayStatus,
            Some(id),
            json!({"suspension": "resumed"}),
        );
        Ok(answer)
    }

    /// Asks the gateway to restart itself; `by` is named in the gateway's own log and audited.
    pub async fn restart(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        let reason = format!("requested through gateway-supervisor by {}", by.label);
        let answer = self
            .call(id, "gateway.restart.request", json!({"reason": reason}))
            .await?;
        if answer.get("ok").and_then(Value::as_bool) == Some(false) {
            return Err(FleetError::Busy {
                message: format!("gateway {id} refused to restart"),
                details: answer,
            });
        }
        self.audited(
            by,
            "gateway.restart",
            ("gateway", id.to_string()),
            json!({}),
        )
        .await;
        Ok(answer)
    }
}
