//! What a route runs after its role's check and before its handler (`roles.rs` runs them, the
//! route declares them in `api_routes.rs`): a rate limit (`middleware::limit_gateway_ops`), the
//! gateway a path names (`visible::gateway_in_path`). Its own module so that the checks and the
//! code that runs them depend on it, not on each other.

use actix_web::dev::ServiceRequest;
use futures_util::future::LocalBoxFuture;

use super::error::ApiError;
use crate::auth::Principal;

/// A check, given the caller its route's role admitted: an error is the response; a [`Wait`] is
/// a question only a wait answers (a gateway a peer of the cluster registered a moment ago),
/// awaited before the handler runs. Most answers are at once: no allocation, no await.
pub type Check = fn(&ServiceRequest, &Principal) -> Result<Option<Wait>, ApiError>;

/// The rest of a check that has to wait ([`Check`]).
pub type Wait = LocalBoxFuture<'static, Result<(), ApiError>>;
