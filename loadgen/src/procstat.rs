//! CPU and memory of the server processes under test (`--server-pids NAME:PID,…`), read
//! from `/proc/PID/stat` and `/proc/PID/status`, so a result carries the server's cost
//! next to the load generator's own.

use serde::{Deserialize, Serialize};

/// One server process as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

/// Parses `NAME:PID,NAME:PID` (a bare `PID` is named `pidPID`).
pub fn parse(list: &str) -> anyhow::Result<Vec<Watched>> {
    crate::target::split_list(list)
        .iter()
        .map(|item| {
            let (name, pid) = item.rsplit_once(':').unwrap_or(("", item));
            let pid: u32 = pid
                .parse()
                .map_err(|_| anyhow::anyhow!("--server-pids: bad pid in {item:?}"))?;
            let name = if name.is_empty() {
                format!("pid{pid}")
            } else {
                name.to_owned()
            };
            Ok(Watched { name, pid })
        })
        .collect()
}

/// CPU seconds (user + system) used by `pid` so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::cpu::parse_stat_cpu(&stat)
}

/// Resident set size of `pid` in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok())
}

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

/// The watched processes, with their RSS before the ramp.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    procs: Vec<(Watched, u64)>,
}

/// A window in progress: CPU and RSS at its start.
pub struct Window {
    at: std::time::Instant,
    start: Vec<(Option<f64>, u64)>,
}

impl Servers {
    /// Records each process's RSS now (call before the viewers connect).
    pub fn new(watched: Vec<Watched>) -> Servers {
        let procs = watched
            .into_iter()
            .map(|w| {
                let rss = rss_kb(w.pid).unwrap_or(0);
                (w, rss)
            })
            .collect();
        Servers { procs }
    }

    pub fn window(&self) -> Window {
        Window {
            at: std::time::Instant::now(),
            start: self
                .procs
                .iter()
                .map(|(w, _)| (cpu_seconds(w.pid), rss_kb(w.pid).unwrap_or(0)))
                .collect(),
        }
    }

    /// The window's result per process.
    pub fn finish(&self, win: &Window) -> Vec<ServerProc> {
        let wall = win.at.elapsed().as_secs_f64();
        self.procs
            .iter()
            .zip(&win.start)
            .map(|((w, rss0), (cpu0, rss1))| ServerProc {
                name: w.name.clone(),
                pid: w.pid,
                cpu_percent: match (cpu0, cpu_seconds(w.pid)) {
                    (Some(a), Some(b)) if wall > 0.0 => (b - a) / wall * 100.0,
                    _ => 0.0,
                },
                rss_start_kb: *rss0,
                rss_window_kb: *rss1,
                rss_end_kb: rss_kb(w.pid).unwrap_or(0),
            })
            .collect()
    }
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
    fn parses_lists_and_reads_itself() {
        let w = parse("frontend:12, nats:7,99").unwrap();
        assert_eq!(w[0].name, "frontend");
        assert_eq!((w[1].name.as_str(), w[1].pid), ("nats", 7));
        assert_eq!(w[2].name, "pid99");
        assert!(parse("x:y").is_err());
        if std::path::Path::new("/proc/self/stat").exists() {
            let me = std::process::id();
            assert!(rss_kb(me).unwrap() > 0);
            let s = Servers::new(vec![Watched {
                name: "me".into(),
                pid: me,
            }]);
            let win = s.window();
            let r = s.finish(&win);
            assert_eq!(r.len(), 1);
            assert!(r[0].rss_window_kb > 0 && r[0].cpu_percent >= 0.0);
        }
    }

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
