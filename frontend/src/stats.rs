//! The frontend's hot-path metrics, registered once: looking a metric up by name for
//! every frame written to every viewer would cost more than the write's bookkeeping.

use std::sync::OnceLock;

use metrics::{Counter, Histogram};

pub struct Stats {
    /// Frames written to viewers' sockets.
    pub frames_out: Counter,
    /// Publisher acceptance → written to a viewer's socket (one write in 16 per viewer
    /// is sampled: `Viewer::record_written`).
    pub latency: Histogram,
    /// Viewers disconnected for falling behind the bounded queue.
    pub dropped_lagged: Counter,
}

/// The handles, registered with the process's recorder on first use.
pub fn get() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(|| Stats {
        frames_out: metrics::counter!("frontend_frames_out_total"),
        latency: metrics::histogram!("frontend_delivery_latency_seconds"),
        dropped_lagged: metrics::counter!("frontend_viewers_dropped_total", "reason" => "lagged"),
    })
}
