use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc: with glibc the daemon's resident memory stayed at its peak
/// after a burst (per-thread arenas keep freed chunks), and its per-allocation overhead made
/// 10,000 gateways take 24 KB each for ~11 KB of live data. Its settings are fixed at build time
/// (`.cargo/config.toml`): a background thread returns freed pages within seconds.
/// `--features system-allocator` leaves it out, for heap profilers only.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = gateway_supervisor::cli::Cli::parse();
    let json = cli.wants_json();
    match gateway_supervisor::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.code();
            let err = anyhow::Error::from(err);
            if json {
                // Asked for JSON: the error is one JSON object too (on stderr, as errors go).
                eprintln!(
                    "{}",
                    serde_json::json!({"error": code, "message": format!("{err:#}")})
                );
            } else {
                eprintln!("gateway-supervisor: error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
