//! The viewers' counters: one field list, as live atomic counters ([`Counters`], sharded
//! by the load generator) and as the snapshot a result carries ([`Counts`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

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
