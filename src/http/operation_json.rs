//! An operation as the API shows it (`/api/operations`, `/api/config/rollouts`): its JSON, the
//! document's flat description of a gateway's step, and the 202 that starts one.

use actix_web::HttpResponse;
use actix_web::http::header::LOCATION;
use gateway_supervisor_actors::model::GatewayId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::operations::Operation;
use crate::domain::OperationId;
use crate::fleet::operation::model::{
    GatewayProgress, OperationKind, OperationState, ParamsRecord,
};

#[derive(Serialize, ToSchema)]
pub struct OperationJson {
    /// `op_` and 24 hex digits.
    #[schema(value_type = String)]
    pub id: OperationId,
    pub kind: OperationKind,
    pub state: OperationState,
    pub params: ParamsRecord,
    /// Each gateway's step, in the order they are taken.
    #[schema(value_type = Vec<GatewayProgressSchema>)]
    pub gateways: Vec<GatewayProgress>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Why it stopped where it did (a config rollout that failed or was put back), when it
    /// needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<Operation> for OperationJson {
    fn from(op: Operation) -> Self {
        OperationJson {
            id: op.id,
            kind: op.kind,
            state: op.state,
            params: op.params.record(),
            gateways: op.progress,
            created_by: op.created_by,
            created_at: op.created_at,
            updated_at: op.updated_at,
            finished_at: op.finished_at,
            detail: op.detail,
        }
    }
}

/// One gateway of an operation as the document describes it: flat, `step` naming the step and
/// the step's own fields beside it (present for the steps that have them). The stored type
/// flattens a tagged enum, which a schema can only say as an `allOf` over a `oneOf` — and
/// generated clients (openapi-python-client) dropped every operation response over it.
#[derive(ToSchema)]
#[allow(dead_code)] // read by the OpenAPI document only
pub struct GatewayProgressSchema {
    pub gateway_id: GatewayId,
    pub step: StepName,
    /// `draining`: the request the gateway deduplicates the drain by.
    pub request_id: Option<String>,
    /// `draining`, `restarting`: the suspension, once the gateway gave one.
    pub suspension_id: Option<String>,
    /// `draining`, `restarting`, `returning`, `updating`, `swapping`: when the step began
    /// (Unix ms).
    pub since_ms: Option<i64>,
    /// `restarting`: asked past the gateway's active-work deferral.
    pub forced: Option<bool>,
    /// `updating`: the gateway's id for the update, once given.
    pub run_id: Option<String>,
    /// `baking`: when the canary's bake ends (Unix ms).
    pub until_ms: Option<i64>,
    /// `writing`, `reverting`: writes that lost a race to another writer so far.
    pub attempts: Option<u32>,
    /// `writing`, `reverting`: not before then (Unix ms; paced under the gateway's limit).
    pub not_before_ms: Option<i64>,
    /// `settling`: healthy since then (Unix ms); absent while it is not.
    pub healthy_since_ms: Option<i64>,
    /// A config rollout wrote to it (a revert puts it back).
    pub written: Option<bool>,
    /// The paths the gateway said the rollout's write changed.
    pub changed_paths: Option<Vec<String>>,
    /// A managed gateway's swap failed and its previous release runs again on its restored
    /// state (the operation ends `reverted`).
    pub rolled_back: Option<bool>,
    pub boot_id_before: Option<String>,
    pub boot_id_after: Option<String>,
    pub canary: bool,
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    /// What it is waiting for, or why it failed.
    pub detail: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The runs holding its drain, while it drains.
    pub blocking_runs: Option<Vec<crate::fleet::operation::model::BlockingRun>>,
    pub abort_runs_asked_at: Option<i64>,
    pub runs_aborted_at: Option<i64>,
}

/// A gateway's step in an operation.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // read by the OpenAPI document only
pub enum StepName {
    Pending,
    Admitted,
    Draining,
    Restarting,
    Returning,
    Updating,
    Swapping,
    Baking,
    Writing,
    Applying,
    Settling,
    Reverting,
    Reverted,
    Done,
    Failed,
    Skipped,
}

#[derive(Serialize, ToSchema)]
pub struct OperationEnvelope {
    pub operation: OperationJson,
}

#[derive(Serialize, ToSchema)]
pub struct OperationList {
    /// Newest first.
    pub operations: Vec<OperationJson>,
}

pub fn accepted(op: Operation) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/operations/{}", op.id)))
        .json(OperationEnvelope {
            operation: op.into(),
        })
}
