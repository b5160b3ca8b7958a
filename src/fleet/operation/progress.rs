//! The one payload of an `operation.progress` event ([`ProgressEvent`], in `domain/`), whatever
//! the kind: made here for the engine and for an operation's start, read typed by the alerts, shown as it is by the event
//! stream and the console. Three shapes of one type: a start or a change of state (with the
//! operation's `detail`, and every gateway once it is over), and one gateway's step.

use super::model::{GatewayProgress, ProgressEvent};
use crate::db::operations::Operation;
use gateway_supervisor_actors::events::{EventBus, EventKind};

impl ProgressEvent {
    /// The operation's start or a change of its state.
    pub fn state(op: &Operation) -> Self {
        ProgressEvent {
            operation_id: op.id.clone(),
            kind: op.kind,
            state: op.state,
            detail: op.detail.clone(),
            gateway: None,
            gateways: (!op.state.is_live()).then(|| op.progress.clone()),
        }
    }

    /// Gateway `p`'s step moved.
    pub fn gateway(op: &Operation, p: &GatewayProgress) -> Self {
        ProgressEvent {
            operation_id: op.id.clone(),
            kind: op.kind,
            state: op.state,
            detail: None,
            gateway: Some(p.clone()),
            gateways: None,
        }
    }

    pub fn publish(&self, events: &EventBus) {
        let gateway_id = self.gateway.as_ref().map(|g| g.gateway_id);
        match serde_json::to_value(self) {
            Ok(payload) => {
                events.publish(EventKind::OperationProgress, gateway_id, payload);
            }
            Err(e) => tracing::error!(%e, "an operation's progress did not serialize"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operation::{OperationKind, OperationState};
    use gateway_supervisor_actors::model::GatewayId;

    fn op(state: OperationState) -> Operation {
        Operation {
            id: "op_1".to_owned().into(),
            kind: OperationKind::ConfigRollout,
            state,
            params: crate::fleet::operation::test_builder::params(),
            progress: vec![GatewayProgress::pending(GatewayId(3))],
            created_by: "k".into(),
            api_key_id: None,
            created_at: 0,
            updated_at: 0,
            finished_at: None,
            version: 1,
            detail: Some("gateway 3 failed: x".into()),
        }
    }

    /// Every kind's end carries its gateways and its detail (a rollout's end carried no
    /// gateways, an operation's no detail).
    #[test]
    fn an_operation_s_end_carries_its_state_detail_and_every_gateway_and_reads_back() {
        let ended = ProgressEvent::state(&op(OperationState::Failed));
        let payload = serde_json::to_value(&ended).unwrap();
        assert_eq!(payload["state"], "failed");
        assert_eq!(payload["kind"], "config_rollout");
        assert_eq!(payload["detail"], "gateway 3 failed: x");
        assert_eq!(payload["gateways"][0]["gateway_id"], 3);
        assert_eq!(ProgressEvent::read(&payload), Some(ended));
    }

    #[test]
    fn a_live_state_names_no_gateways_and_a_step_names_its_gateway_only() {
        let running = op(OperationState::Running);
        let payload = serde_json::to_value(ProgressEvent::state(&running)).unwrap();
        assert!(payload.get("gateways").is_none(), "{payload}");
        let step =
            serde_json::to_value(ProgressEvent::gateway(&running, &running.progress[0])).unwrap();
        assert_eq!(step["gateway"]["step"], "pending");
        assert!(step.get("detail").is_none() && step.get("gateways").is_none());
    }
}
