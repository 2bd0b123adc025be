//! A NATS supercluster for tests: regions of JetStream nodes on free loopback ports, each
//! a cluster named after its region (the publisher places its streams by that name),
//! joined by gateways. Every gateway connection *into* a region passes through that
//! region's [`Proxy`], so a test can cut, heal or slow the link between regions and count
//! what crosses it. Leaf servers can join a region.
//!
//! The configuration follows `nats/multi-region/`: a system account `SYS`, the
//! application account `APP` (JetStream) that clients without credentials land in, and
//! the JetStream domain [`DOMAIN`] (clients of a leaf server use it). Each node's config
//! file is written into a temporary directory and passed with `-c`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::{NatsServer, Proxy, free_port};

/// The JetStream domain of the supercluster.
pub const DOMAIN: &str = "hub";

/// How long [`Builder::start`] and the `wait_*` functions wait at most.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Supercluster {
    pub regions: Vec<Region>,
    leaves: usize,
    // Declared last: dropped after the servers, which read their config from it.
    dir: TempDir,
    _slot: Option<crate::cluster_slot::ClusterSlot>,
}

pub struct Region {
    pub name: String,
    pub nodes: Vec<NatsServer>,
    /// Carries every gateway connection from the other regions into this one: what
    /// crosses from another region to this one goes upstream through it.
    pub gateway_in: Proxy,
    leaf_ports: Vec<u16>,
}

/// Regions, nodes per region, and JetStream's fsync policy.
pub struct Builder {
    regions: Vec<String>,
    nodes: usize,
    sync_always: bool,
}

impl Supercluster {
    /// A supercluster of these regions (e.g. `["east", "west"]`), one node each unless
    /// [`Builder::nodes_per_region`] says otherwise.
    pub fn builder(regions: &[&str]) -> Builder {
        Builder {
            regions: regions.iter().map(|r| r.to_string()).collect(),
            nodes: 1,
            sync_always: false,
        }
    }

    pub fn region(&self, name: &str) -> &Region {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no region {name}"))
    }

    /// Cuts every gateway link (existing connections close, new ones are refused).
    pub fn cut(&self) {
        for r in &self.regions {
            r.gateway_in.cut();
        }
    }

    /// Lets the gateways connect again.
    pub fn heal(&self) {
        for r in &self.regions {
            r.gateway_in.heal();
        }
    }

    /// Adds `delay` to each direction of every gateway link (one-way WAN latency).
    pub fn set_gateway_delay(&self, delay: Duration) {
        for r in &self.regions {
            r.gateway_in.set_delay(delay);
        }
    }

    /// Waits until every node has a gateway to every other region and is healthy
    /// (JetStream included: the meta group spans all regions, so it needs a majority of
    /// all nodes connected). Panics after a minute.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for region in &self.regions {
            for node in &region.nodes {
                loop {
                    if self.gateways_up(node) && healthy(node.monitor_port).await {
                        break;
                    }
                    if tokio::time::Instant::now() > deadline {
                        panic!(
                            "supercluster not ready: {} has gateways {:?}; log:\n{}",
                            node_name(node),
                            outbound_gateways(node),
                            node.log()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Like [`wait_ready`](Self::wait_ready) after a start, but fails if a node exited.
    async fn wait_started(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            for node in self.regions.iter_mut().flat_map(|r| &mut r.nodes) {
                if node.exited() {
                    return Err(format!("a node exited; log:\n{}", node.log()));
                }
            }
            let mut ready = true;
            for node in self.regions.iter().flat_map(|r| &r.nodes) {
                if !(self.gateways_up(node) && healthy(node.monitor_port).await) {
                    ready = false;
                    break;
                }
            }
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let node = &self.regions[0].nodes[0];
                return Err(format!(
                    "not ready within a minute; log of one node:\n{}",
                    node.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no node has a gateway connection left (after [`cut`](Self::cut)).
    pub async fn wait_partitioned(&self) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for node in self.regions.iter().flat_map(|r| &r.nodes) {
            while !outbound_gateways(node).is_empty() || inbound_gateways(node) > 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "gateways of {} still connected",
                    node_name(node)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn gateways_up(&self, node: &NatsServer) -> bool {
        let out = outbound_gateways(node);
        self.regions
            .iter()
            .filter(|r| !r.nodes.iter().any(|n| std::ptr::eq(n, node)))
            .all(|r| out.contains(&r.name))
    }

    /// Starts a leaf server (without JetStream) joined to `region`, as an edge site;
    /// waits until its leaf connection is up. Its clients reach the hub's JetStream
    /// through the domain [`DOMAIN`].
    pub async fn leaf(&mut self, region: &str) -> NatsServer {
        self.leaves += 1;
        let name = format!("edge-{region}-{}", self.leaves);
        let urls = self
            .region(region)
            .leaf_ports
            .iter()
            .map(|p| format!("\"nats-leaf://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "server_name: {name}\n\
             accounts {{ APP {{ users: [ {{ user: app, password: app }} ] }} }}\n\
             no_auth_user: app\n\
             leafnodes {{ remotes: [ {{ urls: [ {urls} ], account: APP }} ] }}\n"
        );
        let path = self.write(&name, &config);
        let leaf = NatsServer::launch_without_jetstream(free_port(), &["-c", path_str(&path)]);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while !(healthy(leaf.monitor_port).await && leaf.monitor("varz")["leafnodes"] == 1) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "leaf {name} did not connect; log:\n{}",
                leaf.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        leaf
    }

    fn write(&self, name: &str, config: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.conf"));
        std::fs::write(&path, config).expect("write nats-server config");
        path
    }
}

impl Region {
    /// The client URLs of the region's nodes, comma separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        crate::urls(&self.nodes)
    }
}

impl Builder {
    /// Nodes per region (a JetStream cluster each; 3 for R3 streams).
    pub fn nodes_per_region(mut self, n: usize) -> Self {
        assert!(n >= 1);
        self.nodes = n;
        self
    }

    /// fsync every JetStream write before acknowledging it, as in production
    /// (`sync_interval: always`); off by default to keep tests fast.
    pub fn sync_always(mut self) -> Self {
        self.sync_always = true;
        self
    }

    /// Starts every node and waits until the supercluster is ready. Ports are picked
    /// free beforehand, so another process may take one before a node binds it: then
    /// that node exits, and the whole supercluster starts again on other ports.
    pub async fn start(self) -> Supercluster {
        let slot = crate::cluster_slot::ClusterSlot::take();
        let mut attempt = 1;
        loop {
            let mut sc = self.launch().await;
            match sc.wait_started().await {
                Ok(()) => {
                    sc._slot = Some(slot);
                    return sc;
                }
                Err(why) if attempt < 3 => {
                    eprintln!("supercluster did not start ({why}); again on other ports");
                    attempt += 1;
                }
                Err(why) => panic!("supercluster did not start: {why}"),
            }
        }
    }

    async fn launch(&self) -> Supercluster {
        struct Ports {
            client: Vec<u16>,
            route: Vec<u16>,
            gateway: Vec<u16>,
            leaf: Vec<u16>,
        }
        let n = self.nodes;
        let ports: Vec<Ports> = self
            .regions
            .iter()
            .map(|_| Ports {
                client: (0..n).map(|_| free_port()).collect(),
                route: (0..n).map(|_| free_port()).collect(),
                gateway: (0..n).map(|_| free_port()).collect(),
                leaf: (0..n).map(|_| free_port()).collect(),
            })
            .collect();
        // One proxy into each region, to its first node's gateway port; every node of the
        // region advertises the proxy, so the other regions only ever dial through it.
        let mut proxies = Vec::new();
        for p in &ports {
            let target = SocketAddr::from(([127, 0, 0, 1], p.gateway[0]));
            proxies.push(Proxy::start(target).await);
        }
        let proxy_ports: Vec<u16> = proxies.iter().map(|p| p.port).collect();
        let mut sc = Supercluster {
            regions: Vec::new(),
            leaves: 0,
            dir: tempfile::tempdir().expect("config dir"),
            _slot: None,
        };
        for ((name, p), proxy) in self.regions.iter().zip(&ports).zip(proxies) {
            let routes = p
                .route
                .iter()
                .map(|port| format!("\"nats-route://127.0.0.1:{port}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let mut nodes = Vec::new();
            for i in 0..n {
                let mut gateways = String::new();
                for (other, port) in self.regions.iter().zip(&proxy_ports) {
                    if other == name {
                        continue;
                    }
                    let _ = write!(
                        gateways,
                        "{{ name: {other}, urls: [ \"nats://127.0.0.1:{port}\" ] }} "
                    );
                }
                let config = format!(
                    "server_name: {name}-{i}\n\
                     accounts {{\n\
                       SYS {{ users: [ {{ user: sys, password: sys }} ] }}\n\
                       APP {{ jetstream: enabled, users: [ {{ user: app, password: app }} ] }}\n\
                     }}\n\
                     system_account: SYS\n\
                     no_auth_user: app\n\
                     jetstream {{ domain: {DOMAIN}{sync} }}\n\
                     cluster {{ name: {name}, listen: \"127.0.0.1:{route}\", routes: [ {routes} ] }}\n\
                     gateway {{\n\
                       name: {name}\n\
                       listen: \"127.0.0.1:{gw}\"\n\
                       advertise: \"127.0.0.1:{adv}\"\n\
                       gateways: [ {gateways}]\n\
                     }}\n\
                     leafnodes {{ listen: \"127.0.0.1:{leaf}\" }}\n",
                    sync = if self.sync_always {
                        ", sync_interval: always"
                    } else {
                        ""
                    },
                    route = p.route[i],
                    gw = p.gateway[i],
                    adv = proxy.port,
                    leaf = p.leaf[i],
                );
                let path = sc.write(&format!("{name}-{i}"), &config);
                nodes.push(NatsServer::launch_on(p.client[i], &["-c", path_str(&path)]));
            }
            sc.regions.push(Region {
                name: name.clone(),
                nodes,
                gateway_in: proxy,
                leaf_ports: p.leaf.clone(),
            });
        }
        sc
    }
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn node_name(node: &NatsServer) -> String {
    node.monitor("varz")["server_name"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// The regions a node has an outbound gateway connection to.
fn outbound_gateways(node: &NatsServer) -> Vec<String> {
    node.monitor("gatewayz")["outbound_gateways"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn inbound_gateways(node: &NatsServer) -> usize {
    node.monitor("gatewayz")["inbound_gateways"]
        .as_object()
        .map(|m| m.values().map(|v| v.as_array().map_or(0, Vec::len)).sum())
        .unwrap_or(0)
}

/// Whether `/healthz` answers 200 (JetStream ready).
async fn healthy(monitor_port: u16) -> bool {
    let url = format!("http://127.0.0.1:{monitor_port}/healthz");
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}
