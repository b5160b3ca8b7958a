//! The cluster's two kinds of hop, each bounded in time: a storage call on a blocking
//! thread, and a question to the registry. A round does not wait past either: the heartbeat
//! goes first, whatever the database or the registry's mailbox is doing.

use std::time::Duration;

use actix::Addr;
use gateway_supervisor_actors::registry::RegistryActor;

use crate::db::DbError;

/// A question to the registry, answered within `wait` or not at all: under load its mailbox
/// can be seconds behind (10 instances taking in 100,000 gateways' link reports on two
/// cores), and a round — its heartbeat first of all — must not wait for it.
pub(super) async fn ask<M>(
    registry: &Addr<RegistryActor>,
    msg: M,
    wait: Duration,
) -> Option<M::Result>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
    RegistryActor: actix::Handler<M>,
{
    tokio::time::timeout(wait, registry.send(msg))
        .await
        .ok()?
        .ok()
}

/// Runs a storage call on a blocking thread, for at most `timeout` (the thread may finish
/// later; its answer is then dropped).
pub(super) async fn blocking<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(join)) => Err(join.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}
