//! Every `/api` route, declared once: its path, its method, the least role it admits and its
//! handler. The one declaration below registers the actix route with its role check
//! (`roles.rs`), puts the handler's operation in the OpenAPI document with that role as its
//! security scope (`openapi.rs`), and is what the role test walks
//! (`tests/integration/route_roles.rs`, every spelling of every path) — a route added here is
//! served, documented and tested; a route nowhere else is none of these.
//!
//! It used to be written four times (the router, the handler's `security(...)`, the document's
//! path list, the test's table), and the copies could drift: a route registered but missing from
//! the document passes the fuzzer unseen; one in the test's table but registered with another
//! role is caught only if both were edited. The handler's `#[utoipa::path]` still spells the
//! path for the document; `the_document_and_the_routes_name_the_same_operations` holds the two
//! spellings together.

use actix_web::web;

use super::roles::{Need, Reach, delete, get, patch, post, put};
use super::route_check::Check;
use super::{Gate, api_resource, not_found};
use super::{
    agents, approvals, budgets, cluster, cron, cron_declarations, events, fleet, fleet_config,
    gateway_ops, gateways, health, hosts, keys, labels, maintenance, managed, middleware,
    operations, ops, rollouts, sessions, spawn, spend, usage, v1, visible,
};
use crate::auth::Role::{self, Admin, Operator, Viewer};
use crate::tenancy::Verb;

/// One declared `/api` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRoute {
    /// Lower-case, as OpenAPI names it (`get`).
    pub method: &'static str,
    /// The actix pattern, from the root (`/api/gateways/{id:\d+}`).
    pub pattern: &'static str,
    /// The least role, the verb and the reach it needs (`roles::Need`).
    pub role: Role,
    pub verb: Verb,
    pub reach: Reach,
}

impl ApiRoute {
    /// The path as the OpenAPI document writes it: `{id:\d+}` → `{id}`.
    pub fn documented_path(&self) -> String {
        let mut out = String::new();
        let mut rest = self.pattern;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..=open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            let name = &rest[open + 1..close];
            out.push_str(name.split(':').next().unwrap_or(name));
            rest = &rest[close..];
        }
        out.push_str(rest);
        out
    }
}

/// A route's reach: its handler checks each object against the key's scope (`Tenant`), or it
/// is the platform's alone (`@platform`: refused to a scoped key before the handler runs).
macro_rules! reach {
    () => {
        Reach::Tenant
    };
    (platform) => {
        Reach::Platform
    };
}

/// Declares the routes: scopes (matched by prefix, each with the checks its routes run after
/// their role's) and routes at the top of `/api`; each line `path => method Role Verb
/// [@platform] module::handler, …;`.
macro_rules! api {
    (
        scopes {
            $( $scope:literal [ $($check:path),* ] {
                $( $spath:literal => $(
                    $smethod:ident $srole:ident $sverb:ident $(@ $sreach:ident)? $smod:ident :: $sfn:ident
                ),+ ; )*
            } )*
        }
        top {
            $( $path:literal => $(
                $method:ident $role:ident $verb:ident $(@ $reach:ident)? $mod:ident :: $fn:ident
            ),+ ; )*
        }
    ) => {
        /// Every `/api` route: each scope's, then those at the top.
        pub const ROUTES: &[ApiRoute] = &[
            $( $( $( ApiRoute {
                method: stringify!($smethod),
                pattern: concat!("/api", $scope, $spath),
                role: $srole,
                verb: Verb::$sverb,
                reach: reach!($($sreach)?),
            }, )+ )* )*
            $( $( ApiRoute {
                method: stringify!($method),
                pattern: concat!("/api", $path),
                role: $role,
                verb: Verb::$verb,
                reach: reach!($($reach)?),
            }, )+ )*
        ];

        /// The operations of every route, for the document.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths( $( $( $( $smod::$sfn, )+ )* )* $( $( $mod::$fn, )+ )* ))]
        pub struct ApiPaths;

        /// Registers the lists, each a scope's own path (`/api/gateways`): the most read, before
        /// any other pattern of the root (the API's description and viewer come next, then
        /// [`register`]). One router: a request for a list is matched in a few string
        /// compares, with no scope's prefix tried before it.
        pub fn register_lists(root: &mut web::ServiceConfig) {
            $(
                let checks: &'static [Check] = &[ $( $check ),* ];
                $(
                    if is_scope_root($spath) {
                        let routes = vec![ $( $smethod(
                            Need { role: $srole, verb: Verb::$sverb, reach: reach!($($sreach)?) },
                            checks,
                            $smod::$sfn,
                        ) ),+ ];
                        root.service(api_resource(concat!("/api", $scope), routes));
                    }
                )*
            )*
        }

        /// Registers every other route: each scope (matched by its prefix) with its routes,
        /// then the routes at the top of `/api`. What none of them answers is the root's `/api`
        /// fallback's (401 before 404).
        pub fn register(root: &mut web::ServiceConfig) {
            $(
                let checks: &'static [Check] = &[ $( $check ),* ];
                let mut scope = web::scope(concat!("/api", $scope));
                $(
                    if !is_scope_root($spath) {
                        let routes = vec![ $( $smethod(
                            Need { role: $srole, verb: Verb::$sverb, reach: reach!($($sreach)?) },
                            checks,
                            $smod::$sfn,
                        ) ),+ ];
                        scope = scope.service(api_resource($spath, routes));
                    }
                )*
                root.service(scope.default_service(not_found(Gate::Api)));
            )*
            $( root.service(api_resource(concat!("/api", $path), vec![ $( $method(
                Need { role: $role, verb: Verb::$verb, reach: reach!($($reach)?) },
                &[],
                $mod::$fn,
            ) ),+ ])); )*
        }
    };
}

/// `""`, a scope's own path.
fn is_scope_root(path: &str) -> bool {
    path.is_empty()
}

// The most read first (a dashboard polls the gateways and the sessions): actix tries a router's
// patterns in order, each at the cost of a capture buffer made and dropped.
//
// A route with a parameter sits in the scope of its first segment. actix tries a scope's
// patterns in order, a scope's by its prefix (a string compare) and a parameter's by a regex
// (regex-lite's PikeVM): parametrised routes at the top were regexes run for every `/api`
// request declared after them. Serving a cached `GET /api/sessions`, routing took 7.0 % of the
// daemon's CPU with `/budgets/{name}` and `/managed/{id}` at the top, 2.6 % with them in scopes
// (perf, wrk -c64; docs/design.md "Serving reads").
api! {
    scopes {
        "/gateways" [middleware::limit_gateway_ops, visible::gateway_in_path] {
            "" => get Viewer Read gateways::list, post Admin Admin gateways::create,
                put Admin Admin gateways::update, delete Admin Admin gateways::delete;
            "/health" => post Operator Operate health::probe;
            "/health/history" => get Viewer Read health::history;
            r"/{id:\d+}/labels" => patch Admin Admin labels::patch;
            r"/{id:\d+}/maintenance" => post Admin Operate maintenance::start,
                delete Admin Operate maintenance::end;
            r"/{id:\d+}/cordon" => post Admin Operate gateway_ops::cordon;
            r"/{id:\d+}/uncordon" => post Admin Operate gateway_ops::uncordon;
            r"/{id:\d+}/drain" => post Admin Operate operations::drain;
            r"/{id:\d+}/suspend" => post Admin Operate gateway_ops::suspend;
            r"/{id:\d+}/resume" => post Admin Operate gateway_ops::resume;
            r"/{id:\d+}/restart" => post Admin Operate gateway_ops::restart;
            r"/{id:\d+}/rotate-token" => post Admin Admin gateway_ops::rotate_token;
            r"/{id:\d+}" => get Viewer Read gateways::get, put Admin Admin gateways::update_by_path,
                delete Admin Admin gateways::delete_by_path;
        }
        "/sessions" [] {
            "" => get Viewer Read sessions::list;
            "/{key}/control" => post Operator SessionControl sessions::control;
        }
        "/v1/gateways" [middleware::limit_gateway_ops, visible::gateway_in_path] {
            "" => get Viewer Read v1::list, post Admin Admin v1::create;
            r"/{id:\d+}" => get Viewer Read v1::get, patch Admin Admin v1::update,
                delete Admin Admin v1::delete;
        }
        "/operations" [] {
            "" => get Viewer Read operations::list;
            "/{id}" => get Viewer Read operations::get;
            "/{id}/cancel" => post Admin Operate operations::cancel;
            "/{id}/abort-runs" => post Admin Operate operations::abort_runs;
        }
        "/approvals" [visible::gateway_in_path] {
            "" => get Viewer Read approvals::list;
            "/{gateway_id}/{id}" => get Viewer Read approvals::get;
            "/{gateway_id}/{id}/resolve" => post Operator Approve approvals::resolve;
        }
        "/cron" [visible::gateway_in_path] {
            "/jobs" => get Viewer Read cron::list;
            "/jobs/{gateway_id}/{job_id}" => get Viewer Read cron::get;
            r"/gateways/{gateway_id:\d+}/remove-duplicates" => post Admin Config cron::remove_duplicates;
            "/declarations" => get Viewer Read @platform cron_declarations::list_declarations;
            "/declarations/{name}" => get Viewer Read @platform cron_declarations::get_declaration,
                put Admin Config @platform cron_declarations::put_declaration,
                delete Admin Config @platform cron_declarations::delete_declaration;
        }
        "/config" [] {
            "/profiles" => get Viewer Read @platform fleet_config::list;
            "/profiles/{name}" => get Viewer Read @platform fleet_config::get,
                put Admin Config @platform fleet_config::put,
                delete Admin Config @platform fleet_config::delete;
            "/drift" => get Viewer Read @platform fleet_config::drift;
            "/rollouts" => get Viewer Read rollouts::list_rollouts,
                post Admin Config @platform rollouts::start_rollout;
            "/rollouts/{id}" => get Viewer Read rollouts::get_rollout;
            "/rollouts/{id}/pause" => post Admin Config @platform rollouts::pause_rollout;
            "/rollouts/{id}/resume" => post Admin Config @platform rollouts::resume_rollout;
            "/rollouts/{id}/promote" => post Admin Config @platform rollouts::promote_rollout;
        }
        "/budgets" [] {
            "" => get Viewer Read @platform budgets::list_budgets;
            "/{name}" => get Viewer Read @platform budgets::get_budget,
                put Admin Admin @platform budgets::put_budget,
                delete Admin Admin @platform budgets::delete_budget;
        }
        "/keys" [] {
            "" => get Admin Admin @platform keys::list;
            r"/{id:\d+}" => delete Admin Admin @platform keys::revoke;
            r"/{id:\d+}/rotate" => post Admin Admin @platform keys::rotate;
        }
        "/spend" [] {
            "/budgets" => get Viewer Read @platform spend::list;
            "/budgets/{subject}" => get Viewer Read @platform spend::get,
                put Admin Admin @platform spend::put,
                delete Admin Admin @platform spend::delete;
        }
        "/managed" [] {
            "" => get Viewer Read @platform managed::list_managed,
                post Admin Admin @platform managed::declare_managed;
            "/{id}" => get Viewer Read @platform managed::get_managed,
                delete Admin Admin @platform managed::delete_managed;
            "/{id}/restart" => post Admin Operate @platform managed::restart_managed;
        }
        "/spawn" [] {
            "" => get Viewer Read spawn::list, post Operator Spawn spawn::create;
            "/{id}" => get Viewer Read spawn::get;
        }
        "/agents" [] {
            "" => get Viewer Read agents::list;
            "/sync" => post Admin Admin @platform agents::sync;
            r"/{id:\d+}" => get Viewer Read agents::get, put Admin Admin agents::update;
            r"/{id:\d+}/heartbeat" => post Operator Spawn @platform agents::heartbeat;
        }
    }
    top {
        "/fleet/versions" => get Viewer Read fleet::versions;
        "/alerts" => get Viewer Read @platform fleet::alerts;
        "/usage" => get Viewer Read usage::report;
        "/usage/spend" => get Viewer Read usage::spend;
        "/fleet/restart" => post Admin Operate operations::rolling_restart;
        "/fleet/upgrade" => post Admin Operate operations::upgrade;
        "/fleet/update-hold" => post Admin Operate operations::update_hold;
        "/hosts" => get Viewer Read @platform hosts::list_hosts;
        "/audit" => get Admin Admin ops::audit;
        "/cluster" => get Viewer Read @platform cluster::status;
        "/logs" => get Viewer Read ops::logs;
        "/events" => get Viewer Read events::sse;
        // Direct CLI connections belong to no gateway, so to no tenant.
        "/connect" => get Viewer Read @platform agents::connections,
            post Operator Spawn @platform agents::connect,
            delete Operator Spawn @platform agents::disconnect;
        "/ws" => get Viewer Read events::ws;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use utoipa::OpenApi;

    #[test]
    fn a_pattern_is_documented_with_its_parameters_named_plainly() {
        let route = ApiRoute {
            method: "get",
            pattern: r"/api/gateways/{id:\d+}/labels",
            role: Viewer,
            verb: Verb::Read,
            reach: Reach::Tenant,
        };
        assert_eq!(route.documented_path(), "/api/gateways/{id}/labels");
    }

    #[test]
    fn the_document_and_the_routes_name_the_same_operations() {
        let doc = super::super::openapi::ApiDoc::openapi();
        let documented: BTreeSet<(String, String)> = doc
            .paths
            .paths
            .iter()
            .filter(|(path, _)| path.starts_with("/api/"))
            .flat_map(|(path, item)| {
                let json = serde_json::to_value(item).unwrap_or_default();
                let methods: Vec<String> = json
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                methods
                    .into_iter()
                    .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                    .map(move |m| (m, path.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.documented_path()))
            .collect();
        assert_eq!(documented, routed);
        assert_eq!(routed.len(), ROUTES.len(), "a route declared twice");
    }

    #[test]
    fn every_operation_s_security_scope_is_its_routes_role() {
        let doc =
            serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap_or_default();
        for r in ROUTES {
            let op = &doc["paths"][r.documented_path()][r.method];
            let scopes = &op["security"][0]["api_key"];
            assert_eq!(
                scopes,
                &serde_json::json!([r.role.as_str()]),
                "{} {}: {op}",
                r.method,
                r.pattern
            );
        }
    }
}
