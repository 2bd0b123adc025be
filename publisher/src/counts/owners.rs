//! Which publisher of a region publishes which shard's viewer totals (pure, the clock
//! passed in). Every publisher sums every report, and each says twice a second that it
//! takes part; a shard belongs to the ready publisher with the highest rendezvous hash
//! of (publisher, shard). When a publisher dies its heartbeat stops and, within
//! [`PEER_TTL`], the others each compute the same new owner for its shards, which
//! already has the sums: no hand-over, no election. A publisher is ready once it has
//! been listening for one refresh period of the frontends' reports ([`Warmup`]), so it
//! owns a shard only when its sums are whole. Two owners for a moment (while heartbeats disagree)
//! publish the same totals: harmless.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::warmup::Warmup;

/// How often a publisher says it takes part.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long a publisher counts as taking part without a heartbeat: four of them, so a
/// late one changes nothing and a dead one hands its shards over within ~2 s.
pub const PEER_TTL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Owners {
    me: String,
    warmup: Warmup,
    /// Other publishers: whether ready, and until when they count.
    peers: HashMap<String, (bool, Instant)>,
}

impl Owners {
    pub fn new(me: String, now: Instant) -> Self {
        Owners {
            me,
            warmup: Warmup::new(now),
            peers: HashMap::new(),
        }
    }

    /// A frontend refreshes its counts every `refresh` (see [`Warmup::saw_refresh`]).
    pub fn saw_refresh(&mut self, refresh: Duration) {
        self.warmup.saw_refresh(refresh);
    }

    /// Whether this publisher's sums are whole, so it may own shards.
    pub fn is_ready(&self, now: Instant) -> bool {
        self.warmup.is_ready(now)
    }

    /// Publisher `node`'s heartbeat; a `ttl` of zero is it leaving.
    pub fn observe(&mut self, node: &str, ready: bool, ttl: Duration, now: Instant) {
        if node == self.me {
            return;
        }
        if ttl.is_zero() {
            self.peers.remove(node);
        } else {
            self.peers.insert(node.to_owned(), (ready, now + ttl));
        }
    }

    pub fn expire(&mut self, now: Instant) {
        self.peers.retain(|_, (_, until)| *until > now);
    }

    /// The publisher that publishes `shard`'s totals, `None` while no one is ready.
    pub fn owner(&self, shard: u32, now: Instant) -> Option<&str> {
        let me = self.is_ready(now).then_some(self.me.as_str());
        self.peers
            .iter()
            .filter(|(_, (ready, until))| *ready && *until > now)
            .map(|(node, _)| node.as_str())
            .chain(me)
            .max_by_key(|node| (weight(node, shard), *node))
    }

    pub fn owns(&self, shard: u32, now: Instant) -> bool {
        self.owner(shard, now) == Some(self.me.as_str())
    }
}

/// The rendezvous weight of `node` for `shard`: FNV-1a over both, then a 64-bit
/// finaliser (splitmix64's) so that similar names spread. Hand-written: a few lines
/// that every publisher must compute alike, whatever std's hasher does across versions.
fn weight(node: &str, shard: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.as_bytes().iter().chain(&shard.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::warmup::MIN_WARMUP;
    use live_proto::subjects::REPORT_SHARDS as VIEWER_SHARDS;

    const S: Duration = Duration::from_secs(1);

    fn owned(o: &Owners, now: Instant) -> Vec<u32> {
        (0..VIEWER_SHARDS).filter(|&s| o.owns(s, now)).collect()
    }

    #[test]
    fn nobody_owns_before_warming_up() {
        let t0 = Instant::now();
        let o = Owners::new("a".into(), t0);
        assert_eq!(o.owner(0, t0), None);
        assert_eq!(owned(&o, t0 + MIN_WARMUP).len(), VIEWER_SHARDS as usize);
    }

    #[test]
    fn every_publisher_computes_the_same_owners_and_shards_spread() {
        let t0 = Instant::now();
        let names = ["publisher-east-1", "publisher-east-2", "publisher-east-3"];
        let views: Vec<Owners> = names
            .iter()
            .map(|me| {
                let mut o = Owners::new((*me).into(), t0);
                for peer in names {
                    o.observe(peer, true, PEER_TTL, t0 + MIN_WARMUP);
                }
                o
            })
            .collect();
        let now = t0 + MIN_WARMUP;
        let mut counts = [0; 3];
        for shard in 0..VIEWER_SHARDS {
            let owners: Vec<_> = views.iter().map(|o| o.owner(shard, now)).collect();
            assert!(owners.windows(2).all(|w| w[0] == w[1]), "shard {shard}");
            assert_eq!(views.iter().filter(|o| o.owns(shard, now)).count(), 1);
            counts[names.iter().position(|n| Some(*n) == owners[0]).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c >= 2), "spread: {counts:?}");
    }

    #[test]
    fn a_dead_publishers_shards_move_and_only_they_move() {
        let t0 = Instant::now();
        let ready = t0 + MIN_WARMUP;
        let mut a = Owners::new("a".into(), t0);
        a.observe("b", true, PEER_TTL, ready);
        let before = owned(&a, ready);
        assert!(!before.is_empty() && before.len() < VIEWER_SHARDS as usize);
        // b stops (killed): after its TTL, a owns everything.
        a.expire(ready + PEER_TTL);
        assert_eq!(owned(&a, ready + PEER_TTL).len(), VIEWER_SHARDS as usize);
        // b comes back warming up: a keeps everything until b says it is ready.
        a.observe("b", false, PEER_TTL, ready + 3 * S);
        assert_eq!(owned(&a, ready + 3 * S).len(), VIEWER_SHARDS as usize);
        a.observe("b", true, PEER_TTL, ready + 8 * S);
        assert_eq!(
            owned(&a, ready + 8 * S),
            before,
            "the same shards as before"
        );
        // b leaves cleanly: at once.
        a.observe("b", true, Duration::ZERO, ready + 9 * S);
        assert_eq!(owned(&a, ready + 9 * S).len(), VIEWER_SHARDS as usize);
    }
}
