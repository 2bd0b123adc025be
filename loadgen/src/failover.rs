//! Where a viewer connects, and where it goes when its frontend is gone.
//!
//! Without `--failover` a viewer keeps to the frontend it was given (viewers spread
//! over `--frontend`). With it the list is one node and its stand-ins, as a load
//! balancer in front of them would treat them: every viewer starts on the first URL
//! (its home), and when a connection attempt fails it moves on at once to the next URL
//! in its own order — the others rotated by the viewer's index, so the viewers of a dead
//! node spread evenly over the survivors — staying there while it works. Only when
//! every URL failed in a row does it back off.

/// The frontend (index into the list of `n`) a viewer with global index `g` tries at
/// step `pos` of its order: step 0 (and every n-th) is the home, 0; the others visit
/// 1..n, starting at `1 + g mod (n − 1)`.
pub fn target(g: usize, n: usize, pos: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    match pos % n {
        0 => 0,
        k => 1 + (g + k - 1) % (n - 1),
    }
}

/// Whether a viewer whose last `failures` attempts in a row failed should try the next
/// frontend at once (another one it has not tried in this round is left) rather than
/// back off.
pub fn try_next_now(failures: u32, n: usize) -> bool {
    n > 1 && (failures as usize) < n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_viewer_starts_home_and_visits_every_other_once_a_round() {
        for n in 1..6 {
            for g in 0..20 {
                assert_eq!(target(g, n, 0), 0);
                let mut round: Vec<usize> = (0..n).map(|p| target(g, n, p)).collect();
                round.sort();
                assert_eq!(round, (0..n).collect::<Vec<_>>(), "g {g}, n {n}");
                assert_eq!(target(g, n, n), 0, "then home again");
            }
        }
    }

    #[test]
    fn a_dead_homes_viewers_spread_evenly_over_the_survivors() {
        let n = 4; // home + 3 survivors
        let mut per = [0usize; 4];
        for g in 0..9_000 {
            per[target(g, n, 1)] += 1;
        }
        assert_eq!(per, [0, 3_000, 3_000, 3_000]);
    }

    #[test]
    fn back_off_only_after_a_whole_round_failed() {
        assert!(try_next_now(1, 3));
        assert!(try_next_now(2, 3));
        assert!(!try_next_now(3, 3));
        assert!(!try_next_now(1, 1), "nowhere else to go");
    }
}
