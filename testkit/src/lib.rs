//! Test harness shared by the integration tests and the load generator's smoke test:
//! a real `nats-server` per test and a minimal Server-Sent Events client.
//!
//! # Layout
//! - [`nats_server`]: [`NatsServer`], a nats-server on free ports with a temporary store,
//!   killed on drop.
//! - [`nats_cluster`]: [`NatsCluster`], a 3-node JetStream cluster on free ports.
//! - [`cluster_slot`]: one cluster or supercluster at a time per test process.
//! - [`process`]: [`Process`], a workspace binary as a real process (kill -9, SIGTERM).
//! - [`proxy`]: [`Proxy`], a TCP proxy that adds latency or cuts a link.
//! - [`supercluster`]: [`Supercluster`], regions joined by gateways through proxies, and
//!   leaf servers.
//! - [`sse`]: [`SseClient`] and [`SseEvent`], an `EventSource`-like reader over reqwest.

pub mod cluster_slot;
pub mod nats_cluster;
pub mod nats_server;
pub mod process;
pub mod proxy;
pub mod sse;
pub mod supercluster;

pub use nats_cluster::NatsCluster;
pub use nats_server::NatsServer;
pub use process::Process;
pub use proxy::Proxy;
pub use sse::{SseClient, SseEvent};
pub use supercluster::Supercluster;

/// The client URLs of `nodes`, comma separated (what `--nats` takes).
pub fn urls(nodes: &[NatsServer]) -> String {
    nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",")
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
