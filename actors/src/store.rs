//! The storage the registry writes through. The daemon implements it over diesel; the actor
//! calls it from a blocking thread, never on its own.

use crate::model::{Caller, GatewayId, GatewayPatch, GatewayRecord, NewGateway};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("gateway {0} not found")]
    NotFound(GatewayId),
    #[error("a gateway named `{0}` already exists")]
    DuplicateName(String),
    #[error("storage failed: {0}")]
    Backend(String),
}

/// Every mutation writes its audit row in the same transaction as the change itself.
pub trait GatewayStore: Send + Sync + 'static {
    fn load_gateways(&self) -> Result<Vec<GatewayRecord>, StoreError>;

    /// Inserts; when `new.is_primary`, the previous primary is unset in the same transaction.
    fn insert_gateway(&self, new: &NewGateway, by: &Caller) -> Result<GatewayRecord, StoreError>;

    /// Applies the patch; `is_primary: Some(true)` unsets the previous primary in the same
    /// transaction.
    fn update_gateway(
        &self,
        id: GatewayId,
        patch: &GatewayPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError>;

    fn delete_gateway(&self, id: GatewayId, by: &Caller) -> Result<(), StoreError>;
}
