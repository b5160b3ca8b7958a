//! End-to-end tests: the real daemon binary, a real listener on 127.0.0.1, real database files
//! (or a real PostgreSQL database with GS_TEST_DATABASE=postgres).

mod support;

mod agents;
mod alerts;
mod approvals;
mod approvals_inbox;
mod auth;
mod bad_input;
mod browser;
mod browser_approvals;
mod browser_config;
mod cli;
mod config_drift;
mod console;
mod cordon;
mod crash;
mod ctl;
mod drain_abort;
mod election;
mod events;
mod gateway_logs;
mod gateway_ops;
mod hostile;
mod hostile_modes;
mod inventory;
mod labels;
mod link;
mod metrics;
mod mixin;
mod operations;
mod otel;
mod primary;
mod releases;
mod rolling;
mod route_roles;
mod secrets;
mod seed_examples;
mod sessions;
mod spawn;
mod systemd;
mod traces;
mod upgrade;
mod usage;
mod v1;
mod watchdog;
