//! Conversations (the platform's write side): typing indicators and read receipts, for
//! both edges (HTTP `POST /v1/conversations/{id}/typing|read`, NATS
//! `ingest.conv.v1.{id}.typing|read`). Subjects and payloads: `proto/README.md`.
//!
//! **Typing** is not stored: a `Typing {user, until_ms}` is published (core NATS) on
//! `conv.v1.{region}.{conversation}.typing`, with `until_ms` = now + `--typing-ttl`.
//! Requests are coalesced per (conversation, user) by a [`TypingCoalescer`]: a burst of
//! keystrokes is one event, and the next one goes out only when the live indicator has
//! less than half its time left, so a user typing steadily costs one event per half
//! TTL. The coalescer is per publisher process: with several publishers in a region, a
//! burst spread over them may give one event per publisher (harmless: the same
//! indicator, extended).
//!
//! **A read receipt** is stored first, in the region's KV bucket `RECEIPTS_{region}`
//! (key `{conversation}.{user}`, value a `ReadReceipt`), then published on
//! `conv.v1.{region}.{conversation}.read` with the entry's KV revision, so a reader can
//! merge the bucket's snapshot with live events without going backwards
//! ([`live_proto::conversations`]). The answer (202) comes after the durable write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv;
use live_proto::subjects::{self, ConversationEvent};
use live_proto::{ConversationId, MessageId, Region, UserId, v1};
use prost::Message as _;

use crate::ratelimit::RateLimiter;
use crate::retry;
use crate::service::RefusedError;
use crate::store_full::{StoreHealth, classify};

/// Live indicators held before a new one is only published, not remembered (it is then
/// not coalesced): a bound on memory whatever the traffic.
pub const MAX_LIVE_INDICATORS: usize = 1_000_000;

/// What to do with a typing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingDecision {
    /// Publish a `Typing` with this `until_ms`.
    Publish { until_ms: i64 },
    /// An indicator live until `until_ms` was published recently: nothing to send.
    Coalesced { until_ms: i64 },
}

impl TypingDecision {
    pub fn until_ms(self) -> i64 {
        match self {
            TypingDecision::Publish { until_ms } | TypingDecision::Coalesced { until_ms } => {
                until_ms
            }
        }
    }
}

/// Coalesces typing requests per (conversation, user), on a clock the caller passes in
/// (UNIX ms). Pure: no I/O, no clock of its own. Memory: an entry lives until its
/// indicator expires; expired entries are swept at most once per TTL (amortised O(1)),
/// and at most [`MAX_LIVE_INDICATORS`] are held.
#[derive(Debug)]
pub struct TypingCoalescer {
    ttl_ms: i64,
    cap: usize,
    live: HashMap<(ConversationId, UserId), i64>,
    next_sweep_ms: i64,
}

impl TypingCoalescer {
    pub fn new(ttl: Duration) -> Self {
        Self::with_cap(ttl, MAX_LIVE_INDICATORS)
    }

    pub fn with_cap(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl_ms: (ttl.as_millis() as i64).max(1),
            cap,
            live: HashMap::new(),
            next_sweep_ms: i64::MIN,
        }
    }

    /// A request of `user` in `conversation` at `now_ms`: publish when no indicator is
    /// live or the live one has less than half the TTL left; else it is coalesced.
    pub fn decide(
        &mut self,
        conversation: &ConversationId,
        user: &UserId,
        now_ms: i64,
    ) -> TypingDecision {
        self.sweep(now_ms);
        let key = (conversation.clone(), user.clone());
        if let Some(&until_ms) = self.live.get(&key)
            && 2 * (until_ms - now_ms) >= self.ttl_ms
        {
            return TypingDecision::Coalesced { until_ms };
        }
        let until_ms = now_ms + self.ttl_ms;
        if self.live.len() < self.cap || self.live.contains_key(&key) {
            self.live.insert(key, until_ms);
        }
        TypingDecision::Publish { until_ms }
    }

    /// Forgets the indicator published with `until_ms` (its publish failed), so the
    /// next request publishes again.
    pub fn forget(&mut self, conversation: &ConversationId, user: &UserId, until_ms: i64) {
        let key = (conversation.clone(), user.clone());
        if self.live.get(&key) == Some(&until_ms) {
            self.live.remove(&key);
        }
    }

    /// Indicators held (live, or expired but not swept yet).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn sweep(&mut self, now_ms: i64) {
        // Never more than once per TTL, also at the cap: a flood must not make every
        // request scan the table.
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.live.retain(|_, until| *until > now_ms);
        self.next_sweep_ms = now_ms.saturating_add(self.ttl_ms);
    }
}

/// The answer to a typing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypingAccepted {
    /// Until when the user's indicator is live.
    pub until_ms: i64,
    /// Whether this request published an event (false: coalesced).
    pub published: bool,
}

/// The answer to a read receipt, once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAccepted {
    /// The entry's revision in `RECEIPTS_{region}`.
    pub revision: u64,
    pub accepted_at_ms: i64,
}

/// Typing and read receipts of the region's conversations.
pub struct Conversations {
    client: async_nats::Client,
    region: Region,
    receipts: kv::Store,
    typing: Mutex<TypingCoalescer>,
    limits: Limits,
    health: std::sync::Arc<StoreHealth>,
}

/// The rate limits of conversations (`None`: off, `--no-rate-limit`).
#[derive(Default)]
pub struct Limits {
    /// Typing requests per user.
    pub typing: Option<RateLimiter<ConversationId>>,
    /// Typing events published per conversation, whoever types: a conversation of
    /// 20,000 typists must not send its watchers 20,000 events.
    pub typing_events: Option<RateLimiter<ConversationId>>,
    /// Read receipts per user.
    pub reads: Option<RateLimiter<ConversationId>>,
}

impl Conversations {
    pub fn new(
        client: async_nats::Client,
        region: Region,
        receipts: kv::Store,
        typing_ttl: Duration,
        limits: Limits,
        health: std::sync::Arc<StoreHealth>,
    ) -> Self {
        Self {
            client,
            region,
            receipts,
            typing: Mutex::new(TypingCoalescer::new(typing_ttl)),
            limits,
            health,
        }
    }

    fn coalescer(&self) -> std::sync::MutexGuard<'_, TypingCoalescer> {
        self.typing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limit(
        limiter: &Option<RateLimiter<ConversationId>>,
        action: &'static str,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<(), RefusedError> {
        match limiter {
            Some(l) => l.check(user, conversation).map_err(|refused| {
                metrics::counter!("publisher_conversation_rate_limited_total", "action" => action)
                    .increment(1);
                RefusedError::RateLimited {
                    retry_after_secs: refused.retry_after_secs,
                }
            }),
            None => Ok(()),
        }
    }

    /// `user` is typing in `conversation`: publishes an indicator unless one was
    /// published recently (coalesced). Checked and authorised by the caller.
    pub async fn typing(
        &self,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<TypingAccepted, RefusedError> {
        Self::limit(&self.limits.typing, "typing", user, conversation)?;
        let now = live_proto::now_ms();
        let decision = {
            let mut coalescer = self.coalescer();
            let decision = coalescer.decide(conversation, user, now);
            metrics::gauge!("publisher_typing_indicators").set(coalescer.len() as f64);
            decision
        };
        let TypingDecision::Publish { until_ms } = decision else {
            metrics::counter!("publisher_typing_total", "outcome" => "coalesced").increment(1);
            return Ok(TypingAccepted {
                until_ms: decision.until_ms(),
                published: false,
            });
        };
        if let Some(events) = &self.limits.typing_events
            && let Err(refused) = events.check_target(conversation)
        {
            // Not published: the user's next request may try again.
            self.coalescer().forget(conversation, user, until_ms);
            metrics::counter!("publisher_typing_total", "outcome" => "conversation_limited")
                .increment(1);
            return Err(RefusedError::RateLimited {
                retry_after_secs: refused.retry_after_secs,
            });
        }
        let event = v1::Typing {
            conversation: conversation.to_string(),
            user: user.to_string(),
            until_ms,
            accepted_at_ms: now,
            region: self.region.to_string(),
        };
        let subject =
            subjects::conversation_live(&self.region, conversation, ConversationEvent::Typing);
        if let Err(e) = self
            .client
            .publish(subject, event.encode_to_vec().into())
            .await
        {
            self.coalescer().forget(conversation, user, until_ms);
            return Err(RefusedError::Unavailable(e.to_string()));
        }
        metrics::counter!("publisher_typing_total", "outcome" => "published").increment(1);
        Ok(TypingAccepted {
            until_ms,
            published: true,
        })
    }

    /// `user` has read `conversation` up to `message`: stores the receipt durably, then
    /// publishes it live with its KV revision.
    pub async fn read(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        message: &MessageId,
    ) -> Result<ReadAccepted, RefusedError> {
        Self::limit(&self.limits.reads, "read", user, conversation)?;
        let now = live_proto::now_ms();
        let mut receipt = v1::ReadReceipt {
            conversation: conversation.to_string(),
            user: user.to_string(),
            message: message.to_string(),
            accepted_at_ms: now,
            region: self.region.to_string(),
            revision: 0,
        };
        let key = subjects::receipt_key(conversation, user);
        let stored = bytes::Bytes::from(receipt.encode_to_vec());
        let revision = retry::write(|| async {
            self.receipts
                .put(&key, stored.clone())
                .await
                .map_err(|e| classify(&e))
        })
        .await;
        let revision = self
            .health
            .record("receipt", revision)
            .map_err(RefusedError::store)?;
        receipt.revision = revision;
        let subject =
            subjects::conversation_live(&self.region, conversation, ConversationEvent::Read);
        // Stored: the receipt is in every later snapshot even if this live event is lost.
        if let Err(e) = self
            .client
            .publish(subject, receipt.encode_to_vec().into())
            .await
        {
            metrics::counter!("publisher_receipt_publish_failed_total").increment(1);
            tracing::warn!(error = %e, "stored read receipt not published live");
        }
        metrics::counter!("publisher_receipts_total").increment(1);
        Ok(ReadAccepted {
            revision,
            accepted_at_ms: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &str, u: &str) -> (ConversationId, UserId) {
        (ConversationId::parse(c).unwrap(), UserId::parse(u).unwrap())
    }

    const TTL: Duration = Duration::from_secs(5);

    #[test]
    fn a_burst_is_one_event() {
        let mut t = TypingCoalescer::new(TTL);
        let (c, u) = ids("c", "alice");
        assert_eq!(
            t.decide(&c, &u, 1_000),
            TypingDecision::Publish { until_ms: 6_000 }
        );
        // Keystrokes for the first half of the indicator: coalesced.
        for now in (1_001..3_500).step_by(100) {
            assert_eq!(
                t.decide(&c, &u, now),
                TypingDecision::Coalesced { until_ms: 6_000 },
                "at {now}"
            );
        }
        // Less than half left: extended with a new event.
        assert_eq!(
            t.decide(&c, &u, 3_501),
            TypingDecision::Publish { until_ms: 8_501 }
        );
        assert_eq!(t.decide(&c, &u, 3_600).until_ms(), 8_501);
    }

    #[test]
    fn users_and_conversations_are_independent() {
        let mut t = TypingCoalescer::new(TTL);
        let (c, alice) = ids("c", "alice");
        let (d, bob) = ids("d", "bob");
        assert!(matches!(
            t.decide(&c, &alice, 0),
            TypingDecision::Publish { .. }
        ));
        assert!(matches!(
            t.decide(&c, &bob, 1),
            TypingDecision::Publish { .. }
        ));
        assert!(matches!(
            t.decide(&d, &alice, 2),
            TypingDecision::Publish { .. }
        ));
        assert!(matches!(
            t.decide(&c, &alice, 3),
            TypingDecision::Coalesced { .. }
        ));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn after_the_indicator_expired_it_publishes_again() {
        let mut t = TypingCoalescer::new(TTL);
        let (c, u) = ids("c", "alice");
        t.decide(&c, &u, 0);
        assert_eq!(
            t.decide(&c, &u, 60_000),
            TypingDecision::Publish { until_ms: 65_000 }
        );
    }

    #[test]
    fn a_failed_publish_is_forgotten() {
        let mut t = TypingCoalescer::new(TTL);
        let (c, u) = ids("c", "alice");
        let until_ms = t.decide(&c, &u, 0).until_ms();
        t.forget(&c, &u, until_ms);
        assert!(matches!(
            t.decide(&c, &u, 10),
            TypingDecision::Publish { .. }
        ));
        // Forgetting an older indicator leaves the newer one.
        t.forget(&c, &u, until_ms);
        assert!(matches!(
            t.decide(&c, &u, 20),
            TypingDecision::Coalesced { .. }
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = TypingCoalescer::with_cap(TTL, 1_000);
        // 10,000 users type once each within one TTL: at most the cap is held, and
        // every one of them is published.
        for i in 0..10_000 {
            let (c, u) = ids("c", &format!("u{i}"));
            assert!(matches!(
                t.decide(&c, &u, i),
                TypingDecision::Publish { .. }
            ));
        }
        assert!(t.len() <= 1_000, "{}", t.len());
        // Once their indicators expired, one request sweeps them.
        let (c, u) = ids("c", "late");
        t.decide(&c, &u, 100_000);
        assert_eq!(t.len(), 1);
        // Without a cap in sight, expired entries go at the next sweep (once per TTL).
        let mut t = TypingCoalescer::new(TTL);
        for i in 0..1_000 {
            let (c, u) = ids("c", &format!("u{i}"));
            t.decide(&c, &u, 0);
        }
        t.decide(&c, &u, 5_001);
        assert_eq!(t.len(), 1);
    }
}
