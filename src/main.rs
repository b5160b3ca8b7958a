use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gateway_supervisor::cli::Cli::parse();
    match gateway_supervisor::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gateway-supervisor: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
