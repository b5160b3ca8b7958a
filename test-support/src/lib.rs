//! What the tests (`tests/integration`, `tests/openclaw_e2e`) and the benchmarks (`bench/`)
//! share, as one small crate rather than files pulled across with `#[path]`: the daemon runner
//! and its condition waits ([`daemon`]), a raw HTTP/1.1 client that sends exactly the bytes it is given ([`http`]), an SSE reader ([`sse`]), a fake
//! OpenAI-compatible model server for the real gateways ([`fake_model`]), a runner for real
//! OpenClaw gateways in their own PID namespaces ([`real_gateway`]), a second operator client of
//! a real gateway beside the daemon ([`operator`]), how many things were out at once ([`outages`]),
//! what the Prometheus mixin's metrics are ([`mixin`]), a PostgreSQL server of a test's own with its replicas ([`private_pg`]) and a TCP relay a test can cut or slow ([`relay`]).

pub mod daemon;
pub mod fake_model;
pub mod http;
pub mod mixin;
pub mod operator;
pub mod outages;
pub mod private_pg;
pub mod real_gateway;
pub mod relay;
pub mod sse;
