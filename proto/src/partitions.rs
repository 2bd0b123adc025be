//! Partitions of a region's write path: a region stores its comments and likes in N
//! JetStream streams (`--partitions N`, the same on every service of the region), and a
//! video always lands in the same one.
//!
//! The partition of a video is `fnv1a_32(id bytes) % N` (FNV-1a, 32 bit: offset basis
//! 2166136261, prime 16777619), computed by every service from the validated id. We hash
//! in the services rather than with a NATS subject mapping (`partition(N, …)`) because
//! the frontends need the partition to address a video's history and totals anyway, and a
//! mapping would be a second copy of N in every server configuration that must agree
//! with the services' flag; here N lives in one place per service.
//!
//! Changing N moves most videos to another partition: their stored comments stay where
//! they were (a resume cursor from before the change gets `reset`). Choose N for the
//! region's expected peak, e.g. a few per NATS server so leaders spread (docs/capacity.md).

use std::fmt;

use crate::{InvalidInput, VideoId};

/// Most partitions per region: a stream is a Raft group, and a region rarely needs more.
pub const MAX_PARTITIONS: u32 = 64;

/// How many partitions a region has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions(u32);

/// One partition of a region: `0 ≤ p < N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(u32);

impl Partitions {
    /// `n` must be within `1..=MAX_PARTITIONS`.
    pub fn new(n: u32) -> Result<Self, InvalidInput> {
        if n == 0 || n > MAX_PARTITIONS {
            return Err(InvalidInput(format!(
                "--partitions must be 1 to {MAX_PARTITIONS}, not {n}"
            )));
        }
        Ok(Self(n))
    }

    /// One partition (the default).
    pub const fn one() -> Self {
        Self(1)
    }

    pub fn count(self) -> u32 {
        self.0
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        (0..self.0).map(Partition)
    }

    /// The partition that stores `video`.
    pub fn of(self, video: &VideoId) -> Partition {
        Partition(fnv1a_32(video.as_str().as_bytes()) % self.0)
    }
}

/// `--partitions N`: the count, checked like [`Partitions::new`].
impl std::str::FromStr for Partitions {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().parse().map_err(|_| {
            InvalidInput(format!(
                "--partitions must be a whole number from 1 to {MAX_PARTITIONS}, not {s:?}"
            ))
        })?;
        Self::new(n)
    }
}

impl fmt::Display for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for Partitions {
    fn default() -> Self {
        Self::one()
    }
}

impl Partition {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// FNV-1a, 32 bit. Written here because it is six lines and must never change: the
/// partition of every stored video depends on it.
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn a_video_always_maps_to_the_same_partition() {
        let p = Partitions::new(8).unwrap();
        let v = VideoId::parse("demo").unwrap();
        assert_eq!(p.of(&v), p.of(&v));
        assert_eq!(p.of(&v).index(), (fnv1a_32(b"demo") % 8) as usize);
        assert_eq!(Partitions::one().of(&v).index(), 0);
    }

    #[test]
    fn videos_spread_over_partitions() {
        let p = Partitions::new(4).unwrap();
        let mut counts = [0usize; 4];
        for i in 0..1000 {
            let v = VideoId::parse(&format!("v{i}")).unwrap();
            counts[p.of(&v).index()] += 1;
        }
        // 250 each on average; a hash that clumps would leave one far off.
        assert!(
            counts.iter().all(|&c| (200..=300).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn the_count_is_checked() {
        assert_eq!("3".parse::<Partitions>(), Ok(Partitions::new(3).unwrap()));
        for bad in ["0", "-2", "65", "x", ""] {
            assert!(bad.parse::<Partitions>().is_err(), "{bad}");
        }
        assert!(Partitions::new(0).is_err());
        assert!(Partitions::new(MAX_PARTITIONS + 1).is_err());
        assert_eq!(Partitions::new(3).unwrap().all().count(), 3);
    }
}
