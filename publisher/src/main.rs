//! The `publisher` binary: parses flags and runs [`publisher::run`] until SIGINT/SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    live_common::telemetry::init_tracing();
    let config = publisher::Config::parse();
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.listen, error = %e, "cannot listen");
            return std::process::ExitCode::from(1);
        }
    };
    match publisher::run(listener, config, live_common::shutdown::signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "publisher failed");
            std::process::ExitCode::from(1)
        }
    }
}
