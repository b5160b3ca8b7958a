//! A gateway row as the record the registry and readers hold: with its tokens decrypted (an
//! instance that links it, or one daemon alone), or sealed — not even decrypted — for a reader
//! on an instance that does not (docs/design.md, *Cluster*, "Secrets stay with the owner").

use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::model::{
    GatewayId, GatewayRecord, GatewayStatus, Maintenance, Secrets,
};
use gateway_supervisor_actors::store::StoreError;
use secrecy::SecretString;

use super::GatewayRow;
use super::tokens::{self, Address, Token};
use crate::db::Store;

impl GatewayRow {
    pub(crate) fn id(&self) -> GatewayId {
        self.id
    }
}

impl Store {
    /// The row's shared and device tokens, decrypted (one that does not open reads as none).
    pub(super) fn open_tokens(
        &self,
        row: &GatewayRow,
    ) -> (Option<SecretString>, Option<SecretString>) {
        let to = Address::of(row);
        let open = |token, blob: Option<&[u8]>| {
            blob.and_then(|b| tokens::open(&self.cipher, token, &to, b))
        };
        (
            open(Token::Gateway, row.token_enc.as_deref()),
            open(Token::Device, row.device_token_enc.as_deref()),
        )
    }

    pub(crate) fn to_record(&self, row: GatewayRow) -> Result<GatewayRecord, StoreError> {
        let (token, device_token) = self.open_tokens(&row);
        record_of(row, token, device_token, Secrets::Carried)
    }

    /// The record without its secrets, which are not even decrypted: for a reader on an
    /// instance that does not link the gateway (docs/design.md, *Cluster*, "Secrets stay with
    /// the owner"). It says only whether a shared token is stored.
    pub(crate) fn to_sealed_record(&self, row: GatewayRow) -> Result<GatewayRecord, StoreError> {
        let token = row.token_enc.is_some();
        record_of(row, None, None, Secrets::LeftInStore { token })
    }
}

/// A row as a record, with the tokens given (decrypted, or none) and what they stand for.
fn record_of(
    row: GatewayRow,
    token: Option<SecretString>,
    device_token: Option<SecretString>,
    secrets: Secrets,
) -> Result<GatewayRecord, StoreError> {
    Ok(GatewayRecord {
        id: row.id,
        port: u16::try_from(row.port).map_err(StoreError::backend)?,
        status: row.status.parse().unwrap_or(GatewayStatus::Unknown),
        name: row.name,
        host: row.host,
        tls: row.tls,
        allow_insecure_tls: row.allow_insecure_tls,
        token,
        device_token,
        is_primary: row.is_primary,
        last_seen: row.last_seen,
        latency: row.latency,
        sessions_count: row.sessions_count,
        agents_count: row.agents_count,
        created_at: row.created_at,
        updated_at: row.updated_at,
        workspace_root: row.workspace_root,
        disable_device_pairing: row.disable_device_pairing,
        gateway_agent_id: row.gateway_agent_id,
        suspension_id: row.suspension_id,
        cordoned: row.cordoned,
        approvals: row.approvals,
        maintenance: row.maintenance_reason.map(|reason| {
            Box::new(Maintenance {
                reason,
                by: row.maintenance_by.unwrap_or_default(),
                since: row.maintenance_since.unwrap_or_default(),
                until: row.maintenance_until,
            })
        }),
        // Written only by `labels_json`, from checked labels; a row edited by hand into
        // something else reads as no labels (and says so) rather than failing the fleet.
        labels: serde_json::from_str(&row.labels).unwrap_or_else(|e| {
            tracing::warn!(gateway = row.id.get(), error = %e, "stored labels unreadable; read as none");
            Labels::default()
        }),
        secrets,
    })
}
