//! Messages that cross actors or come from the HTTP front-end.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Message;

use crate::model::{Caller, GatewayId, GatewayPatch, GatewayStatus, GatewayView, NewGateway};
use crate::primary::PrimaryRuleError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("gateway {0} not found")]
    NotFound(GatewayId),
    #[error("a gateway named `{0}` already exists")]
    DuplicateName(String),
    #[error(transparent)]
    Primary(#[from] PrimaryRuleError),
    #[error("storage failed: {0}")]
    Store(String),
}

impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(id) => RegistryError::NotFound(id),
            StoreError::DuplicateName(name) => RegistryError::DuplicateName(name),
            StoreError::Backend(msg) => RegistryError::Store(msg),
        }
    }
}

/// All gateways, primary first, then by name. A shared snapshot: cheap to hand out.
#[derive(Message)]
#[rtype(result = "Arc<Vec<GatewayView>>")]
pub struct ListGateways;

#[derive(Message)]
#[rtype(result = "Option<GatewayView>")]
pub struct GetGateway(pub GatewayId);

#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct CreateGateway {
    pub new: NewGateway,
    pub by: Caller,
}

#[derive(Message)]
#[rtype(result = "Result<GatewayView, RegistryError>")]
pub struct UpdateGateway {
    pub id: GatewayId,
    pub patch: GatewayPatch,
    pub by: Caller,
}

#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct DeleteGateway {
    pub id: GatewayId,
    pub by: Caller,
}

/// Gateway counts by status (every status present, zero included) for metrics.
#[derive(Message)]
#[rtype(result = "BTreeMap<GatewayStatus, usize>")]
pub struct CountByStatus;

/// Answered as soon as the actor runs its mailbox: the watchdog's proof of life.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;
