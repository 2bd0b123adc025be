//! Per-user rate limits: a token bucket per user and action, in memory.
//!
//! The table is a std `Mutex<HashMap>`: the critical section is a few arithmetic
//! operations and never awaits. Idle buckets are swept when the table grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use live_proto::UserId;

/// Sweep idle buckets once the table holds this many users.
const SWEEP_AT: usize = 100_000;

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<UserId, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `user`; `Err(seconds)` until the next one if there is none.
    pub fn check(&self, user: &UserId) -> Result<(), u64> {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: &UserId, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(user.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let alice = UserId::parse("alice").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&alice, t0).is_ok());
        }
        assert_eq!(limiter.check_at(&alice, t0), Err(1));
        assert!(limiter.check_at(&bob, t0).is_ok(), "users are independent");
        assert!(
            limiter
                .check_at(&alice, t0 + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .check_at(&alice, t0 + Duration::from_millis(500))
                .is_err()
        );
    }
}
