//! Retries of JetStream writes through a node failure or a leader election: the same
//! message (same `Nats-Msg-Id`) again, with jittered backoff, until a deadline. JetStream
//! deduplicates by the id, so a write whose ack was lost is stored once.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::store_full::WriteError;

/// How long one write may keep retrying before the request fails (503).
pub const WRITE_DEADLINE: Duration = Duration::from_secs(15);
/// How long one attempt waits for JetStream's ack.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// A JetStream context whose acks time out after [`ATTEMPT_TIMEOUT`], so a write to a
/// dead node is retried (on another) instead of waiting for the default 5 s.
pub fn context(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::ContextBuilder::new()
        .timeout(ATTEMPT_TIMEOUT)
        .build(client)
}

/// Runs `attempt` until it succeeds or `deadline` passes; returns the last error.
pub async fn until_deadline<T, E, F, Fut>(deadline: Duration, attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    until_deadline_or(deadline, |_| false, attempt).await
}

/// A JetStream write of a comment, like or receipt: retried to [`WRITE_DEADLINE`] through
/// a leader election, but not when the store refuses it as full (answered at once; see
/// [`crate::store_full`]).
pub async fn write<T, F, Fut>(attempt: F) -> Result<T, WriteError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WriteError>>,
{
    until_deadline_or(WRITE_DEADLINE, WriteError::is_full, attempt).await
}

/// Like [`until_deadline`], but an error for which `give_up` is true ends it at once.
pub async fn until_deadline_or<T, E, F, Fut>(
    deadline: Duration,
    give_up: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline_at = Instant::now() + deadline;
    let mut backoff = Duration::from_millis(25);
    let mut tries = 0u32;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => {
                if tries > 1 {
                    metrics::counter!("publisher_write_retries_total")
                        .increment(u64::from(tries - 1));
                }
                return Ok(v);
            }
            Err(e) if !give_up(&e) && Instant::now() + backoff < deadline_at => {
                tracing::debug!(error = %e, tries, "JetStream write failed, retrying");
                let jitter = rand::rng().random_range(0.5..1.5);
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_until_success() {
        let mut n = 0;
        let r: Result<u32, String> = until_deadline(Duration::from_secs(5), || {
            n += 1;
            let v = n;
            async move {
                if v < 3 {
                    Err(format!("fail {v}"))
                } else {
                    Ok(v)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let started = Instant::now();
        let r: Result<(), &str> =
            until_deadline(Duration::from_millis(200), || async { Err("down") }).await;
        assert_eq!(r, Err("down"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_full_store_is_not_retried() {
        let mut tries = 0;
        let started = Instant::now();
        let r: Result<(), WriteError> = write(|| {
            tries += 1;
            async { Err(WriteError::Full("insufficient resources".into())) }
        })
        .await;
        assert!(r.unwrap_err().is_full());
        assert_eq!(tries, 1);
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn other_write_failures_are_retried() {
        let mut tries = 0;
        let r: Result<u32, WriteError> = write(|| {
            tries += 1;
            let t = tries;
            async move {
                if t < 4 {
                    Err(WriteError::Failed("no leader".into()))
                } else {
                    Ok(t)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(4));
    }
}
