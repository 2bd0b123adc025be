//! Shared measurements: sharded atomic counters and HDR latency histograms, plus the
//! run's phase, so thousands of viewer tasks can record without contending.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

pub use benchreport::counts::{Counters, Counts};
pub use benchreport::hist::{MAX_US, new_histogram};
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
