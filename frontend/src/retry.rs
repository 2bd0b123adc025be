//! The `retry:` every stream starts with: how long a viewer's `EventSource` waits before it
//! reconnects once the stream breaks, drawn uniformly from `[--retry-min, --retry-max]`
//! (defaults 2 s and 10 s) per stream.
//!
//! # Why a window, and how wide
//!
//! When a frontend dies (`kill -9`, a lost machine) every one of its viewers notices at
//! the same instant, and each reconnects after its own `retry:`. Drawn uniformly over a
//! window of `W = max − min` seconds, the `V` viewers of the dead node arrive at the
//! surviving nodes at about `V / W` connects per second (spread over the survivors by the
//! load balancer), starting `min` after the death and ending `max` after it:
//!
//! | viewers on the dead node | window 2–4 s (W = 2) | window 2–10 s (W = 8, default) |
//! |---|---|---|
//! | 10,000 | 5,000 connects/s | 1,250 connects/s |
//! | 100,000 | 50,000 connects/s | 12,500 connects/s |
//!
//! Each connect costs a survivor an HTTP request, a room join and a replay of what the
//! viewer missed (from the room's in-memory ring when it reaches back far enough, else a
//! JetStream read: `frontend_history_reads_total`). The default 2–10 s keeps the
//! survivors' arrival rate of a 100k-viewer node near 12.5k/s (measured at 10k viewers
//! on 2 cores: the survivors' own p99 ×1.4–1.8 during the storm, as much as after it with
//! the larger audience; docs/performance.md), while no viewer waits longer than 10 s
//! (and it loses nothing meanwhile: it resumes with `Last-Event-ID`). The lower bound
//! keeps a viewer whose connection merely blinked from waiting long; the upper bound is
//! the worst delay a viewer of a dead node sees. Nodes with more viewers, or fewer
//! survivors to share them, want a wider window.
//!
//! Both stream endpoints (`/v1/videos/{video}/events` and `/v1/stream`) draw their
//! `retry:` from [`RetryWindow::pick_ms`]; a graceful stop (SIGTERM) spreads the ends of
//! the streams over `--drain` on top of it.

use std::time::Duration;

use live_common::cli::ConfigError;
use rand::Rng;

/// The longest `--retry-max` accepted: beyond it a viewer of a dead node waits so long
/// that the window is surely a typo.
pub const MAX_RETRY: Duration = Duration::from_secs(600);

/// `[min, max]` of the `retry:` sent to viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryWindow {
    pub min: Duration,
    pub max: Duration,
}

impl RetryWindow {
    /// Checks the flags' values: both more than zero, `max` at least `min`, at most
    /// [`MAX_RETRY`]. The error names the flag to blame.
    pub fn new(min: Duration, max: Duration) -> Result<Self, ConfigError> {
        if min.is_zero() {
            return Err(ConfigError::new("retry-min", "must be more than 0"));
        }
        if max < min {
            return Err(ConfigError::new(
                "retry-max",
                format!("must be at least --retry-min ({min:?}), is {max:?}"),
            ));
        }
        if max > MAX_RETRY {
            return Err(ConfigError::new(
                "retry-max",
                format!("must be at most {MAX_RETRY:?}, is {max:?}"),
            ));
        }
        Ok(RetryWindow { min, max })
    }

    /// A `retry:` in milliseconds, uniform over the window (inclusive).
    pub fn pick_ms(&self, rng: &mut impl Rng) -> u64 {
        let (lo, hi) = (self.min.as_millis() as u64, self.max.as_millis() as u64);
        rng.random_range(lo..=hi.max(lo))
    }

    /// Connects per second the survivors receive when `viewers` viewers lose their node
    /// at once (their reconnects spread uniformly over the window; all at once, `viewers`
    /// in the same millisecond, if the window is a single value).
    pub fn arrival_rate(&self, viewers: u64) -> f64 {
        let width = (self.max - self.min).as_secs_f64().max(0.001);
        viewers as f64 / width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn bad_windows_name_the_flag_to_blame() {
        assert_eq!(
            RetryWindow::new(Duration::ZERO, secs(2)).unwrap_err().flag,
            "retry-min"
        );
        assert_eq!(
            RetryWindow::new(secs(5), secs(2)).unwrap_err().flag,
            "retry-max"
        );
        assert_eq!(
            RetryWindow::new(secs(1), secs(601)).unwrap_err().flag,
            "retry-max"
        );
        assert!(RetryWindow::new(secs(2), secs(2)).is_ok());
    }

    #[test]
    fn picks_cover_the_window_and_stay_inside_it() {
        let w = RetryWindow::new(secs(2), secs(10)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let picks: Vec<u64> = (0..10_000).map(|_| w.pick_ms(&mut rng)).collect();
        assert!(picks.iter().all(|&p| (2_000..=10_000).contains(&p)));
        // Uniform: each eighth of the window gets about an eighth of the picks.
        for k in 0..8 {
            let lo = 2_000 + k * 1_000;
            let n = picks.iter().filter(|&&p| p >= lo && p < lo + 1_000).count();
            assert!((1_000..1_500).contains(&n), "[{lo}, +1 s): {n}");
        }
        let fixed = RetryWindow::new(secs(3), secs(3)).unwrap();
        assert_eq!(fixed.pick_ms(&mut rng), 3_000);
    }

    #[test]
    fn the_arrival_rate_is_viewers_over_the_width() {
        let w = RetryWindow::new(secs(2), secs(10)).unwrap();
        assert_eq!(w.arrival_rate(100_000), 12_500.0);
        let narrow = RetryWindow::new(secs(2), secs(4)).unwrap();
        assert_eq!(narrow.arrival_rate(10_000), 5_000.0);
    }
}
