//! Rate limits per user and per video, each for likes and for comments, and per user for
//! a conversation's typing and read receipts, with the `governor` crate (GCRA): a check is one compare-and-swap on the key's state in a
//! sharded `DashMap`, so a flood of one user or of many never serialises the others
//! behind one lock. A request must pass its user's limit first, then its video's, so a
//! user over their own limit does not spend the video's allowance.
//!
//! Memory is bounded: a task prunes, every [`PRUNE_EVERY`], the keys whose bucket is full
//! again (`retain_recent`), i.e. users and videos idle for a burst's worth of time. Keys
//! are validated ids (at most 64 bytes) that passed authentication, so the map holds at
//! most the users and videos active within the last burst window and prune interval.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use live_proto::{UserId, VideoId};

/// How often idle keys are dropped.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// A sustained rate (per second, more than 0) and the burst saved up beyond it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    fn quota(self) -> Quota {
        // The configuration is validated (finite, at least one a day); the clamps only
        // keep a absurd value representable.
        let period = Duration::from_secs_f64((1.0 / self.per_sec).clamp(1e-9, 86_400.0 * 365.0));
        let burst = NonZeroU32::new(self.burst.round().clamp(1.0, f64::from(u32::MAX)) as u32)
            .unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst)
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User,
    Video,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Video => "video",
        }
    }
}

/// Over a limit: which one, and the whole seconds (at least 1) until a request passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub scope: Scope,
    pub retry_after_secs: u64,
}

/// The limits of one action (likes, comments, typing, read receipts): per user, and per
/// target `T` (a video) when there is a target limit.
pub struct RateLimiter<T: Hash + Eq + Clone = VideoId> {
    users: Option<Arc<DefaultKeyedRateLimiter<UserId>>>,
    videos: Option<Arc<DefaultKeyedRateLimiter<T>>>,
    clock: DefaultClock,
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> RateLimiter<T> {
    /// Limits per user and per video of `action` ("likes", "comments": the label of the
    /// `publisher_rate_limit_keys` gauge). Inside a tokio runtime, also starts the task
    /// that prunes idle keys (it ends when the limiter is dropped).
    pub fn new(action: &'static str, per_user: Rate, per_video: Rate) -> Self {
        let limiter = Self::per_user(action, per_user);
        let videos = Arc::new(governor::RateLimiter::keyed(per_video.quota()));
        if tokio::runtime::Handle::try_current().is_ok() {
            prune(Arc::downgrade(&videos), action, Scope::Video);
        }
        Self {
            videos: Some(videos),
            ..limiter
        }
    }

    /// A limit per user only (the target passed to [`Self::check`] is not limited).
    pub fn per_user(action: &'static str, per_user: Rate) -> Self {
        let users = Arc::new(governor::RateLimiter::keyed(per_user.quota()));
        if tokio::runtime::Handle::try_current().is_ok() {
            prune(Arc::downgrade(&users), action, Scope::User);
        }
        Self {
            users: Some(users),
            videos: None,
            clock: DefaultClock::default(),
        }
    }

    /// A limit per target only (e.g. typing events published in one conversation,
    /// whoever types): check with [`Self::check_target`].
    pub fn per_target(action: &'static str, per_target: Rate) -> Self {
        let targets = Arc::new(governor::RateLimiter::keyed(per_target.quota()));
        if tokio::runtime::Handle::try_current().is_ok() {
            prune(Arc::downgrade(&targets), action, Scope::Video);
        }
        Self {
            users: None,
            videos: Some(targets),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request for `target` from its limit alone.
    pub fn check_target(&self, target: &T) -> Result<(), Refused> {
        match &self.videos {
            Some(videos) => videos
                .check_key(target)
                .map_err(|n| self.refused(Scope::Video, n.wait_time_from(self.clock.now()))),
            None => Ok(()),
        }
    }

    /// Takes one request for `user` on `video`, or says which limit refused it.
    pub fn check(&self, user: &UserId, video: &T) -> Result<(), Refused> {
        if let Some(users) = &self.users {
            users
                .check_key(user)
                .map_err(|n| self.refused(Scope::User, n.wait_time_from(self.clock.now())))?;
        }
        self.check_target(video)
    }

    fn refused(&self, scope: Scope, wait: Duration) -> Refused {
        Refused {
            scope,
            retry_after_secs: retry_after(wait),
        }
    }

    /// Keys held now (users, videos).
    pub fn len(&self) -> (usize, usize) {
        (
            self.users.as_ref().map_or(0, |u| u.len()),
            self.videos.as_ref().map_or(0, |v| v.len()),
        )
    }

    /// Drops the keys whose bucket is full again (what the pruning task does).
    pub fn prune(&self) {
        if let Some(users) = &self.users {
            prune_now(users);
        }
        if let Some(videos) = &self.videos {
            prune_now(videos);
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

fn prune_now<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

fn prune<K: Hash + Eq + Clone + Send + Sync + 'static>(
    weak: std::sync::Weak<DefaultKeyedRateLimiter<K>>,
    action: &'static str,
    scope: Scope,
) {
    let keys =
        metrics::gauge!("publisher_rate_limit_keys", "action" => action, "scope" => scope.as_str());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limiter) = weak.upgrade() else { break };
            prune_now(&limiter);
            keys.set(limiter.len() as f64);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_limit_counts_everyone_together() {
        let limiter = RateLimiter::<VideoId>::per_target(
            "test",
            Rate {
                per_sec: 1.0,
                burst: 2.0,
            },
        );
        let c = video("c");
        assert!(limiter.check_target(&c).is_ok());
        assert!(limiter.check_target(&c).is_ok());
        let refused = limiter.check_target(&c).unwrap_err();
        assert_eq!(refused.scope, Scope::Video);
        assert!(limiter.check_target(&video("other")).is_ok(), "per target");
        assert_eq!(limiter.len(), (0, 2), "no user keys");
    }

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn video(s: &str) -> VideoId {
        VideoId::parse(s).unwrap()
    }

    const LOOSE: Rate = Rate {
        per_sec: 1000.0,
        burst: 1000.0,
    };

    #[test]
    fn burst_then_refused_with_a_sane_retry_after() {
        let limiter = RateLimiter::new(
            "test",
            Rate {
                per_sec: 2.0,
                burst: 3.0,
            },
            LOOSE,
        );
        let (alice, bob, v) = (user("alice"), user("bob"), video("v"));
        for _ in 0..3 {
            assert!(limiter.check(&alice, &v).is_ok());
        }
        assert_eq!(
            limiter.check(&alice, &v),
            Err(Refused {
                scope: Scope::User,
                retry_after_secs: 1
            })
        );
        assert!(limiter.check(&bob, &v).is_ok(), "users are independent");
    }

    #[test]
    fn slow_rates_answer_whole_seconds() {
        // One a minute: the wait is ~60 s, never 0 and never absurd.
        let limiter = RateLimiter::new(
            "test",
            Rate {
                per_sec: 1.0 / 60.0,
                burst: 1.0,
            },
            LOOSE,
        );
        let (alice, v) = (user("alice"), video("v"));
        assert!(limiter.check(&alice, &v).is_ok());
        let refused = limiter.check(&alice, &v).unwrap_err();
        assert!((59..=60).contains(&refused.retry_after_secs), "{refused:?}");
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn a_video_has_its_own_limit_over_all_its_users() {
        let limiter = RateLimiter::new(
            "test",
            LOOSE,
            Rate {
                per_sec: 1.0,
                burst: 5.0,
            },
        );
        let (hot, other) = (video("hot"), video("other"));
        for i in 0..5 {
            assert!(limiter.check(&user(&format!("u{i}")), &hot).is_ok());
        }
        let refused = limiter.check(&user("u9"), &hot).unwrap_err();
        assert_eq!(refused.scope, Scope::Video);
        assert!(limiter.check(&user("u9"), &other).is_ok());
    }

    #[test]
    fn a_user_over_their_limit_does_not_spend_the_video() {
        let limiter = RateLimiter::new(
            "test",
            Rate {
                per_sec: 1.0,
                burst: 1.0,
            },
            Rate {
                per_sec: 1.0,
                burst: 2.0,
            },
        );
        let v = video("v");
        assert!(limiter.check(&user("mallory"), &v).is_ok());
        for _ in 0..50 {
            assert_eq!(
                limiter.check(&user("mallory"), &v).unwrap_err().scope,
                Scope::User
            );
        }
        assert!(limiter.check(&user("alice"), &v).is_ok());
    }

    #[test]
    fn a_per_user_limit_ignores_the_target() {
        let limiter = RateLimiter::per_user(
            "test",
            Rate {
                per_sec: 1.0,
                burst: 2.0,
            },
        );
        let c = live_proto::ConversationId::parse("c").unwrap();
        let d = live_proto::ConversationId::parse("d").unwrap();
        assert!(limiter.check(&user("alice"), &c).is_ok());
        assert!(limiter.check(&user("alice"), &d).is_ok());
        assert_eq!(
            limiter.check(&user("alice"), &c).unwrap_err().scope,
            Scope::User
        );
        assert!(limiter.check(&user("bob"), &c).is_ok());
        assert_eq!(limiter.len(), (2, 0));
    }

    #[test]
    fn idle_keys_are_pruned() {
        let limiter = RateLimiter::new(
            "test",
            Rate {
                per_sec: 1000.0,
                burst: 1.0,
            },
            Rate {
                per_sec: 1000.0,
                burst: 1.0,
            },
        );
        for i in 0..10_000 {
            let _ = limiter.check(&user(&format!("u{i}")), &video(&format!("v{i}")));
        }
        assert_eq!(limiter.len(), (10_000, 10_000));
        // After a millisecond every bucket (burst 1 at 1000/s) is full again.
        std::thread::sleep(Duration::from_millis(5));
        limiter.prune();
        assert_eq!(limiter.len(), (0, 0));
    }
}
