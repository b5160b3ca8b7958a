//! Roles declared at the route. Every `/api` route is registered with the role it needs
//! (`get(Role::Admin, ops::audit)`), and the check runs inside the route the router matched.
//!
//! The role used to be derived from `req.path()` in the scope middleware, a second parse of a
//! path the router had already decoded differently: `GET /api/%61udit` routed to the audit
//! log while the check saw no `/api/audit` and asked for a viewer. Here there is no second
//! parse: whatever spelling reached a handler passed that handler's own check.

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::{Error, FromRequest, Handler, HttpMessage, Responder, Route, guard, web};
use futures_util::TryFutureExt;
use futures_util::future::{Either, MapOk};

use super::error::ApiError;
use super::middleware::PassOn;
use crate::auth::{Principal, Role};

/// Middleware for one route: the authenticated caller must have `role` or above.
#[derive(Clone, Copy)]
pub struct RequireRole(pub Role);

impl<S, B> Transform<S, ServiceRequest> for RequireRole
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireRoleService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireRoleService {
            service,
            role: self.0,
        }))
    }
}

pub struct RequireRoleService<S> {
    service: S,
    role: Role,
}

/// The decision, apart from the plumbing: no principal is 401, too small a role 403.
pub fn admit(principal: Option<&Principal>, required: Role) -> Result<(), ApiError> {
    match principal {
        None => Err(ApiError::Unauthorized("missing API key".into())),
        Some(p) if p.role < required => Err(ApiError::Forbidden {
            required,
            actual: p.role,
        }),
        Some(_) => Ok(()),
    }
}

impl<S, B> Service<ServiceRequest> for RequireRoleService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    /// The route's own future when the role admits the caller (nothing boxed per request).
    type Future = Either<MapOk<S::Future, PassOn<B>>, Ready<Result<Self::Response, Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let decision = admit(req.extensions().get::<Principal>(), self.role);
        match decision {
            Ok(()) => Either::Left(
                self.service
                    .call(req)
                    .map_ok(ServiceResponse::map_into_left_body as PassOn<B>),
            ),
            Err(e) => Either::Right(ready(Ok(super::middleware::refuse(req, e)))),
        }
    }
}

/// A route and its method, for [`super::resource`] (which answers other methods with 405 and
/// an `Allow` header naming these).
pub type MethodRoute = (Method, Route);

fn with_role<F, Args>(method: Method, role: Role, handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (
        method.clone(),
        route_for(method).to(handler).wrap(RequireRole(role)),
    )
}

/// The route for `method`; a `GET` route answers `HEAD` too (RFC 9110 §9.3.2: the same
/// headers, no body — the server drops the body).
fn route_for(method: Method) -> Route {
    if method == Method::GET {
        web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    } else {
        web::method(method)
    }
}

/// `GET` with no key at all (`/healthz`, `/readyz`, `/metrics`: no data behind them).
pub fn public_get<F, Args>(handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (Method::GET, route_for(Method::GET).to(handler))
}

macro_rules! method_routes {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($method), "` for `role` and above.")]
        pub fn $name<F, Args>(role: Role, handler: F) -> MethodRoute
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            with_role(Method::$method, role, handler)
        }
    )*};
}

method_routes!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role::*;

    fn principal(role: Role) -> Principal {
        Principal {
            key_id: 1,
            role,
            name: "t".into(),
        }
    }

    #[test]
    fn a_role_admits_itself_and_above_only() {
        for (have, need, ok) in [
            (Viewer, Viewer, true),
            (Viewer, Operator, false),
            (Viewer, Admin, false),
            (Operator, Operator, true),
            (Operator, Admin, false),
            (Admin, Admin, true),
            (Admin, Viewer, true),
        ] {
            assert_eq!(
                admit(Some(&principal(have)), need).is_ok(),
                ok,
                "{have} → {need}"
            );
        }
        assert!(matches!(
            admit(None, Viewer),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            admit(Some(&principal(Viewer)), Admin),
            Err(ApiError::Forbidden {
                required: Admin,
                actual: Viewer
            })
        ));
    }
}
