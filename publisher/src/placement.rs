//! Keeping the partitions' stream leaders spread over the cluster's servers.
//!
//! Every partition stream is a Raft group whose leader takes all of its writes, so the
//! write capacity of a region grows with the servers only if the leaders are spread.
//! JetStream places new streams' leaders over the servers, but never moves a leader back:
//! after a server restarts, the leaders it had stay where they failed over to, and one
//! server ends up leading most partitions (and a second failure of that server stalls
//! most of the region). So every `--rebalance-interval` the publisher reads its region's
//! partition streams' leaders and, where one server leads two or more of a kind more
//! than another, asks one such stream's leader to step down in favour of the server with
//! the fewest (`$JS.API.STREAM.LEADER.STEPDOWN.{stream}` with a preferred placement,
//! nats-server 2.11+). One move per kind per round, so a flapping server never causes a
//! storm of elections.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use live_proto::{Partitions, Regions, subjects};
use tokio_util::sync::CancellationToken;

/// A stream's leader should move: `stream` to the server `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub stream: String,
    pub to: String,
}

/// Given the leader of each stream of one kind and every server that holds a replica of
/// them, the one leader move that most evens the count, if the busiest server leads at
/// least two more than the idlest. Pure; ties broken by name, so it is deterministic.
pub fn next_move(leaders: &BTreeMap<String, String>, servers: &[String]) -> Option<Move> {
    let mut count: BTreeMap<&str, usize> = servers.iter().map(|s| (s.as_str(), 0)).collect();
    for leader in leaders.values() {
        *count.entry(leader.as_str()).or_default() += 1;
    }
    let (busiest, most) = count
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(s, n)| (*s, *n))?;
    let (idlest, least) = count
        .iter()
        .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
        .map(|(s, n)| (*s, *n))?;
    if most < least + 2 {
        return None;
    }
    let stream = leaders.iter().find(|(_, l)| *l == busiest)?.0.clone();
    Some(Move {
        stream,
        to: idlest.to_owned(),
    })
}

/// Rebalances the region's partition streams every `interval` (jittered), until `stopped`.
pub async fn keep_spread(
    js: jetstream::Context,
    regions: Regions,
    partitions: Partitions,
    interval: Duration,
    stopped: CancellationToken,
) {
    if partitions.count() < 2 {
        return;
    }
    let own = regions.own().clone();
    let kinds: Vec<Vec<String>> = vec![
        partitions
            .all()
            .map(|p| subjects::comments_stream(&own, p))
            .collect(),
        partitions
            .all()
            .map(|p| subjects::likes_stream(&own, p))
            .collect(),
    ];
    loop {
        let wait = interval.mul_f64(rand::random_range(0.75..1.25));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.cancelled() => return,
        }
        for streams in &kinds {
            rebalance(&js, streams).await;
        }
    }
}

/// One round for one kind of stream: read leaders and replicas, make at most one move.
async fn rebalance(js: &jetstream::Context, streams: &[String]) {
    let mut leaders = BTreeMap::new();
    let mut servers: Vec<String> = Vec::new();
    for name in streams {
        let info = match tokio::time::timeout(Duration::from_secs(2), js.get_stream(name)).await {
            Ok(Ok(mut s)) => match s.info().await {
                Ok(info) => info.clone(),
                Err(_) => return,
            },
            // A stream without a leader (an election) or unreachable: try next round.
            _ => return,
        };
        let Some(cluster) = info.cluster else { return };
        let Some(leader) = cluster.leader else { return };
        // Only replicas that are current may take over.
        for peer in cluster.replicas.iter().filter(|p| p.current && !p.offline) {
            if !servers.contains(&peer.name) {
                servers.push(peer.name.clone());
            }
        }
        if !servers.contains(&leader) {
            servers.push(leader.clone());
        }
        leaders.insert(name.clone(), leader);
    }
    let Some(m) = next_move(&leaders, &servers) else {
        return;
    };
    let request = serde_json::json!({ "placement": { "preferred": m.to } });
    let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{}", m.stream);
    match tokio::time::timeout(
        Duration::from_secs(2),
        js.client().request(subject, request.to_string().into()),
    )
    .await
    {
        Ok(Ok(reply)) if reply.payload.windows(14).any(|w| w == b"\"success\":true") => {
            metrics::counter!("publisher_leader_moves_total").increment(1);
            tracing::info!(stream = %m.stream, to = %m.to, "moved a partition's stream leader to even them out");
        }
        Ok(Ok(reply)) => {
            tracing::warn!(stream = %m.stream, reply = %String::from_utf8_lossy(&reply.payload), "leader move refused")
        }
        Ok(Err(e)) => tracing::warn!(stream = %m.stream, error = %e, "leader move failed"),
        Err(_) => tracing::warn!(stream = %m.stream, "leader move timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaders(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect()
    }

    fn servers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spread_leaders_stay_where_they_are() {
        let l = leaders(&[("p0", "a"), ("p1", "b"), ("p2", "c"), ("p3", "a")]);
        assert_eq!(next_move(&l, &servers(&["a", "b", "c"])), None);
    }

    #[test]
    fn a_returning_server_gets_a_leader_back() {
        // c restarted: a and b took its partitions; c leads nothing.
        let l = leaders(&[("p0", "a"), ("p1", "b"), ("p2", "a")]);
        assert_eq!(
            next_move(&l, &servers(&["a", "b", "c"])),
            Some(Move {
                stream: "p0".into(),
                to: "c".into()
            })
        );
    }

    #[test]
    fn one_move_at_a_time_converges() {
        let mut l = leaders(&[("p0", "a"), ("p1", "a"), ("p2", "a"), ("p3", "a")]);
        let all = servers(&["a", "b", "c"]);
        let mut moves = 0;
        while let Some(m) = next_move(&l, &all) {
            l.insert(m.stream, m.to);
            moves += 1;
            assert!(moves <= 4, "converges");
        }
        let mut per: BTreeMap<&String, usize> = BTreeMap::new();
        for s in l.values() {
            *per.entry(s).or_default() += 1;
        }
        assert_eq!(moves, 2);
        assert!(per.values().all(|n| (1..=2).contains(n)), "{per:?}");
    }

    #[test]
    fn nothing_to_do_without_servers_or_streams() {
        assert_eq!(next_move(&BTreeMap::new(), &[]), None);
        assert_eq!(next_move(&leaders(&[("p0", "a")]), &servers(&["a"])), None);
    }
}
