//! What the region's publishers sum from the frontends' count reports, so that no
//! frontend has to hear from every other one: viewers per video ([`viewers`]: one total
//! per video published by the shard's owner) and members online ([`members`]: asked
//! when a frontend starts watching a member). The pure parts: [`sums`] (counts by
//! frontend with TTLs, what to publish), [`owners`] (who publishes which shard) and
//! [`warmup`] (when a publisher's sums are whole).

pub mod members;
pub mod owners;
pub mod sums;
pub mod viewers;
pub mod warmup;

use std::time::Duration;

use live_proto::subjects::{self, Counted};
use live_proto::v1;
use prost::Message as _;
use tokio::time::Instant;

use sums::Sums;

/// Applies a frontend's report on `subject` to `sums`: ids that `parse` accepts and that
/// belong to the subject's shard. Returns the report's refresh period (a third of its
/// TTL), `None` if it did not decode.
fn apply_report<K: std::hash::Hash + Eq + Clone + AsRef<str>>(
    counted: Counted,
    sums: &mut Sums<K>,
    msg: &async_nats::Message,
    parse: impl Fn(&str) -> Option<K>,
) -> Option<Duration> {
    let (_, shard) = subjects::parse_count_report(counted, &msg.subject)?;
    let report = v1::CountReport::decode(msg.payload.clone()).ok()?;
    if report.node.is_empty() {
        return None;
    }
    let ttl = Duration::from_millis(report.ttl_ms.clamp(1_000, 300_000).into());
    let expires = Instant::now() + ttl;
    for count in report.counts {
        // Only a valid id of this shard is summed: a video's total has one owner.
        match parse(&count.id) {
            Some(id) if subjects::report_shard(id.as_ref()) == shard => {
                sums.report(&report.node, id, count.n, expires)
            }
            _ => undecodable(),
        }
    }
    Some(ttl / 3)
}

fn undecodable() {
    metrics::counter!("publisher_count_reports_undecodable_total").increment(1);
}
