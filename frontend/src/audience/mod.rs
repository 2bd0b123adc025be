//! This node's viewer counts, reported to the region's publishers, which sum every
//! frontend's and publish one total per video (`publisher::viewers`): once a second
//! the counts that changed, batched per shard (`viewers.report.v1.{region}.{shard}`),
//! and all of them every third of `--viewers-ttl`. What a frontend sends grows with its
//! own videos only, and what it receives (one total per video per region) not at all
//! with the number of frontends. [`reports`] decides; this module sends.

pub mod reports;

use std::sync::Arc;
use std::time::Duration;

use live_proto::{VideoId, subjects, v1};
use prost::Message as _;
use tokio::time::MissedTickBehavior;

use crate::node::Node;
use reports::{Batch, Reports};

/// How often the changes go out.
const TICK: Duration = Duration::from_secs(1);

/// Reports `counts()` (this node's viewers per video) until the node stops; then says
/// every video is gone here, so the totals drop at once rather than after the TTL.
pub async fn run<F>(node: Arc<Node>, counts: F)
where
    F: Fn() -> Vec<(VideoId, u64)> + Send + 'static,
{
    let ttl = node.settings.viewers_ttl;
    let mut reports = Reports::new(ttl / 3);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let batches = reports.tick(counts(), tokio::time::Instant::now());
                send(&node, batches, ttl).await;
            }
            _ = node.stopped.cancelled() => break,
        }
    }
    send(&node, reports.goodbye(), ttl).await;
}

async fn send(node: &Node, batches: Vec<Batch>, ttl: Duration) {
    for batch in batches {
        let report = v1::ViewerReport {
            node: node.id.clone(),
            ttl_ms: ttl.as_millis().min(u128::from(u32::MAX)) as u32,
            videos: batch
                .videos
                .into_iter()
                .map(|(video, viewers)| v1::VideoViewers {
                    video: video.to_string(),
                    viewers,
                })
                .collect(),
            at_ms: live_proto::now_ms(),
        };
        let subject = subjects::viewer_report(node.regions.own(), batch.shard);
        metrics::counter!("frontend_viewer_reports_total").increment(1);
        if let Err(e) = node
            .client
            .publish(subject, report.encode_to_vec().into())
            .await
        {
            tracing::debug!(error = %e, "viewer report not published");
        }
    }
}
