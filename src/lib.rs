//! gateway-supervisor: the daemon (CLI, configuration, HTTP front-end, storage). The actors
//! live in the `gateway-supervisor-actors` crate.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod console_session;
pub mod cron;
pub mod ctl;
pub mod daemon;
pub mod db;
pub mod domain;
pub mod fleet;
pub mod fleet_config;
pub mod gateway_reads;
pub mod http;
pub mod keys;
pub mod logging;
pub mod logs;
pub mod managed;
pub mod metrics;
pub mod otel;
pub mod ratelimit;
pub mod secrets;
pub mod seed;
pub mod spend;
pub mod sso;
pub mod state_lock;
pub mod systemd;
pub mod tenancy;
pub mod validate;
