//! The NATS server's own counters over a window (`GET {monitor}/varz`: messages and bytes
//! in and out), so a result says how many NATS messages each like or comment cost.

pub use benchreport::nats::NatsCounts;

/// Reads the counters of one nats-server.
pub struct Monitor {
    client: reqwest::Client,
    url: String,
}

impl Monitor {
    pub fn new(base: &str) -> anyhow::Result<Monitor> {
        Ok(Monitor {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()?,
            url: format!("{}/varz", base.trim_end_matches('/')),
        })
    }

    /// The counters now; `None` when the server does not answer (the result then has none).
    pub async fn read(&self) -> Option<NatsCounts> {
        let resp = self.client.get(&self.url).send().await.ok()?;
        let body = resp.bytes().await.ok()?;
        match serde_json::from_slice(&body) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("loadgen: {}: {e}", self.url);
                None
            }
        }
    }
}
