//! Shared measurements: sharded atomic counters and HDR latency histograms, plus the
//! run's phase, so thousands of viewer tasks can record without contending.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Shards of counters and histograms; a viewer uses shard `index % SHARDS`.
pub const SHARDS: usize = 16;
/// Highest latency tracked (10 min, in µs); larger values are recorded as this.
pub const MAX_US: u64 = 600_000_000;

/// An empty latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

macro_rules! counters {
    ($($(#[$doc:meta])* $f:ident),* $(,)?) => {
        /// Live counters (one shard).
        #[derive(Debug, Default)]
        pub struct Counters { $(pub $f: AtomicU64,)* }

        /// A snapshot of [`Counters`], or a difference of two, or a local tally.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counts { $($(#[$doc])* pub $f: u64,)* }

        impl Counters {
            /// Adds a local tally (skipping zero fields, so idle fields cost nothing).
            pub fn add(&self, c: &Counts) {
                $(if c.$f != 0 { self.$f.fetch_add(c.$f, Relaxed); })*
            }

            pub fn load(&self) -> Counts {
                Counts { $($f: self.$f.load(Relaxed),)* }
            }
        }

        impl Counts {
            pub fn plus(&self, o: &Counts) -> Counts {
                Counts { $($f: self.$f + o.$f,)* }
            }

            pub fn minus(&self, o: &Counts) -> Counts {
                Counts { $($f: self.$f.saturating_sub(o.$f),)* }
            }
        }
    };
}

counters!(
    /// Every SSE event.
    events,
    /// `comment` events seen for the first time (duplicates excluded).
    comments,
    /// `comment` events whose id is not above the viewer's last one.
    duplicates,
    /// `likes` events.
    likes_events,
    /// Sum of the `count` of `likes` events.
    likes_sum,
    /// `snapshot` events.
    snapshots,
    /// `viewers` events.
    viewer_counts,
    /// `reset` events.
    resets,
    /// Other event names.
    other_events,
    /// Events whose data did not parse.
    bad_events,
    /// `: …` comment lines (heartbeats).
    heartbeats,
    /// Response bytes read.
    bytes,
    /// Streams opened (200 head read).
    connects,
    /// Connection attempts that did not reach an open stream.
    connect_failures,
    /// Open streams that ended (closed by the server or broken).
    disconnects,
);

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
