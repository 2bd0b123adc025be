//! Sequencing one region's comments in one room: from what arrives live (a comment's
//! sequence and the video's previous one, `Nats-Last-Sequence`) and what JetStream reads
//! return, decide what to deliver now, what to hold back, and what to read. Pure: no I/O
//! and no clock; the room's task performs the reads it asks for, feeds the results back
//! and schedules retries, so a read that waits (a partition electing a new leader, a
//! mirror catching up after a cut) never stops the room's heartbeats, likes and viewer
//! counts.
//!
//! The rule: a comment is delivered only once every stored comment before it was, in
//! sequence order, each once. A gap (a live comment whose previous one was not delivered)
//! holds the live comments back and asks for a read; a read that fails or does not yet
//! close the gap is retried until it does. A read returns every stored comment of the
//! video after a sequence, in order, so a comment missing from its answer before one it
//! returns is not stored any more (expired, or removed by a moderator): it cannot hold
//! the video back.

use std::collections::BTreeMap;

/// A read of the comments `after < seq <= upto` the room should perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub after: u64,
    pub upto: u64,
}

/// What to do after an input: deliver these, in order, and maybe start a read.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<T> {
    pub deliver: Vec<(u64, T)>,
    pub read: Option<Read>,
    /// The input was a comment already delivered.
    pub duplicate: bool,
}

impl<T> Default for Step<T> {
    fn default() -> Self {
        Self {
            deliver: Vec::new(),
            read: None,
            duplicate: false,
        }
    }
}

/// One region's sequence in one room.
#[derive(Debug)]
pub struct Sequencer<T> {
    /// Newest delivered sequence.
    last: u64,
    /// Whether `last` is a real position (read from JetStream or set by a live comment).
    known: bool,
    /// Live comments waiting for a gap before them to close: seq → (prev, comment).
    held: BTreeMap<u64, (u64, T)>,
    /// Newest sequence known to be stored (from live comments and reads).
    target: u64,
    /// A read is in flight.
    reading: bool,
    /// Most live comments held; beyond it the newest is dropped (the reads bring it).
    max_held: usize,
}

impl<T> Sequencer<T> {
    pub fn new(max_held: usize) -> Self {
        Self {
            last: 0,
            known: false,
            held: BTreeMap::new(),
            target: 0,
            reading: false,
            max_held: max_held.max(1),
        }
    }

    /// The newest delivered sequence, and whether it is known.
    pub fn position(&self) -> (u64, bool) {
        (self.last, self.known)
    }

    /// Whether comments are missing: held back, or known to be stored but not delivered.
    pub fn has_gap(&self) -> bool {
        self.known && (!self.held.is_empty() || self.target > self.last)
    }

    /// The newest stored sequence, read from JetStream when the room opened. A position
    /// already known (a live comment set it) is kept: moving it to the newest stored
    /// sequence would skip comments stored but still on their way.
    pub fn baseline(&mut self, newest: u64) {
        if !self.known {
            self.last = self.last.max(newest);
            self.known = true;
        }
    }

    /// A comment that arrived live: `seq`, and the video's previous sequence `prev`.
    pub fn live(&mut self, seq: u64, prev: u64, comment: T) -> Step<T> {
        let mut step = Step::default();
        if self.known && seq <= self.last {
            step.duplicate = true;
            return step;
        }
        self.target = self.target.max(seq);
        if !self.known || (prev <= self.last && self.held.is_empty()) {
            self.known = true;
            self.last = seq;
            step.deliver.push((seq, comment));
            return step;
        }
        if self.held.insert(seq, (prev, comment)).is_some() {
            step.duplicate = true;
        }
        if self.held.len() > self.max_held {
            self.held.pop_last();
        }
        step.read = self.start_read();
        step
    }

    /// The newest stored sequence, learnt from JetStream (after a reconnect, or the
    /// periodic check of another region's mirror): read up to it if behind.
    pub fn newest(&mut self, newest: u64) -> Option<Read> {
        if !self.known {
            return None;
        }
        self.target = self.target.max(newest);
        self.start_read()
    }

    /// The read in flight returned: every stored comment `after < seq <= reached`, in
    /// order (`Some`), or failed (`None`). Delivers what is now in sequence. A gap still
    /// open is for the caller to retry (see [`has_gap`](Self::has_gap) and
    /// [`retry`](Self::retry)).
    pub fn read_done(&mut self, comments: Option<Vec<(u64, T)>>) -> Step<T> {
        self.reading = false;
        let mut step = Step::default();
        for (seq, comment) in comments.into_iter().flatten() {
            if seq > self.last {
                self.last = seq;
                step.deliver.push((seq, comment));
            }
        }
        self.release_held(&mut step);
        step
    }

    /// Starts the read again if a gap is still open and none is in flight.
    pub fn retry(&mut self) -> Option<Read> {
        if self.has_gap() {
            self.start_read()
        } else {
            None
        }
    }

    /// Delivers held comments that are now in sequence; drops held duplicates.
    fn release_held(&mut self, step: &mut Step<T>) {
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            let prev = entry.get().0;
            if seq <= self.last {
                entry.remove();
            } else if prev <= self.last {
                let (_, comment) = entry.remove();
                self.last = seq;
                step.deliver.push((seq, comment));
            } else {
                break;
            }
        }
    }

    fn start_read(&mut self) -> Option<Read> {
        if self.reading || !self.has_gap() {
            return None;
        }
        self.reading = true;
        let upto = self
            .target
            .max(self.held.last_key_value().map_or(0, |(s, _)| *s));
        Some(Read {
            after: self.last,
            upto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(step: &Step<&'static str>) -> Vec<u64> {
        step.deliver.iter().map(|(s, _)| *s).collect()
    }

    fn known_at(last: u64) -> Sequencer<&'static str> {
        let mut s = Sequencer::new(64);
        s.baseline(last);
        s
    }

    #[test]
    fn in_order_comments_go_straight_out() {
        let mut s = known_at(10);
        assert_eq!(seqs(&s.live(11, 10, "a")), vec![11]);
        // Another video's comments sit between: prev is this video's previous sequence.
        assert_eq!(seqs(&s.live(15, 11, "b")), vec![15]);
        assert!(!s.has_gap());
    }

    #[test]
    fn the_first_live_comment_sets_an_unknown_position() {
        let mut s = Sequencer::new(64);
        assert_eq!(seqs(&s.live(42, 40, "a")), vec![42]);
        assert_eq!(s.position(), (42, true));
        // A late baseline does not move it.
        s.baseline(50);
        assert_eq!(s.position(), (42, true));
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut s = known_at(10);
        s.live(11, 10, "a");
        let step = s.live(11, 10, "a");
        assert!(step.duplicate && step.deliver.is_empty());
        assert!(s.live(9, 8, "old").duplicate);
    }

    #[test]
    fn a_gap_holds_back_and_reads_then_delivers_in_order() {
        let mut s = known_at(10);
        let step = s.live(14, 12, "d");
        assert!(step.deliver.is_empty());
        assert_eq!(
            step.read,
            Some(Read {
                after: 10,
                upto: 14
            })
        );
        // More live comments while the read is in flight: held, no second read.
        let step = s.live(15, 14, "e");
        assert!(step.deliver.is_empty() && step.read.is_none());
        // The read brings 12 (and 14, which is held too): everything goes out once.
        let step = s.read_done(Some(vec![(12, "b"), (14, "d")]));
        assert_eq!(seqs(&step), vec![12, 14, 15]);
        assert!(!s.has_gap());
        assert_eq!(s.position(), (15, true));
    }

    #[test]
    fn a_gap_that_cannot_be_closed_yet_is_retried_never_skipped() {
        let mut s = known_at(10);
        assert!(s.live(13, 12, "c").read.is_some());
        // The partition's leader is gone: reads fail, again and again; or a mirror
        // behind its origin answers with nothing yet.
        for i in 0..30 {
            let answer = if i % 2 == 0 { None } else { Some(vec![]) };
            let step = s.read_done(answer);
            assert!(step.deliver.is_empty(), "nothing skipped while reads fail");
            assert!(s.has_gap());
            assert_eq!(
                s.retry(),
                Some(Read {
                    after: 10,
                    upto: 13
                })
            );
        }
        // A replica that is behind answers with part of it.
        let step = s.read_done(Some(vec![(11, "a")]));
        assert_eq!(seqs(&step), vec![11]);
        assert_eq!(
            s.retry(),
            Some(Read {
                after: 11,
                upto: 13
            })
        );
        // Then the rest.
        let step = s.read_done(Some(vec![(12, "b"), (13, "c")]));
        assert_eq!(seqs(&step), vec![12, 13]);
        assert_eq!(s.retry(), None);
    }

    #[test]
    fn comments_gone_from_the_stream_do_not_block() {
        let mut s = known_at(10);
        s.live(13, 12, "c");
        // 11 and 12 expired (or were removed): the read's first answer is 13 itself.
        assert_eq!(seqs(&s.read_done(Some(vec![(13, "c")]))), vec![13]);
        assert!(!s.has_gap());
        assert_eq!(s.retry(), None);
    }

    #[test]
    fn a_reconnect_reads_up_to_the_newest_stored() {
        let mut s = known_at(10);
        assert_eq!(s.newest(10), None);
        assert_eq!(
            s.newest(12),
            Some(Read {
                after: 10,
                upto: 12
            })
        );
        assert_eq!(
            seqs(&s.read_done(Some(vec![(11, "a"), (12, "b")]))),
            vec![11, 12]
        );
        // Unknown position: nothing to catch up from.
        let mut fresh: Sequencer<&str> = Sequencer::new(4);
        assert_eq!(fresh.newest(5), None);
    }

    #[test]
    fn held_comments_are_bounded_and_the_read_still_brings_the_dropped_ones() {
        let mut s = Sequencer::new(2);
        s.baseline(10);
        s.live(13, 12, "c");
        s.live(14, 13, "d");
        s.live(15, 14, "e"); // over the bound: the newest held is dropped
        let step = s.read_done(Some(vec![(11, "a"), (12, "b")]));
        assert_eq!(seqs(&step), vec![11, 12, 13, 14]);
        // 15 is known to be stored: the gap is open until a read brings it.
        assert_eq!(
            s.retry(),
            Some(Read {
                after: 14,
                upto: 15
            })
        );
        assert_eq!(seqs(&s.read_done(Some(vec![(15, "e")]))), vec![15]);
    }

    #[test]
    fn regions_out_of_step_are_independent() {
        // One sequencer per region: a gap in one holds nothing of the other.
        let mut east = known_at(5);
        let mut west = known_at(100);
        assert!(east.live(8, 7, "e").deliver.is_empty());
        assert_eq!(seqs(&west.live(101, 100, "w")), vec![101]);
        assert!(east.has_gap() && !west.has_gap());
    }
}
