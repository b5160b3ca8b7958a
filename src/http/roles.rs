//! Roles declared at the route. Every `/api` route is registered with the role it needs
//! (`get(Role::Admin, ops::audit)`), and the check runs inside the route the router matched,
//! after the caller has been worked out there (`middleware::admission`).
//!
//! The role used to be derived from `req.path()` in the scope middleware, a second parse of a
//! path the router had already decoded differently: `GET /api/%61udit` routed to the audit
//! log while the check saw no `/api/audit` and asked for a viewer. Here there is no second
//! parse: whatever spelling reached a handler passed that handler's own check.

use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::Method;
use actix_web::{
    Error, FromRequest, Handler, HttpMessage, HttpResponse, Responder, Route, guard, web,
};

use super::error::ApiError;
use super::route_check::Check;
use crate::auth::{Principal, Role};
use crate::tenancy::Verb;

/// What a route needs of its caller, declared with it (`api_routes.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The least role.
    pub role: Role,
    /// The verb the key must hold (docs/design.md, *Tenancy*).
    pub verb: Verb,
    pub reach: Reach,
}

/// Whose objects a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A tenant's: its handler checks every object against the key's scope
    /// (`visible::Visible`): out of scope is 404 for one object, left out of a list, 403
    /// `out_of_scope` for an action on a selector that reaches outside.
    Tenant,
    /// The platform's alone (profiles, disruption budgets, managed processes, hosts, the
    /// cluster, the audit log): a scoped key is refused here, before the handler.
    Platform,
}

/// The decision, apart from the plumbing: no principal is 401, too small a role or a verb the
/// key was not given 403 `forbidden`, a platform route to a scoped key 403 `out_of_scope`.
pub fn admit(principal: Option<&Principal>, need: Need) -> Result<&Principal, ApiError> {
    match principal {
        None => Err(ApiError::Unauthorized("missing API key".into())),
        Some(p) if p.role < need.role => Err(ApiError::Forbidden {
            required: need.role,
            actual: p.role,
        }),
        Some(p) if !p.scope.allows(need.verb) => Err(ApiError::VerbNotGranted(need.verb)),
        Some(p) if need.reach == Reach::Platform && !p.scope.is_platform() => {
            Err(ApiError::OutOfScope(
                "this route serves the platform's own objects; a key scoped to a tenant does not \
                 reach it"
                    .into(),
            ))
        }
        Some(p) => Ok(p),
    }
}

/// A route and its method, for [`super::resource`] (which answers other methods with 405 and
/// an `Allow` header naming these).
pub type MethodRoute = (Method, Route);

/// The route for `method` and `role`: the caller is worked out first
/// ([`super::middleware::admission`]), then the role is checked, then `checks` in order, then the
/// handler's arguments are extracted and it runs (what actix's `Route::to` does, with the checks
/// before it). A middleware on the route (`Route::wrap`) costs a second boxed service, a
/// compatibility layer and two mapped futures on every request (docs/design.md "Serving reads").
fn with_role<F, Args>(
    method: Method,
    need: Need,
    checks: &'static [Check],
    handler: F,
) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let service = fn_service(move |req: ServiceRequest| {
        let admission = super::middleware::admission(&req);
        let handler = handler.clone();
        async move {
            let admitted = match admission.settle(&req).await {
                Ok(()) => checked(&req, need, checks).await,
                Err(refused) => Err(refused),
            };
            let (req, mut payload) = req.into_parts();
            let response = match admitted {
                Err(refused) => HttpResponse::from_error(refused),
                Ok(()) => match Args::from_request(&req, &mut payload).await {
                    Err(err) => HttpResponse::from_error(err),
                    Ok(args) => handler
                        .call(args)
                        .await
                        .respond_to(&req)
                        .map_into_boxed_body(),
                },
            };
            Ok::<_, Error>(ServiceResponse::new(req, response))
        }
    });
    (method.clone(), route_for(method).service(service))
}

/// The role, then each check in order; what a check left to wait for is awaited after the
/// others ran (the caller's borrow of the request is not held across it).
async fn checked(req: &ServiceRequest, need: Need, checks: &[Check]) -> Result<(), ApiError> {
    let waits = {
        let extensions = req.extensions();
        let caller = admit(extensions.get::<Principal>(), need)?;
        let mut waits = Vec::new();
        for check in checks {
            waits.extend(check(req, caller)?);
        }
        waits
    };
    for wait in waits {
        wait.await?;
    }
    Ok(())
}

/// The route for `method`; a `GET` route answers `HEAD` too (RFC 9110 §9.3.2: the same
/// headers, no body — the server drops the body).
fn route_for(method: Method) -> Route {
    if method == Method::GET {
        // One compare of the method, not actix's `Any` of two guards (a list of boxed guards,
        // each called through a pointer on every request).
        web::route().guard(guard::fn_guard(|ctx| {
            matches!(ctx.head().method, Method::GET | Method::HEAD)
        }))
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
        #[doc = concat!("`", stringify!($method), "` for what `need` says, then `checks`.")]
        pub fn $name<F, Args>(need: Need, checks: &'static [Check], handler: F) -> MethodRoute
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            with_role(Method::$method, need, checks, handler)
        }
    )*};
}

method_routes!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role::*;
    use crate::tenancy::{Reserved, Scope};
    use std::sync::Arc;

    fn principal(role: Role) -> Principal {
        Principal {
            key_id: 1,
            role,
            name: "t".into(),
            scope: Default::default(),
            kind: crate::auth::PrincipalKind::ApiKey,
        }
    }

    fn need(role: Role) -> Need {
        Need {
            role,
            verb: Verb::Read,
            reach: Reach::Tenant,
        }
    }

    #[test]
    fn a_role_admits_itself_and_above_only() {
        for (have, want, ok) in [
            (Viewer, Viewer, true),
            (Viewer, Operator, false),
            (Viewer, Admin, false),
            (Operator, Operator, true),
            (Operator, Admin, false),
            (Admin, Admin, true),
            (Admin, Viewer, true),
        ] {
            assert_eq!(
                admit(Some(&principal(have)), need(want)).is_ok(),
                ok,
                "{have} → {want}"
            );
        }
        assert!(matches!(
            admit(None, need(Viewer)),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            admit(Some(&principal(Viewer)), need(Admin)),
            Err(ApiError::Forbidden {
                required: Admin,
                actual: Viewer
            })
        ));
    }

    #[test]
    fn a_verb_narrows_a_role_and_a_scoped_key_never_reaches_a_platform_route() {
        let scoped = |verbs: Option<&str>| Principal {
            scope: Arc::new(
                Scope::new(Some("blue"), None, verbs, None, &Reserved::default()).unwrap(),
            ),
            ..principal(Admin)
        };
        let spawn = Need {
            role: Operator,
            verb: Verb::Spawn,
            reach: Reach::Tenant,
        };
        assert!(admit(Some(&scoped(None)), spawn).is_ok());
        assert!(matches!(
            admit(Some(&scoped(Some("read"))), spawn),
            Err(ApiError::VerbNotGranted(Verb::Spawn))
        ));
        let platform = Need {
            reach: Reach::Platform,
            ..need(Viewer)
        };
        assert!(matches!(
            admit(Some(&scoped(None)), platform),
            Err(ApiError::OutOfScope(_))
        ));
        assert!(admit(Some(&principal(Viewer)), platform).is_ok());
        // A verb never widens a role: the role refuses first.
        assert!(matches!(
            admit(Some(&principal(Viewer)), spawn),
            Err(ApiError::Forbidden { .. })
        ));
    }
}
