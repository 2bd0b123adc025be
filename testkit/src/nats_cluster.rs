//! A 3-node JetStream cluster on free loopback ports, for failure tests: any node can be
//! killed (SIGKILL) and started again with its store.

use crate::NatsServer;

pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    // Declared last: released after the servers are gone.
    _slot: crate::cluster_slot::ClusterSlot,
}

impl NatsCluster {
    /// Starts `n` nodes routed to each other and waits until all are ready.
    pub fn start(n: usize) -> Self {
        let slot = crate::cluster_slot::ClusterSlot::take();
        let cluster_ports: Vec<u16> = (0..n).map(|_| crate::free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes: Vec<NatsServer> = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                NatsServer::launch(&[
                    "--server_name",
                    &format!("n{i}"),
                    "--cluster_name",
                    "test",
                    "--cluster",
                    &format!("nats://127.0.0.1:{port}"),
                    "--routes",
                    &routes,
                ])
            })
            .collect();
        for node in &nodes {
            node.wait_ready();
        }
        NatsCluster { nodes, _slot: slot }
    }

    /// All client URLs, comma separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        crate::urls(&self.nodes)
    }
}
