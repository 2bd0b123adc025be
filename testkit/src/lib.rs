//! Test harness shared by the integration tests and the load generator's smoke test:
//! a real `nats-server` per test and a minimal Server-Sent Events client.
//!
//! # Layout
//! - [`nats_server`]: [`NatsServer`], a nats-server on free ports with a temporary store,
//!   killed on drop.
//! - [`sse`]: [`SseClient`] and [`SseEvent`], an `EventSource`-like reader over reqwest.

pub mod nats_server;
pub mod sse;

pub use nats_server::NatsServer;
pub use sse::{SseClient, SseEvent};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
