//! The members connected to this node, as it tells the other frontends (pure, the clock
//! passed in): online at once when a member's first connection opens, refreshed every
//! third of the TTL while any is open, and offline only after the grace period with
//! none — a phone that drops and reconnects within it never shows offline. Each
//! decision is an [`Announce`] for the caller to publish.

use std::collections::HashMap;
use std::time::Duration;

use live_proto::MemberId;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announce {
    Online(MemberId),
    Offline(MemberId),
}

#[derive(Debug)]
struct Entry {
    connections: u32,
    /// When the last connection closed plus the grace period.
    offline_at: Option<Instant>,
    /// When this node last said the member is online (`None`: not yet).
    announced: Option<Instant>,
}

#[derive(Debug)]
pub struct Members {
    members: HashMap<MemberId, Entry>,
    grace: Duration,
    refresh: Duration,
}

impl Members {
    pub fn new(grace: Duration, ttl: Duration) -> Self {
        Members {
            members: HashMap::new(),
            grace,
            refresh: ttl / 3,
        }
    }

    /// A connection of `member` opened; `true` if the member just came online here
    /// (announce it now: [`Members::due`] has it).
    pub fn connect(&mut self, member: &MemberId) -> bool {
        let entry = self.members.entry(member.clone()).or_insert(Entry {
            connections: 0,
            offline_at: None,
            announced: None,
        });
        entry.connections += 1;
        entry.offline_at = None;
        entry.announced.is_none()
    }

    /// A connection of `member` closed.
    pub fn disconnect(&mut self, member: &MemberId, now: Instant) {
        if let Some(entry) = self.members.get_mut(member) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                entry.offline_at = Some(now + self.grace);
            }
        }
    }

    /// Whether this node counts `member` online (within the grace period too).
    pub fn is_online(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    /// Every member online here with its connections (1 within the grace period).
    pub fn counts(&self) -> Vec<(MemberId, u64)> {
        self.members
            .iter()
            .map(|(m, e)| (m.clone(), u64::from(e.connections.max(1))))
            .collect()
    }

    /// Members online here.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// What to publish now: new members and refreshes online, members whose grace
    /// period ran out offline (and forgotten).
    pub fn due(&mut self, now: Instant) -> Vec<Announce> {
        let mut out = Vec::new();
        let refresh = self.refresh;
        self.members.retain(|member, entry| {
            if entry.offline_at.is_some_and(|at| at <= now) {
                if entry.announced.is_some() {
                    out.push(Announce::Offline(member.clone()));
                }
                return false;
            }
            if entry
                .announced
                .is_none_or(|at| now.duration_since(at) >= refresh)
            {
                entry.announced = Some(now);
                out.push(Announce::Online(member.clone()));
            }
            true
        });
        out
    }

    /// The soonest moment [`Members::due`] has something (a refresh or an offline).
    pub fn next_due(&self) -> Option<Instant> {
        self.members
            .values()
            .map(|e| {
                let refresh = e.announced.map_or(Instant::now(), |at| at + self.refresh);
                e.offline_at.map_or(refresh, |off| off.min(refresh))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);
    const TTL: Duration = Duration::from_secs(15);

    fn m(id: &str) -> MemberId {
        MemberId::parse(id).unwrap()
    }

    #[test]
    fn online_at_once_then_refreshed_every_third_of_the_ttl() {
        let t0 = Instant::now();
        let mut ms = Members::new(GRACE, TTL);
        assert!(ms.connect(&m("ann")));
        assert_eq!(ms.due(t0), [Announce::Online(m("ann"))]);
        // A second connection is no news.
        assert!(!ms.connect(&m("ann")));
        assert_eq!(ms.due(t0 + Duration::from_secs(1)), []);
        assert_eq!(
            ms.due(t0 + Duration::from_secs(5)),
            [Announce::Online(m("ann"))]
        );
    }

    #[test]
    fn offline_only_after_the_grace_period_with_no_connection() {
        let t0 = Instant::now();
        let mut ms = Members::new(GRACE, TTL);
        ms.connect(&m("ann"));
        ms.connect(&m("ann"));
        ms.due(t0);
        ms.disconnect(&m("ann"), t0);
        ms.disconnect(&m("ann"), t0 + Duration::from_secs(1));
        assert!(ms.is_online(&m("ann")), "within the grace period");
        assert_eq!(ms.due(t0 + Duration::from_secs(4)), []);
        assert_eq!(
            ms.due(t0 + Duration::from_secs(6)),
            [Announce::Offline(m("ann"))]
        );
        assert!(!ms.is_online(&m("ann")));
        assert!(ms.is_empty());
    }

    #[test]
    fn a_reconnect_within_the_grace_period_shows_nothing() {
        let t0 = Instant::now();
        let mut ms = Members::new(GRACE, TTL);
        ms.connect(&m("ann"));
        ms.due(t0);
        ms.disconnect(&m("ann"), t0);
        assert!(!ms.connect(&m("ann")), "still online: no announcement");
        assert_eq!(ms.due(t0 + Duration::from_secs(4)), []);
        assert_eq!(
            ms.due(t0 + Duration::from_secs(10)),
            [Announce::Online(m("ann"))],
            "a refresh, no offline"
        );
    }

    #[test]
    fn next_due_is_the_soonest_refresh_or_offline() {
        let t0 = Instant::now();
        let mut ms = Members::new(GRACE, TTL);
        assert_eq!(ms.next_due(), None);
        ms.connect(&m("ann"));
        ms.due(t0);
        assert_eq!(ms.next_due(), Some(t0 + Duration::from_secs(5)));
        ms.disconnect(&m("ann"), t0 + Duration::from_secs(1));
        assert_eq!(
            ms.next_due(),
            Some(t0 + Duration::from_secs(5)),
            "the refresh"
        );
        ms.due(t0 + Duration::from_secs(5));
        assert_eq!(
            ms.next_due(),
            Some(t0 + Duration::from_secs(6)),
            "the offline"
        );
    }
}
