//! Viewer counts of the region, summed here: frontends report their per-video counts in
//! batches (`viewers.report.v1.{region}.{shard}`), every publisher of the region sums
//! all of them ([`Sums`]), and for each of the 16 shards one publisher — chosen by
//! rendezvous hashing over those that say they take part ([`Owners`]) — publishes each
//! video's region total on `live.v1.{region}.{video}.viewers`, at most once a second
//! and only when it changed (plus a slow refresh). Frontends sum the regions' totals.
//!
//! What this costs does not grow with the fleet where it matters: a frontend receives
//! one message per video per region per change, whatever the number of frontends; a
//! publisher receives every frontend's reports (at most one per shard per second, plus
//! the refresh), which is O(frontends) but only on the few publishers.
//!
//! Failure: a publisher killed stops its heartbeat; within [`PEER_TTL`] the
//! others own its shards and, having summed the same reports, publish at once. A
//! frontend killed stops refreshing and drops out of the sums after its report's TTL.

use std::time::Duration;

use futures::StreamExt;
use live_proto::subjects::{self, Counted, REPORT_SHARDS};
use live_proto::{Region, VideoId, v1};
use prost::Message as _;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::owners::{self, Owners, PEER_TTL};
use super::sums::{self, Sums};

/// How often owned totals are considered for publishing (each at most once a second):
/// short, so a change goes out soon after the report that made it.
const TICK: Duration = Duration::from_millis(250);

/// The NATS subscriptions of the aggregator, taken before the publisher serves.
pub struct Subscriptions {
    reports: async_nats::Subscriber,
    peers: async_nats::Subscriber,
}

pub async fn subscribe(
    client: &async_nats::Client,
    region: &Region,
) -> Result<Subscriptions, async_nats::SubscribeError> {
    Ok(Subscriptions {
        reports: client
            .subscribe(subjects::count_reports_all(Counted::Viewers, region))
            .await?,
        peers: client
            .subscribe(subjects::viewer_aggregators(region))
            .await?,
    })
}

/// Sums the region's reports and publishes the totals of the shards it owns until
/// `stop`; then says it leaves, so its shards move at once.
pub async fn run(
    client: async_nats::Client,
    region: Region,
    me: String,
    subs: Subscriptions,
    stop: CancellationToken,
) {
    let Subscriptions {
        mut reports,
        mut peers,
    } = subs;
    let mut sums = Sums::default();
    let mut owners = Owners::new(me.clone(), Instant::now());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(Duration::from_secs(1));
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval(owners::HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(msg) = reports.next() => on_report(&mut sums, &mut owners, &msg),
            Some(msg) = peers.next() => match v1::Aggregator::decode(msg.payload) {
                Ok(a) => owners.observe(
                    &a.node,
                    a.ready,
                    Duration::from_millis(a.ttl_ms.min(60_000).into()),
                    Instant::now(),
                ),
                Err(_) => super::undecodable(),
            },
            _ = expiry.tick() => {
                // Counts live for seconds: dropping the expired ones once a second is
                // enough, and spares the 250 ms publishing tick a walk over every count.
                let now = Instant::now();
                sums.expire(now);
                owners.expire(now);
            }
            _ = heartbeat.tick() => {
                let ready = owners.is_ready(Instant::now());
                announce(&client, &region, &me, ready, PEER_TTL).await;
            }
            _ = tick.tick() => publish_due(&client, &region, &me, &mut sums, &owners).await,
        }
    }
    announce(&client, &region, &me, false, Duration::ZERO).await;
}

fn on_report(sums: &mut Sums<VideoId>, owners: &mut Owners, msg: &async_nats::Message) {
    metrics::counter!("publisher_viewer_reports_total").increment(1);
    match super::apply_report(Counted::Viewers, sums, msg, |id| VideoId::parse(id).ok()) {
        Some(refresh) => owners.saw_refresh(refresh),
        None => super::undecodable(),
    }
}

async fn publish_due(
    client: &async_nats::Client,
    region: &Region,
    me: &str,
    sums: &mut Sums<VideoId>,
    owners: &Owners,
) {
    let now = Instant::now();
    let owned: Vec<bool> = (0..REPORT_SHARDS).map(|s| owners.owns(s, now)).collect();
    let due = sums.due(now, |video| {
        owned[subjects::report_shard(video.as_str()) as usize]
    });
    metrics::gauge!("publisher_viewer_shards_owned")
        .set(owned.iter().filter(|o| **o).count() as f64);
    metrics::gauge!("publisher_viewer_videos").set(sums.len() as f64);
    if due.is_empty() {
        return;
    }
    metrics::counter!("publisher_viewer_totals_total").increment(due.len() as u64);
    let at_ms = live_proto::now_ms();
    for (video, viewers) in due {
        let total = v1::ViewerTotal {
            video: video.to_string(),
            region: region.to_string(),
            viewers,
            at_ms,
            ttl_ms: sums::TOTAL_TTL.as_millis() as u32,
            node: me.to_owned(),
        };
        let subject = subjects::live_viewers(region, &video);
        if let Err(e) = client.publish(subject, total.encode_to_vec().into()).await {
            tracing::debug!(error = %e, "viewer total not published");
        }
    }
}

async fn announce(
    client: &async_nats::Client,
    region: &Region,
    me: &str,
    ready: bool,
    ttl: Duration,
) {
    let msg = v1::Aggregator {
        node: me.to_owned(),
        ready,
        ttl_ms: ttl.as_millis() as u32,
        at_ms: live_proto::now_ms(),
    };
    if let Err(e) = client
        .publish(
            subjects::viewer_aggregators(region),
            msg.encode_to_vec().into(),
        )
        .await
    {
        tracing::debug!(error = %e, "aggregator heartbeat not published");
    }
}
