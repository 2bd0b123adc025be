//! Doorbells: how one connection waits on many topics' broadcasts with one waker.
//!
//! A tokio broadcast receiver can wait only through its own `recv` future, and
//! tokio-stream's `BroadcastStream` boxes one per receiver: with the `StreamMap` entry
//! that was ~130 B per topic of an idle connection, the largest part of what a 50-topic
//! connection cost (issue 12's target is under 2× a 1-topic one). tokio offers no
//! `poll_recv` on broadcast receivers and no crate offers a bell over them, so it is
//! written here: every room keeps the doorbells of the `/v1/stream` connections that
//! watch it ([`Bells`]) and rings them after each send; a connection keeps plain
//! receivers, one [`Doorbell`] (one waker), and reads only the topics whose bit rang.
//! Per-video streams (`/v1/videos/{video}/events`) do not use this: they wait on their
//! one receiver.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use slab::Slab;

/// The bit of topic slot `slot`; slots from 63 on share the last bit (a connection
/// then reads all of them when it rings).
pub fn bit(slot: usize) -> u64 {
    1 << slot.min(63)
}

/// Whether slot `slot` is among `bits`.
pub fn rang(bits: u64, slot: usize) -> bool {
    bits & bit(slot) != 0
}

/// One connection's: the waker of its task and the bits of the topics that rang since
/// it last looked.
#[derive(Default)]
pub struct Doorbell {
    waker: AtomicWaker,
    rung: AtomicU64,
}

impl Doorbell {
    /// Marks `bits` as rung and wakes the connection.
    pub fn ring(&self, bits: u64) {
        self.rung.fetch_or(bits, Ordering::Release);
        self.waker.wake();
    }

    /// Marks `bits` as rung without a wake-up: the caller is the connection itself,
    /// which polls again before it waits (topics it has not read to the end, a topic
    /// just added).
    pub fn mark(&self, bits: u64) {
        self.rung.fetch_or(bits, Ordering::Release);
    }

    /// The bits rung since the last call, or `Pending` with the task's waker kept: it
    /// is registered before the bits are taken, so a ring in between wakes it.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<u64> {
        self.waker.register(cx.waker());
        match self.rung.swap(0, Ordering::Acquire) {
            0 => Poll::Pending,
            bits => Poll::Ready(bits),
        }
    }
}

/// A room's: the doorbells of the connections watching it, each with the bit of the
/// connection's slot for this room.
#[derive(Default)]
pub struct Bells {
    list: Mutex<Slab<(Arc<Doorbell>, u64)>>,
    /// How many are listed: a room nobody watches through `/v1/stream` (every room of
    /// per-video viewers) skips the lock.
    len: AtomicUsize,
}

impl Bells {
    fn list(&self) -> std::sync::MutexGuard<'_, Slab<(Arc<Doorbell>, u64)>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists `bell` with `bits`; the key removes it again.
    pub fn add(&self, bell: Arc<Doorbell>, bits: u64) -> usize {
        let mut list = self.list();
        let key = list.insert((bell, bits));
        self.len.store(list.len(), Ordering::Release);
        key
    }

    pub fn remove(&self, key: usize) {
        let mut list = self.list();
        list.try_remove(key);
        self.len.store(list.len(), Ordering::Release);
        if list.capacity() > 64 && list.len() < list.capacity() / 4 {
            list.shrink_to_fit();
        }
    }

    /// Rings every listed doorbell. Called after a send: a connection listed after
    /// the `len` check marks its own bit once listed, so it reads what it missed.
    pub fn ring(&self) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        for (_, (bell, bits)) in self.list().iter() {
            bell.ring(*bits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker_ref;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slots_from_63_share_the_last_bit() {
        assert_eq!(bit(0), 1);
        assert_eq!(bit(62), 1 << 62);
        assert_eq!(bit(63), 1 << 63);
        assert_eq!(bit(200), 1 << 63);
        assert!(rang(bit(70), 64));
        assert!(!rang(bit(3), 4));
    }

    #[test]
    fn a_ring_wakes_the_registered_task_once_and_its_bits_are_taken_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let bell = Arc::new(Doorbell::default());
        assert!(bell.poll_take(&mut cx).is_pending());

        let bells = Bells::default();
        let key = bells.add(bell.clone(), bit(2));
        bells.ring();
        bells.ring();
        // The waker is taken by the first wake: the second ring only adds bits.
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(bell.poll_take(&mut cx), Poll::Ready(bit(2)));
        assert!(bell.poll_take(&mut cx).is_pending());

        bells.remove(key);
        bells.ring();
        assert!(bell.poll_take(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn marks_are_read_without_a_wake() {
        let bell = Doorbell::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        bell.mark(bit(1));
        bell.mark(bit(5));
        assert_eq!(bell.poll_take(&mut cx), Poll::Ready(bit(1) | bit(5)));
    }

    #[test]
    fn one_room_rings_each_connection_with_its_own_slot() {
        let (a, b) = (Arc::new(Doorbell::default()), Arc::new(Doorbell::default()));
        let bells = Bells::default();
        bells.add(a.clone(), bit(0));
        bells.add(b.clone(), bit(7));
        bells.ring();
        let mut cx = Context::from_waker(noop_waker_ref());
        assert_eq!(a.poll_take(&mut cx), Poll::Ready(bit(0)));
        assert_eq!(b.poll_take(&mut cx), Poll::Ready(bit(7)));
    }
}
