//! Shared measurements: sharded atomic counters and HDR latency histograms, plus the
//! run's phase, so thousands of viewer tasks can record without contending.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

pub use benchreport::counts::{Counters, Counts};
pub use benchreport::hist::{MAX_US, new_histogram};
pub use benchreport::report::Recovery;
use hdrhistogram::Histogram;

/// Shards of counters and histograms; a viewer uses shard `index % SHARDS`.
pub const SHARDS: usize = 16;
/// What the run is doing; viewers count window comments from `Measure` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Ramp = 0,
    Warmup = 1,
    Measure = 2,
    Drain = 3,
    Done = 4,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
            Phase::Drain => "drain",
            Phase::Done => "done",
        }
    }
}

/// One shard, on its own cache lines.
#[repr(align(128))]
pub struct Shard {
    pub counters: Counters,
    /// End-to-end comment latency (publisher accept → viewer receive), µs.
    pub latency: Mutex<Histogram<u64>>,
}

/// Everything the viewers record.
pub struct Stats {
    pub shards: Box<[Shard]>,
    phase: AtomicU8,
    /// Broken streams and their viewers' return (rare: one lock per event).
    recovery: Mutex<Recovery>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    counters: Counters::default(),
                    latency: Mutex::new(new_histogram()),
                })
                .collect(),
            phase: AtomicU8::new(Phase::Ramp as u8),
            recovery: Mutex::new(Recovery::default()),
        }
    }
}

impl Stats {
    pub fn shard(&self, index: usize) -> &Shard {
        &self.shards[index % SHARDS]
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Ramp,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            3 => Phase::Drain,
            _ => Phase::Done,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Relaxed);
    }

    /// Sum of all shards' counters.
    pub fn counts(&self) -> Counts {
        self.shards
            .iter()
            .fold(Counts::default(), |acc, s| acc.plus(&s.counters.load()))
    }

    /// Streams open right now.
    pub fn connected(&self) -> u64 {
        let c = self.counts();
        c.connects.saturating_sub(c.disconnects)
    }

    /// All shards' latencies merged.
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for s in self.shards.iter() {
            let h = s.latency.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).expect("same bounds");
        }
        all
    }

    /// Outages and returns so far.
    pub fn recovery(&self) -> Recovery {
        *self.recovery.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_recovery(&self, f: impl FnOnce(&mut Recovery)) {
        f(&mut self.recovery.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// An open stream ended at `at_ms` (UNIX ms).
    pub fn stream_broke(&self, at_ms: u64) {
        self.with_recovery(|r| {
            r.dropped += 1;
            if r.first_drop_ms == 0 || at_ms < r.first_drop_ms {
                r.first_drop_ms = at_ms;
            }
        });
    }

    /// A viewer whose stream broke at `since_ms` has one open again at `at_ms`.
    pub fn reconnected(&self, since_ms: u64, at_ms: u64) {
        self.with_recovery(|r| {
            r.reconnected += 1;
            r.last_reconnect_ms = r.last_reconnect_ms.max(at_ms);
            r.max_reconnect_ms = r.max_reconnect_ms.max(at_ms.saturating_sub(since_ms));
        });
    }

    /// A viewer whose stream broke at `since_ms` received, at `at_ms`, a comment accepted
    /// after that: it has everything it missed.
    pub fn caught_up(&self, since_ms: u64, at_ms: u64) {
        self.with_recovery(|r| {
            r.caught_up += 1;
            r.last_caught_up_ms = r.last_caught_up_ms.max(at_ms);
            r.max_caught_up_ms = r.max_caught_up_ms.max(at_ms.saturating_sub(since_ms));
        });
    }

    /// Empties the latency histograms (at the start of the measurement window).
    pub fn reset_latency(&self) {
        for s in self.shards.iter() {
            s.latency.lock().unwrap_or_else(|e| e.into_inner()).reset();
        }
    }
}

/// Records `us` into `h`, clamping to the tracked range.
pub fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.max(1));
}
