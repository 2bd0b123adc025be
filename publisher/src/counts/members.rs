//! Members online in the region, for frontends that start watching one: every frontend
//! reports the members it holds connections of (`presence.report.v1.{region}.{shard}`,
//! changes within 200 ms, everything every third of its `--presence-ttl`), every
//! publisher sums them ([`Sums`]), and a frontend whose `presence:{member}` room opens
//! asks one of them (`presence.query.v1.{region}`, queue group) which frontends hold
//! the member. One request per watch and region, instead of a probe delivered to every
//! frontend: what a watch costs no longer grows with the fleet. Changes still go from
//! the holding frontend straight to the watching ones (`presence.v1.{region}.{member}`).
//!
//! A publisher answers only once its sums are whole ([`Warmup`]): it joins the queue
//! group then. With none ready a query gets no answer, and the watcher learns the state
//! from the holders' next refresh.

use std::time::Duration;

use futures::StreamExt;
use live_proto::subjects::{self, Counted};
use live_proto::{MemberId, Region, v1};
use prost::Message as _;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::sums::Sums;
use super::warmup::Warmup;

/// Members one query may ask about.
pub const MAX_PER_QUERY: usize = 100;

/// The reports' subscription, taken before the publisher serves.
pub async fn subscribe(
    client: &async_nats::Client,
    region: &Region,
) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
    client
        .subscribe(subjects::count_reports_all(Counted::Members, region))
        .await
}

/// Sums the region's member reports and, once warm, answers queries until `stop`.
pub async fn run(
    client: async_nats::Client,
    region: Region,
    mut reports: async_nats::Subscriber,
    stop: CancellationToken,
) {
    let mut sums: Sums<MemberId> = Sums::default();
    let mut warmup = Warmup::new(Instant::now());
    let mut queries: Option<async_nats::Subscriber> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(msg) = reports.next() => {
                metrics::counter!("publisher_member_reports_total").increment(1);
                match super::apply_report(Counted::Members, &mut sums, &msg, |id| {
                    MemberId::parse(id).ok()
                }) {
                    Some(refresh) => warmup.saw_refresh(refresh),
                    None => super::undecodable(),
                }
            }
            Some(query) = next(&mut queries) => answer(&client, &sums, query).await,
            _ = tick.tick() => {
                let now = Instant::now();
                sums.expire(now);
                // Nobody publishes these sums: members gone (0, or expired) leave here.
                sums.forget_empty();
                metrics::gauge!("publisher_members_online").set(sums.len() as f64);
                if queries.is_none() && warmup.is_ready(now) {
                    let subject = subjects::presence_query(&region);
                    match client.queue_subscribe(subject, subjects::INGEST_QUEUE.into()).await {
                        Ok(sub) => queries = Some(sub),
                        Err(e) => tracing::warn!(error = %e, "cannot answer presence queries"),
                    }
                }
            }
        }
    }
    if let Some(mut sub) = queries {
        let _ = sub.unsubscribe().await;
    }
}

/// The next query, once subscribed.
async fn next(queries: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match queries {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

async fn answer(client: &async_nats::Client, sums: &Sums<MemberId>, query: async_nats::Message) {
    let Some(reply) = query.reply else {
        return super::undecodable();
    };
    let Ok(q) = v1::MemberQuery::decode(query.payload) else {
        return super::undecodable();
    };
    metrics::counter!("publisher_member_queries_total").increment(1);
    let answer = holders(sums, &q.members, Instant::now());
    if let Err(e) = client.publish(reply, answer.encode_to_vec().into()).await {
        tracing::debug!(error = %e, "presence query not answered");
    }
}

/// Who holds the asked members (at most [`MAX_PER_QUERY`] of them; invalid ids are
/// skipped: nothing about them is known).
fn holders(sums: &Sums<MemberId>, members: &[String], now: Instant) -> v1::MemberHolders {
    let mut out = v1::MemberHolders::default();
    for member in members.iter().take(MAX_PER_QUERY) {
        let Ok(id) = MemberId::parse(member) else {
            continue;
        };
        for (node, left) in sums.holders(&id, now) {
            out.holders.push(v1::MemberHolder {
                member: member.clone(),
                node: node.to_owned(),
                ttl_ms: left.as_millis().min(u128::from(u32::MAX)) as u32,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_every_live_holder_of_the_asked_members_only() {
        let t0 = Instant::now();
        let mut sums = Sums::default();
        let m = |id: &str| MemberId::parse(id).unwrap();
        sums.report("fe-1", m("ann"), 2, t0 + Duration::from_secs(10));
        sums.report("fe-2", m("ann"), 1, t0 + Duration::from_secs(4));
        sums.report("fe-2", m("bob"), 1, t0 + Duration::from_secs(4));
        let asked = ["ann".to_owned(), "zed".to_owned(), "a.b".to_owned()];
        let mut got = holders(&sums, &asked, t0 + Duration::from_secs(1)).holders;
        got.sort_by(|a, b| a.node.cmp(&b.node));
        let got: Vec<_> = got
            .iter()
            .map(|h| (h.member.as_str(), h.node.as_str(), h.ttl_ms))
            .collect();
        assert_eq!(got, [("ann", "fe-1", 9_000), ("ann", "fe-2", 3_000)]);
        // Past fe-2's TTL (killed with -9): only fe-1.
        let later = holders(&sums, &asked[..1], t0 + Duration::from_secs(5)).holders;
        assert_eq!(later.len(), 1);
        // At most MAX_PER_QUERY members are looked at.
        let many: Vec<String> = std::iter::repeat_n("ann".to_owned(), 500).collect();
        assert_eq!(holders(&sums, &many, t0).holders.len(), 2 * MAX_PER_QUERY);
    }
}
