//! Whether one member is online, from every frontend's [`MemberPresence`] (pure, the
//! clock passed in): online while any frontend's online state is fresh. A frontend that
//! says offline drops out at once; one that stops saying anything (killed) drops out
//! when its TTL runs out. Only a change of the whole is news.
//!
//! [`MemberPresence`]: live_proto::v1::MemberPresence

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct Watch {
    /// Frontends that say the member is online, until when.
    nodes: HashMap<String, Instant>,
    online: bool,
}

impl Watch {
    pub fn online(&self) -> bool {
        self.online
    }

    /// A frontend's state; `Some(online)` if the member's state changed.
    pub fn observe(
        &mut self,
        node: &str,
        online: bool,
        ttl: Duration,
        now: Instant,
    ) -> Option<bool> {
        if online {
            self.nodes.insert(node.to_owned(), now + ttl);
        } else {
            self.nodes.remove(node);
        }
        self.update()
    }

    /// Drops frontends whose TTL ran out; `Some(online)` if that changed the state.
    pub fn expire(&mut self, now: Instant) -> Option<bool> {
        self.nodes.retain(|_, until| *until > now);
        self.update()
    }

    fn update(&mut self) -> Option<bool> {
        let online = !self.nodes.is_empty();
        (online != self.online).then(|| {
            self.online = online;
            online
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    #[test]
    fn online_while_any_frontend_says_so() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        assert_eq!(w.observe("a", true, TTL, t0), Some(true));
        assert_eq!(w.observe("b", true, TTL, t0), None);
        assert_eq!(
            w.observe("a", false, TTL, t0),
            None,
            "b still has the member"
        );
        assert_eq!(w.observe("b", false, TTL, t0), Some(false));
        assert!(!w.online());
    }

    #[test]
    fn a_silent_frontend_drops_out_after_its_ttl() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe("killed", true, Duration::from_secs(3), t0);
        assert_eq!(w.expire(t0 + Duration::from_secs(2)), None);
        assert_eq!(w.expire(t0 + Duration::from_secs(3)), Some(false));
    }

    #[test]
    fn a_refresh_keeps_it_online() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe("a", true, Duration::from_secs(3), t0);
        assert_eq!(
            w.observe(
                "a",
                true,
                Duration::from_secs(3),
                t0 + Duration::from_secs(2)
            ),
            None
        );
        assert_eq!(w.expire(t0 + Duration::from_secs(4)), None);
        assert!(w.online());
    }
}
