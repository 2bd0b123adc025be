//! The `frontend` binary: parses and validates flags (a bad value exits 64 before any port
//! is bound), then runs [`frontend::run`] until SIGINT/SIGTERM.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: frontend::Config = match live_common::cli::parse() {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(e) = config.validate() {
        return live_common::cli::usage_error(&e);
    }
    live_common::telemetry::init_tracing();
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.listen, error = %e, "cannot listen");
            eprintln!("error: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    match frontend::run(listener, config, live_common::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "frontend failed");
            ExitCode::from(1)
        }
    }
}
