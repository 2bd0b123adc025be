//! This node's counts, reported to the region's publishers, which sum every frontend's
//! (`publisher::counts`): its viewers per video (`viewers.report.v1.{region}.{shard}`;
//! the publishers publish one total per video) and its connections per member
//! (`presence.report.v1.{region}.{shard}`; the publishers tell a frontend that starts
//! watching a member who holds it). At each tick the counts that changed, batched per
//! shard, and all of them every third of the TTL. What a frontend sends grows with its
//! own videos and members only, and what it receives does not grow with the number of
//! frontends. [`reports`] decides; this module sends.

pub mod reports;

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use live_proto::subjects::{self, Counted};
use live_proto::v1;
use prost::Message as _;
use tokio::time::MissedTickBehavior;

use crate::node::Node;
use reports::{Batch, Reports};

/// Reports `counts()` (this node's count per id) every `tick` until the node stops;
/// then says every id is gone here, so the sums drop at once rather than after `ttl`.
pub async fn run<K, F>(node: Arc<Node>, counted: Counted, tick: Duration, ttl: Duration, counts: F)
where
    K: Hash + Eq + Clone + AsRef<str>,
    F: Fn() -> Vec<(K, u64)> + Send + 'static,
{
    let mut reports = Reports::new(ttl / 3);
    let mut tick = tokio::time::interval(tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let batches = reports.tick(counts(), tokio::time::Instant::now());
                send(&node, counted, batches, ttl).await;
            }
            _ = node.stopped.cancelled() => break,
        }
    }
    send(&node, counted, reports.goodbye(), ttl).await;
}

async fn send<K: AsRef<str>>(node: &Node, counted: Counted, batches: Vec<Batch<K>>, ttl: Duration) {
    for batch in batches {
        let report = v1::CountReport {
            node: node.id.clone(),
            ttl_ms: ttl.as_millis().min(u128::from(u32::MAX)) as u32,
            counts: batch
                .counts
                .into_iter()
                .map(|(id, n)| v1::Count {
                    id: id.as_ref().to_owned(),
                    n,
                })
                .collect(),
            at_ms: live_proto::now_ms(),
        };
        let subject = subjects::count_report(counted, node.regions.own(), batch.shard);
        let kind = match counted {
            Counted::Viewers => "viewers",
            Counted::Members => "members",
        };
        metrics::counter!("frontend_count_reports_total", "kind" => kind).increment(1);
        if let Err(e) = node
            .client
            .publish(subject, report.encode_to_vec().into())
            .await
        {
            tracing::debug!(error = %e, "count report not published");
        }
    }
}
