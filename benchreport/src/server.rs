//! The server processes under test as a result reports them: CPU over the window and
//! RSS before the ramp, at the window's start and at its end.

use serde::{Deserialize, Serialize};

/// What one server process did over one window.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerProc {
    pub name: String,
    pub pid: u32,
    /// CPU over the window, % of one core.
    pub cpu_percent: f64,
    /// RSS before the viewers' ramp (KiB; after a merge, the lowest of the processes).
    pub rss_start_kb: u64,
    /// RSS when the window started (after a merge, the highest).
    pub rss_window_kb: u64,
    /// RSS when the window ended.
    pub rss_end_kb: u64,
}

/// Merges the views of several load generator processes on the same servers: CPU is
/// averaged, the RSS before the ramp is the lowest seen, at and after the window the
/// highest.
pub fn merge(all: &[&[ServerProc]]) -> Vec<ServerProc> {
    let mut out: Vec<(ServerProc, u32)> = Vec::new();
    for procs in all {
        for p in procs.iter() {
            match out
                .iter_mut()
                .find(|(o, _)| o.pid == p.pid && o.name == p.name)
            {
                Some((o, n)) => {
                    o.cpu_percent += p.cpu_percent;
                    o.rss_start_kb = o.rss_start_kb.min(p.rss_start_kb);
                    o.rss_window_kb = o.rss_window_kb.max(p.rss_window_kb);
                    o.rss_end_kb = o.rss_end_kb.max(p.rss_end_kb);
                    *n += 1;
                }
                None => out.push((p.clone(), 1)),
            }
        }
    }
    out.into_iter()
        .map(|(mut p, n)| {
            p.cpu_percent /= f64::from(n);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_averages_cpu_and_bounds_rss() {
        let p = |cpu, start, win| ServerProc {
            name: "fe".into(),
            pid: 1,
            cpu_percent: cpu,
            rss_start_kb: start,
            rss_window_kb: win,
            rss_end_kb: win,
        };
        let a = [p(10.0, 100, 500)];
        let b = [p(30.0, 120, 600)];
        let m = merge(&[&a, &b]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].cpu_percent, 20.0);
        assert_eq!((m[0].rss_start_kb, m[0].rss_window_kb), (100, 600));
    }
}
