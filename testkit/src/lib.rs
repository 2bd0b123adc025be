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

/// Ports [`free_port`] hands out: below Linux's ephemeral range (32768–60999), so no
/// client socket of any test takes one between a server's stop and its restart on the
/// same port (the partitions test restarts a server on its old port; with a storm
/// test's hundreds of connections beside it, an ephemeral pick was taken by a client).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free TCP port on 127.0.0.1 (bound, then released), below the ephemeral range: each
/// test process walks the range from a start derived from its pid and the clock, so
/// parallel test processes rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORTS.end - PORTS.start);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let start = (std::process::id().wrapping_mul(7919) ^ nanos) % span;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let port = PORTS.start + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}");
}
