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
    let listener = match listen(config.listen) {
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

/// Connections the kernel queues for `accept` at most (it caps this at
/// `net.core.somaxconn`). A reconnect storm arrives faster than a busy node accepts
/// (5,000 connects/s from 10,000 viewers over a 2 s `retry:` window); a full queue drops
/// the SYNs, which the clients send again only after 1, 3, 7 s. tokio's `bind` queues 1024.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds `addr` (reusing a port in TIME_WAIT, as `TcpListener::bind` does) with
/// [`LISTEN_BACKLOG`].
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
