//! CPU and memory of the server processes under test (`--server-pids NAME:PID,…`), read
//! from `/proc/PID/stat` and `/proc/PID/status`, so a result carries the server's cost
//! next to the load generator's own.

pub use benchreport::server::ServerProc;

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
}
