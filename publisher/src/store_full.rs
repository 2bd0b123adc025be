//! A full store: JetStream refusing a write because it has no room (the server's or the
//! account's `max_file_store`/`max_mem_store`, or a stream's limits with `discard: new`).
//!
//! Unlike a leader election, a full store does not heal within the write deadline, so a
//! write refused as full is not retried: it is answered at once with `503` and a JSON error
//! naming the cause (`{"error": "the store is full: …"}`), on HTTP and in the NATS
//! ingest reply. While the store refuses writes as full, `/healthz` answers `503` with the
//! cause, so a load balancer stops sending traffic; it answers `200` again as soon as a
//! write succeeds — a request's, or the probe's: while full, every [`PROBE_INTERVAL`] the
//! publisher writes one tiny key to its region's idempotency bucket (a key no like uses,
//! expiring with the bucket's window) and clears the state if that write is stored. An idle
//! publisher (no write stored for [`IDLE_PROBE_INTERVAL`]) probes too, so it notices a store
//! that filled while nobody wrote; one that stores writes never probes.
//! Writes themselves are never held back by the state: every request tries JetStream, so
//! the first one after a purge succeeds.
//!
//! [`classify`] is the one place that tells "full" from other failures; comments, likes,
//! read receipts and the probe all use it. [`FullState`] is the decision, pure and tested;
//! [`StoreHealth`] shares it between the writers and `/healthz`.
//!
//! What nats-server 2.14 answers (measured: `jetstream { max_file_store: 1MB }`, then
//! writes until refused): `{"error":{"code":503,"err_code":10023,"description":
//! "insufficient resources"}}`, for every stream of the server, at once (no timeout); a
//! stream's own `max_bytes`/`max_msgs` with `discard: new` reached: `{"code":503,
//! "err_code":10077,"description":"maximum bytes exceeded"}` (`"maximum messages
//! exceeded"`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode};

/// How often a full store is probed with a tiny write.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a store that is not known full is probed while no write is stored.
pub const IDLE_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Whether the probe writes now, `quiet` after the last probe or stored write: while
/// full, every [`PROBE_INTERVAL`]; else after [`IDLE_PROBE_INTERVAL`] without either (a
/// stored write tells as much as a probe).
pub fn probe_due(full: bool, quiet: Duration) -> bool {
    quiet
        >= if full {
            PROBE_INTERVAL
        } else {
            IDLE_PROBE_INTERVAL
        }
}

/// JetStream error codes that mean "no room".
const FULL_CODES: [ErrorCode; 2] = [
    ErrorCode::INSUFFICIENT_RESOURCES, // 10023: server or account storage limit
    ErrorCode::STORAGE_RESOURCES_EXCEEDED, // 10047
];

/// What a store failure says when it means "no room" (also under other error codes, e.g.
/// 10077 "maximum bytes exceeded" of a stream with `discard: new`, or a disk full).
const FULL_TEXTS: [&str; 6] = [
    "insufficient resources",
    "insufficient storage",
    "maximum bytes exceeded",
    "maximum messages exceeded",
    "resources exceeded",
    "no space left",
];

/// A failed JetStream write, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store refused the write for want of room: not retried.
    #[error("the store is full: {0}")]
    Full(String),
    /// Anything else (a timeout, no leader, a lost connection): retried to the deadline.
    #[error("{0}")]
    Failed(String),
}

impl WriteError {
    pub fn is_full(&self) -> bool {
        matches!(self, WriteError::Full(_))
    }
}

/// Classifies a failed write: [`WriteError::Full`] if JetStream refused it for want of
/// room (looked for along the error's whole `source` chain), else [`WriteError::Failed`].
pub fn classify(err: &(dyn std::error::Error + 'static)) -> WriteError {
    match full_cause(err) {
        Some(cause) => WriteError::Full(cause),
        None => WriteError::Failed(err.to_string()),
    }
}

/// The cause, if `err` (or one of its sources) is JetStream refusing a write as full.
pub fn full_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(api) = e.downcast_ref::<jetstream::Error>()
            && (FULL_CODES.contains(&api.error_code()) || is_full_text(&api.to_string()))
        {
            return Some(format!("JetStream refused the write: {api}"));
        }
        next = e.source();
    }
    // Not a typed JetStream error (or one this client version wraps differently): the
    // text, as the server words it.
    let text = err.to_string();
    is_full_text(&text).then(|| format!("JetStream refused the write: {text}"))
}

fn is_full_text(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    FULL_TEXTS.iter().any(|t| text.contains(t))
}

/// What one write (or probe) showed about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A write was stored: there is room.
    Stored,
    /// A write was refused as full, for this cause.
    Full(String),
    /// A write failed otherwise: says nothing about room.
    Failed,
}

impl<T> From<&Result<T, WriteError>> for Observation {
    fn from(r: &Result<T, WriteError>) -> Self {
        match r {
            Ok(_) => Observation::Stored,
            Err(WriteError::Full(cause)) => Observation::Full(cause.clone()),
            Err(WriteError::Failed(_)) => Observation::Failed,
        }
    }
}

/// How the state changed with an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    BecameFull,
    Cleared,
}

/// The decision: full from a write refused as full until a write is stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FullState {
    cause: Option<String>,
}

impl FullState {
    pub fn observe(&mut self, o: Observation) -> Change {
        match o {
            Observation::Stored => match self.cause.take() {
                Some(_) => Change::Cleared,
                None => Change::None,
            },
            Observation::Full(cause) => match self.cause.replace(cause) {
                Some(_) => Change::None,
                None => Change::BecameFull,
            },
            Observation::Failed => Change::None,
        }
    }

    /// Why the store refuses writes, while it does.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    pub fn is_full(&self) -> bool {
        self.cause.is_some()
    }
}

/// The state shared by the writers, the probe and `/healthz`. Cheap on the hot path: a
/// stored write while not full is one atomic load.
#[derive(Debug, Default)]
pub struct StoreHealth {
    full: AtomicBool,
    /// Writes stored (requests' and probes'), for the idle probe.
    stored: AtomicU64,
    state: Mutex<FullState>,
}

impl StoreHealth {
    /// Records what a write of `what` (`"comment"`, `"like"`, `"receipt"`, `"probe"`)
    /// showed.
    pub fn observe(&self, what: &'static str, o: Observation) {
        if o == Observation::Stored {
            self.stored.fetch_add(1, Ordering::Relaxed);
            if !self.full.load(Ordering::Acquire) {
                return;
            }
        }
        if let Observation::Full(cause) = &o {
            metrics::counter!("publisher_store_full_total", "write" => what).increment(1);
            tracing::debug!(%cause, what, "write refused: the store is full");
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.observe(o) {
            Change::BecameFull => {
                tracing::error!(
                    cause = state.cause().unwrap_or_default(),
                    "the store is full: writes are refused"
                );
                metrics::gauge!("publisher_store_full").set(1.0);
            }
            Change::Cleared => {
                tracing::info!("the store has room again: writes are stored");
                metrics::gauge!("publisher_store_full").set(0.0);
            }
            Change::None => {}
        }
        self.full.store(state.is_full(), Ordering::Release);
    }

    /// Records a write's outcome and hands it back.
    pub fn record<T>(&self, what: &'static str, r: Result<T, WriteError>) -> Result<T, WriteError> {
        self.observe(what, Observation::from(&r));
        r
    }

    /// Why the store refuses writes (for `/healthz`), while it does.
    pub fn cause(&self) -> Option<String> {
        if !self.full.load(Ordering::Acquire) {
            return None;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.cause().map(|c| format!("the store is full: {c}"))
    }
}

/// Writes a tiny key (`health.{instance}`, two tokens: no like's key, which has three) to
/// `bucket` when [`probe_due`]: so the state clears once there is room even if no request
/// comes, and an idle publisher notices a full store.
pub async fn probe(
    health: std::sync::Arc<StoreHealth>,
    bucket: jetstream::kv::Store,
    instance: String,
    stop: tokio_util::sync::CancellationToken,
) {
    let key = format!("health.{instance}");
    // Finer than the intervals, so a due probe is at most a quarter late.
    let mut tick = tokio::time::interval(PROBE_INTERVAL / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last probe or stored write, and the count of stored writes then.
    let mut last_sign = tokio::time::Instant::now();
    let mut stored_then = health.stored.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stored = health.stored.load(Ordering::Relaxed);
        if stored != stored_then {
            (stored_then, last_sign) = (stored, tokio::time::Instant::now());
        }
        if !probe_due(health.full.load(Ordering::Acquire), last_sign.elapsed()) {
            continue;
        }
        last_sign = tokio::time::Instant::now();
        let written = tokio::time::timeout(
            crate::retry::ATTEMPT_TIMEOUT,
            bucket.put(&key, bytes::Bytes::from_static(b"1")),
        )
        .await;
        let outcome = match written {
            Ok(Ok(_)) => Observation::Stored,
            Ok(Err(e)) => Observation::from(&Err::<(), _>(classify(&e))),
            Err(_) => Observation::Failed,
        };
        health.observe("probe", outcome);
        stored_then = health.stored.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(json: &str) -> jetstream::Error {
        serde_json::from_str(json).unwrap()
    }

    /// An error wrapping `source`, as async-nats wraps the server's answer.
    #[derive(Debug, thiserror::Error)]
    #[error("publish failed")]
    struct Wrapped(#[source] jetstream::Error);

    #[test]
    fn insufficient_resources_is_full_through_the_source_chain() {
        // What nats-server 2.14 answers with `max_file_store` reached.
        let e = Wrapped(api_error(
            r#"{"code":503,"err_code":10023,"description":"insufficient resources"}"#,
        ));
        let c = classify(&e);
        assert!(c.is_full(), "{c:?}");
        assert_eq!(
            c.to_string(),
            "the store is full: JetStream refused the write: insufficient resources (code 503, error code 10023)"
        );
    }

    #[test]
    fn a_stream_full_with_discard_new_is_full() {
        let e =
            api_error(r#"{"code":503,"err_code":10077,"description":"maximum bytes exceeded"}"#);
        assert!(classify(&e).is_full());
        let e = api_error(
            r#"{"code":500,"err_code":10047,"description":"storage resources exceeded for account"}"#,
        );
        assert!(classify(&e).is_full());
    }

    #[test]
    fn an_untyped_error_is_told_by_its_text() {
        let e: Box<dyn std::error::Error> = "write failed: no space left on device".into();
        assert!(classify(e.as_ref()).is_full());
    }

    #[test]
    fn a_leader_election_or_timeout_is_not_full() {
        for json in [
            r#"{"code":503,"err_code":10008,"description":"JetStream cluster not available"}"#,
            r#"{"code":503,"err_code":10039,"description":"JetStream not enabled"}"#,
            r#"{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}"#,
        ] {
            let c = classify(&Wrapped(api_error(json)));
            assert!(!c.is_full(), "{json}: {c:?}");
        }
        let e: Box<dyn std::error::Error> = "timed out: didn't receive ack in time".into();
        assert_eq!(
            classify(e.as_ref()),
            WriteError::Failed("timed out: didn't receive ack in time".into())
        );
    }

    #[test]
    fn full_from_a_refusal_until_a_write_is_stored() {
        let mut s = FullState::default();
        assert_eq!(s.observe(Observation::Stored), Change::None);
        assert!(!s.is_full());
        assert_eq!(s.observe(Observation::Full("a".into())), Change::BecameFull);
        assert_eq!(s.cause(), Some("a"));
        assert!(s.is_full());
        // Another refusal keeps it full with the latest cause; a timeout says nothing.
        assert_eq!(s.observe(Observation::Full("b".into())), Change::None);
        assert_eq!(s.observe(Observation::Failed), Change::None);
        assert_eq!(s.cause(), Some("b"));
        assert_eq!(s.observe(Observation::Stored), Change::Cleared);
        assert_eq!(s.cause(), None);
        assert!(!s.is_full());
    }

    #[test]
    fn probes_while_full_and_while_idle_only() {
        let s = Duration::from_secs;
        // Full: every second.
        assert!(!probe_due(true, Duration::from_millis(500)));
        assert!(probe_due(true, s(1)));
        // Not full: after 5 s without a probe or a stored write.
        assert!(!probe_due(false, s(1)));
        assert!(!probe_due(false, s(4)));
        assert!(probe_due(false, s(5)));
    }

    #[test]
    fn shared_health_names_the_cause_while_full() {
        let h = StoreHealth::default();
        assert_eq!(h.cause(), None);
        let r: Result<(), _> = h.record("comment", Err(WriteError::Full("x".into())));
        assert!(r.is_err());
        assert_eq!(h.cause().as_deref(), Some("the store is full: x"));
        h.observe("like", Observation::Failed);
        assert!(h.cause().is_some());
        let _ = h.record("probe", Ok::<_, WriteError>(()));
        assert_eq!(h.cause(), None);
    }
}
