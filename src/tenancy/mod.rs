//! Tenants and what a key may reach (docs/design.md, *Tenancy*). A gateway's tenant is its
//! `tenant` label (none: the `default` tenant); a key is scoped to a tenant, optionally narrowed
//! by a selector over reserved labels, to a set of verbs and to a set of agents. Reserved labels
//! — `tenant` and the prefixes in `labels.reserved` — are set only by a key of the whole fleet
//! (a platform key): a boundary a scoped key could edit would be none (Kubernetes refused
//! label-selector access rules for that reason), so a key's selector may name reserved labels
//! only, and a scoped key can neither set nor remove one.
//!
//! The rule is here and pure ([`Scope`]); it is enforced in two places of the HTTP layer, both
//! fed by the route table (`http/api_routes.rs`): each route's verb and reach are checked before
//! its handler runs (`http/roles.rs`), and every object a handler reads or acts on is checked
//! through [`crate::http::visible::Visible`], the one door to the fleet's gateways as a key
//! sees them.

mod scope;
mod verb;

pub use scope::{DEFAULT_TENANT, KeyScope, Reserved, Scope, ScopeError, TENANT_LABEL, tenant_of};
pub use verb::{Verb, VerbSet};
