//! One multi-server NATS setup at a time per test process. The end-to-end suite is one
//! test binary whose tests run two at a time; two clusters (or a cluster beside a
//! supercluster of six servers) on two cores slowed JetStream leader elections past the
//! publisher's 15 s write deadline (a CI run failed so). Tests on a single nats-server
//! are not held back; a test that loads both cores otherwise (`run_script`'s demo
//! audience) takes the slot too.

use std::sync::{Condvar, Mutex};

static BUSY: Mutex<bool> = Mutex::new(false);
static FREED: Condvar = Condvar::new();

/// Held by a [`crate::NatsCluster`] or [`crate::Supercluster`] for its life.
pub struct ClusterSlot(());

impl ClusterSlot {
    /// Waits until no other cluster of this process is running, then takes the slot.
    pub fn take() -> ClusterSlot {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        ClusterSlot(())
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(|e| e.into_inner()) = false;
        FREED.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn one_holder_at_a_time() {
        static INSIDE: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let _slot = ClusterSlot::take();
                    let n = INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    INSIDE.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(MOST.load(Ordering::SeqCst), 1);
    }
}
