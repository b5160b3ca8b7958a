//! The one JSON error shape (docs/design.md, *Errors*): `{"error": code, "message": text, "details"?: {...}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use gateway_supervisor_actors::model::GatewayId;
use serde::Serialize;

use crate::auth::{AuthError, Role};
use crate::domain::ApprovalId;
use crate::secrets::SecretsError;
use gateway_supervisor_actors::messages::{CallError, RegistryError};
use gateway_supervisor_actors::primary::PrimaryRuleError;

/// The use cases' errors (approvals, the fleet) as API errors.
mod causes;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("{0}")]
    Unprocessable(String),
    /// An `Idempotency-Key` reused for a different request.
    #[error("{message}")]
    IdempotencyKeyReused {
        message: String,
        spawn_id: crate::domain::SpawnId,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A WebSocket route asked without a (valid) upgrade handshake.
    #[error("this route speaks WebSocket only: {0}")]
    UpgradeRequired(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("{0}")]
    Unauthorized(String),
    #[error("this action requires the {required} role; this key has the {actual} role")]
    Forbidden { required: Role, actual: Role },
    /// The key's scope does not give it the route's verb (docs/design.md, *Tenancy*).
    #[error("this action needs the `{0}` verb, which this key was not given")]
    VerbNotGranted(crate::tenancy::Verb),
    /// An action on gateways, or a route, outside the key's scope (a read of one object out
    /// of scope is its not-found instead: it does not reveal the object exists).
    #[error("{0}")]
    OutOfScope(String),
    /// A cookie-authenticated unsafe request from another origin (or saying none).
    #[error("{0}")]
    CrossOrigin(String),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("gateway {0} not found")]
    GatewayNotFound(GatewayId),
    #[error("method {method} is not allowed on this route (allowed: {allow})")]
    MethodNotAllowed { method: String, allow: String },
    #[error("a gateway named `{0}` already exists")]
    DuplicateName(String),
    /// A session key several gateways have, without `gateway_id` (`details`: the candidates).
    #[error("{message}")]
    AmbiguousSession {
        message: String,
        details: serde_json::Value,
    },
    /// A destructive action decided on one gateway process, while the gateway is now another
    /// (or cannot say which it is): nothing was sent (`details`: the bootIds).
    #[error("{message}")]
    GatewayChanged {
        message: String,
        details: serde_json::Value,
    },
    /// Another gateway already has this address (`details`: which one).
    #[error("{message}")]
    DuplicateAddress {
        message: String,
        details: serde_json::Value,
    },
    #[error("{0}")]
    PrimaryGateway(String),
    /// An agent's daily budget is spent (`details`: agent, day, budget and spend in USD).
    #[error("{message}")]
    BudgetExceeded {
        message: String,
        details: serde_json::Value,
    },
    /// A spend budget of the key or its tenant refuses the run until its window resets
    /// (`details`: which budget, which limit, the ledger; `Retry-After`: the reset).
    #[error("{message}")]
    SpendBudgetExceeded {
        message: String,
        details: serde_json::Value,
        retry_after_secs: u64,
    },
    /// A disruption budget refuses the action now (`details`: which budget).
    #[error("{message}")]
    DisruptionBudget {
        message: String,
        details: serde_json::Value,
        retry_after_secs: u64,
    },
    #[error("rate limit exceeded for {limit}; retry in {retry_after_secs} s")]
    RateLimited {
        limit: &'static str,
        retry_after_secs: u64,
    },
    #[error("session `{0}` not found on any connected gateway")]
    SessionNotFound(String),
    #[error("spawn `{0}` not found")]
    SpawnNotFound(String),
    #[error("agent {0} not found")]
    AgentNotFound(i64),
    #[error("operation `{0}` not found")]
    OperationNotFound(String),
    /// The operation is over (or being cancelled already): nothing to cancel.
    #[error("{0}")]
    OperationOver(String),
    #[error("connection `{0}` not found")]
    ConnectionNotFound(String),
    #[error("approval `{id}` of gateway {gateway_id} not found")]
    ApprovalNotFound {
        gateway_id: GatewayId,
        id: ApprovalId,
    },
    #[error("cron job `{job_id}` of gateway {gateway_id} not found (as its last cron.list said)")]
    CronJobNotFound {
        gateway_id: GatewayId,
        job_id: String,
    },
    #[error("no active API key {0}")]
    KeyNotFound(i64),
    /// A key rotated again while its previous secret is still in its grace.
    #[error("{0}")]
    RotationInGrace(String),
    /// An action on the key that makes the request that would cut it off.
    #[error("{0}")]
    OwnKey(String),
    /// No spend budget for this key or tenant.
    #[error("no spend budget for `{0}`")]
    SpendBudgetNotFound(String),
    /// No disruption budget of this name.
    #[error("no disruption budget named `{0}`")]
    BudgetNotFound(String),
    #[error("no managed gateway with id {0}")]
    ManagedNotFound(GatewayId),
    /// The gateway is a managed one: removed through `DELETE /api/managed/{id}`, which stops
    /// its process too.
    #[error("{0}")]
    ManagedGateway(String),
    /// A managed gateway's port is taken on its host (or none is free in the range).
    #[error("{0}")]
    PortUnavailable(String),
    /// No config profile of this name.
    #[error("no config profile named `{0}`")]
    ProfileNotFound(String),
    /// No cron declaration of this name.
    #[error("no cron declaration named `{0}`")]
    CronDeclarationNotFound(String),
    /// As many cron declarations as are kept.
    #[error("{0}")]
    CronDeclarationsFull(String),
    /// Answered before this answer (here, through another instance, or in another client):
    /// `details` has the recorded decision and who answered.
    #[error("{message}")]
    ApprovalAlreadyResolved {
        message: String,
        details: serde_json::Value,
    },
    /// Expired or cancelled before it was answered (`details`: its status and reason).
    #[error("{message}")]
    ApprovalNotPending {
        message: String,
        details: serde_json::Value,
    },
    /// A decision the gateway did not offer for this approval (`details.offered`).
    #[error("{message}")]
    DecisionNotOffered {
        message: String,
        details: serde_json::Value,
    },
    /// An allow of an approval whose presentation was cut: it can only be denied.
    #[error("{message}")]
    ApprovalNotShownWhole {
        message: String,
        details: serde_json::Value,
    },
    #[error("no healthy gateway can take this: {0}")]
    NoHealthyGateway(String),
    #[error("{message}")]
    UnsupportedAction {
        message: String,
        details: serde_json::Value,
    },
    #[error("{message}")]
    GatewayBusy {
        message: String,
        details: serde_json::Value,
    },
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// The console's single sign-on cannot reach its provider (the log says why).
    #[error("{0}")]
    IdentityProviderUnavailable(String),
    #[error("{0}")]
    VersionTooOld(String),
    #[error("{0}")]
    GatewayUnavailable(String),
    #[error("the gateway refused: {message} ({code})")]
    GatewayRefused { code: String, message: String },
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    NotReady(String),
    /// The cluster instance that links the gateway could not be reached (or the lease moved
    /// while the request was forwarded): nothing was retried; the caller may retry.
    #[error("{message}")]
    OwnerUnavailable {
        message: String,
        instance: String,
        retry_after_secs: u64,
    },
    #[error("storage is unavailable; the daemon's log has the cause")]
    Storage(String),
    /// The database's disk is full (`db::disk`): this write is refused; reads are served.
    #[error(
        "the database's disk is full: writes are refused until space is freed there; reads are still served"
    )]
    StorageFull(String),
    #[error("internal error; the daemon's log has the cause")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: &'static str,
    /// Human-readable explanation.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// The catalogue: every error's stable code and HTTP status, in one place.
    fn catalogue(&self) -> (&'static str, StatusCode) {
        use StatusCode as S;
        match self {
            ApiError::InvalidJson(_) => ("invalid_json", S::BAD_REQUEST),
            ApiError::InvalidRequest { .. } => ("invalid_request", S::BAD_REQUEST),
            ApiError::InvalidField { .. } => ("invalid_field", S::BAD_REQUEST),
            ApiError::PrimaryGateway(_) => ("primary_gateway", S::BAD_REQUEST),
            ApiError::Unauthorized(_) => ("unauthorized", S::UNAUTHORIZED),
            ApiError::Forbidden { .. } => ("forbidden", S::FORBIDDEN),
            ApiError::VerbNotGranted(_) => ("forbidden", S::FORBIDDEN),
            ApiError::OutOfScope(_) => ("out_of_scope", S::FORBIDDEN),
            ApiError::CrossOrigin(_) => ("cross_origin", S::FORBIDDEN),
            ApiError::RouteNotFound(_) => ("not_found", S::NOT_FOUND),
            ApiError::GatewayNotFound(_) => ("gateway_not_found", S::NOT_FOUND),
            ApiError::SessionNotFound(_) => ("session_not_found", S::NOT_FOUND),
            ApiError::SpawnNotFound(_) => ("spawn_not_found", S::NOT_FOUND),
            ApiError::AgentNotFound(_) => ("agent_not_found", S::NOT_FOUND),
            ApiError::OperationNotFound(_) => ("operation_not_found", S::NOT_FOUND),
            ApiError::ConnectionNotFound(_) => ("connection_not_found", S::NOT_FOUND),
            ApiError::ApprovalNotFound { .. } => ("approval_not_found", S::NOT_FOUND),
            ApiError::CronJobNotFound { .. } => ("cron_job_not_found", S::NOT_FOUND),
            ApiError::ProfileNotFound(_) => ("config_profile_not_found", S::NOT_FOUND),
            ApiError::CronDeclarationNotFound(_) => ("cron_declaration_not_found", S::NOT_FOUND),
            ApiError::CronDeclarationsFull(_) => ("cron_declarations_full", S::CONFLICT),
            ApiError::BudgetNotFound(_) => ("budget_not_found", S::NOT_FOUND),
            ApiError::SpendBudgetNotFound(_) => ("spend_budget_not_found", S::NOT_FOUND),
            ApiError::KeyNotFound(_) => ("key_not_found", S::NOT_FOUND),
            ApiError::OwnKey(_) => ("own_key", S::CONFLICT),
            ApiError::RotationInGrace(_) => ("rotation_in_grace", S::CONFLICT),
            ApiError::ManagedNotFound(_) => ("managed_gateway_not_found", S::NOT_FOUND),
            ApiError::PortUnavailable(_) => ("port_unavailable", S::CONFLICT),
            ApiError::ManagedGateway(_) => ("managed_gateway", S::CONFLICT),
            ApiError::ApprovalAlreadyResolved { .. } => ("approval_already_resolved", S::CONFLICT),
            ApiError::ApprovalNotPending { .. } => ("approval_not_pending", S::CONFLICT),
            ApiError::DecisionNotOffered { .. } => ("decision_not_offered", S::CONFLICT),
            ApiError::ApprovalNotShownWhole { .. } => ("approval_not_shown_whole", S::CONFLICT),
            ApiError::MethodNotAllowed { .. } => ("method_not_allowed", S::METHOD_NOT_ALLOWED),
            ApiError::BodyTimeout(_) => ("request_timeout", S::REQUEST_TIMEOUT),
            ApiError::DuplicateName(_) => ("duplicate_name", S::CONFLICT),
            ApiError::DuplicateAddress { .. } => ("duplicate_address", S::CONFLICT),
            ApiError::AmbiguousSession { .. } => ("ambiguous_session", S::CONFLICT),
            ApiError::GatewayChanged { .. } => ("gateway_changed", S::CONFLICT),
            ApiError::UnsupportedAction { .. } => ("unsupported_action", S::CONFLICT),
            ApiError::GatewayBusy { .. } => ("gateway_busy", S::CONFLICT),
            ApiError::OperationOver(_) => ("operation_over", S::CONFLICT),
            ApiError::PayloadTooLarge { .. } => ("payload_too_large", S::PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported_media_type", S::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::Unprocessable(_) => ("unprocessable", S::UNPROCESSABLE_ENTITY),
            ApiError::IdempotencyKeyReused { .. } => {
                ("idempotency_key_reused", S::UNPROCESSABLE_ENTITY)
            }
            ApiError::UpgradeRequired(_) => ("upgrade_required", S::UPGRADE_REQUIRED),
            ApiError::RateLimited { .. } => ("rate_limited", S::TOO_MANY_REQUESTS),
            ApiError::BudgetExceeded { .. } | ApiError::SpendBudgetExceeded { .. } => {
                ("budget_exceeded", S::TOO_MANY_REQUESTS)
            }
            ApiError::DisruptionBudget { .. } => ("disruption_budget", S::TOO_MANY_REQUESTS),
            ApiError::Internal(_) => ("internal", S::INTERNAL_SERVER_ERROR),
            ApiError::BadGateway { code, .. } => (code, S::BAD_GATEWAY),
            ApiError::GatewayRefused { .. } => ("gateway_error", S::BAD_GATEWAY),
            ApiError::IdentityProviderUnavailable(_) => {
                ("identity_provider_unavailable", S::BAD_GATEWAY)
            }
            ApiError::VersionTooOld(_) => ("gateway_version_too_old", S::SERVICE_UNAVAILABLE),
            ApiError::GatewayUnavailable(_) => ("gateway_unavailable", S::SERVICE_UNAVAILABLE),
            ApiError::NoHealthyGateway(_) => ("no_healthy_gateway", S::SERVICE_UNAVAILABLE),
            ApiError::NotReady(_) => ("not_ready", S::SERVICE_UNAVAILABLE),
            ApiError::OwnerUnavailable { .. } => ("owner_unavailable", S::SERVICE_UNAVAILABLE),
            ApiError::Storage(_) => ("storage_unavailable", S::SERVICE_UNAVAILABLE),
            ApiError::StorageFull(_) => ("storage_full", S::SERVICE_UNAVAILABLE),
            ApiError::GatewayTimeout(_) => ("gateway_timeout", S::GATEWAY_TIMEOUT),
        }
    }

    pub fn code(&self) -> &'static str {
        self.catalogue().0
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            ApiError::InvalidRequest {
                field: Some(field), ..
            }
            | ApiError::InvalidField { field, .. } => Some(serde_json::json!({ "field": field })),
            ApiError::Forbidden { required, .. } => {
                Some(serde_json::json!({ "required_role": required }))
            }
            ApiError::VerbNotGranted(verb) => Some(serde_json::json!({ "required_verb": verb })),
            ApiError::RateLimited {
                limit,
                retry_after_secs,
            } => Some(serde_json::json!({ "limit": limit, "retry_after_secs": retry_after_secs })),
            ApiError::PayloadTooLarge { limit } => {
                Some(serde_json::json!({ "limit_bytes": limit }))
            }
            ApiError::OwnerUnavailable {
                instance,
                retry_after_secs,
                ..
            } => Some(
                serde_json::json!({ "instance": instance, "retry_after_secs": retry_after_secs }),
            ),
            ApiError::UnsupportedAction { details, .. }
            | ApiError::GatewayBusy { details, .. }
            | ApiError::DuplicateAddress { details, .. }
            | ApiError::AmbiguousSession { details, .. }
            | ApiError::GatewayChanged { details, .. }
            | ApiError::ApprovalAlreadyResolved { details, .. }
            | ApiError::ApprovalNotPending { details, .. }
            | ApiError::DecisionNotOffered { details, .. }
            | ApiError::ApprovalNotShownWhole { details, .. }
            | ApiError::BudgetExceeded { details, .. }
            | ApiError::SpendBudgetExceeded { details, .. }
            | ApiError::DisruptionBudget { details, .. } => Some(details.clone()),
            ApiError::GatewayRefused { code, .. } => {
                Some(serde_json::json!({ "gateway_code": code }))
            }
            ApiError::IdempotencyKeyReused { spawn_id, .. } => {
                Some(serde_json::json!({ "spawn_id": spawn_id }))
            }
            _ => None,
        }
    }

    /// Refusals that can come before the body was read.
    fn refused_before_the_body(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized(_)
                | ApiError::Forbidden { .. }
                | ApiError::VerbNotGranted(_)
                | ApiError::OutOfScope(_)
                | ApiError::CrossOrigin(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::BodyTimeout(_)
                | ApiError::UnsupportedMediaType(_)
                | ApiError::RouteNotFound(_)
                | ApiError::MethodNotAllowed { .. }
                | ApiError::RateLimited { .. }
        )
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl ApiError {
    /// A storage failure, from its cause's text: a full disk is told apart (`storage_full`),
    /// whatever layers its cause passed through.
    pub fn storage(cause: String) -> ApiError {
        if crate::db::disk::is_full(&cause) {
            ApiError::StorageFull(cause)
        } else {
            ApiError::Storage(cause)
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.catalogue().1
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Storage(cause) | ApiError::Internal(cause) = self {
            tracing::error!(code = self.code(), %cause, "request failed");
        }
        if let ApiError::StorageFull(cause) = self {
            let (path, free_bytes) = crate::db::disk::location_and_free();
            tracing::error!(
                code = self.code(),
                path = path.as_deref().unwrap_or("(the database server's)"),
                free_bytes,
                %cause,
                "write refused: the database's disk is full; free space there"
            );
        }
        let mut resp = HttpResponse::build(self.status_code());
        if self.refused_before_the_body() {
            // The body may still be arriving (or never end): close rather than drain it, so a
            // refused client cannot hold the connection.
            resp.force_close();
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        }
        | ApiError::OwnerUnavailable {
            retry_after_secs, ..
        }
        | ApiError::DisruptionBudget {
            retry_after_secs, ..
        }
        | ApiError::SpendBudgetExceeded {
            retry_after_secs, ..
        } = self
        {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            resp.insert_header((header::ALLOW, value));
        }
        if let ApiError::UpgradeRequired(_) = self {
            // RFC 9110 §15.5.22: a 426 names the protocol to switch to.
            resp.insert_header((header::UPGRADE, HeaderValue::from_static("websocket")));
            resp.insert_header((header::CONNECTION, HeaderValue::from_static("upgrade")));
        }
        if let ApiError::Unauthorized(_) = self {
            resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        resp.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
            details: self.details(),
        })
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing
            | AuthError::Invalid
            | AuthError::NotLookedUp
            | AuthError::MalformedAuthorization
            | AuthError::TwoKeys => ApiError::Unauthorized(err.to_string()),
            AuthError::Store(e) => ApiError::storage(e.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::NotFound(id) => ApiError::GatewayNotFound(id),
            RegistryError::DuplicateName(name) => ApiError::DuplicateName(name),
            ref e @ RegistryError::DuplicateAddress {
                id,
                ref name,
                ref host,
                port,
            } => ApiError::DuplicateAddress {
                message: e.to_string(),
                details: serde_json::json!({"gateway_id": id, "gateway": name, "host": host, "port": port}),
            },
            RegistryError::Primary(
                rule @ (PrimaryRuleError::DeletePrimary | PrimaryRuleError::UnsetPrimary),
            ) => ApiError::PrimaryGateway(rule.to_string()),
            RegistryError::Labels(e) => ApiError::field("labels", e.to_string()),
            e @ RegistryError::Store(_) => ApiError::storage(e.to_string()),
            e @ RegistryError::Interrupted(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A failed call to a gateway, as the API reports it.
pub fn call_error(err: CallError, gateway: &str) -> ApiError {
    match err {
        CallError::NotConnected => {
            ApiError::GatewayUnavailable(format!("gateway `{gateway}` is not connected"))
        }
        CallError::Timeout(d) => {
            ApiError::GatewayTimeout(format!("gateway `{gateway}` did not answer within {d:?}"))
        }
        CallError::Gateway(e) => ApiError::GatewayRefused {
            code: e.code,
            message: e.message,
        },
        ref e @ CallError::AnotherProcess {
            ref expected,
            ref now,
        } => ApiError::GatewayChanged {
            message: format!("gateway `{gateway}`: {e}; nothing was sent"),
            details: serde_json::json!({"expected_boot_id": expected, "boot_id": now}),
        },
    }
}

impl From<crate::fleet_config::ConfigError> for ApiError {
    fn from(err: crate::fleet_config::ConfigError) -> Self {
        use crate::fleet_config::ConfigError as C;
        match err {
            C::Invalid(i) => ApiError::field(i.field, i.message),
            C::NotFound(name) => ApiError::ProfileNotFound(name),
            C::Storage(e) => ApiError::storage(e.to_string()),
            C::Fleet(e) => e.into(),
            C::OperationNotFound(id) => ApiError::OperationNotFound(id),
            C::NotSteerable(message) => ApiError::OperationOver(message),
        }
    }
}

impl From<SecretsError> for ApiError {
    fn from(err: SecretsError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

impl From<crate::gateway_reads::ReadError> for ApiError {
    fn from(err: crate::gateway_reads::ReadError) -> Self {
        match err {
            crate::gateway_reads::ReadError::Registry(e) => e.into(),
            crate::gateway_reads::ReadError::Store(e) => ApiError::storage(e.to_string()),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        ApiError::NotReady(format!("registry unavailable: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn bodies_are_json_with_stable_codes() {
        let err = ApiError::field("port", "port must be between 1 and 65535");
        let resp = err.error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(resp.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_field");
        assert_eq!(body["details"]["field"], "port");
        assert!(body["message"].as_str().unwrap().contains("65535"));
    }

    #[actix_web::test]
    async fn rate_limits_carry_retry_after() {
        let resp = ApiError::RateLimited {
            limit: "gateway operations",
            retry_after_secs: 3,
        }
        .error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "3");
    }

    #[actix_web::test]
    async fn storage_errors_do_not_leak_their_cause() {
        let resp = ApiError::Storage("disk I/O error at /secret/path".into()).error_response();
        let body = to_bytes(resp.into_body()).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("/secret/path"));
    }
}
