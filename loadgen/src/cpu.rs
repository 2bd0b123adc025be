//! The load generator's own CPU use (user + system, from `/proc/self/stat`), so a saturated
//! load generator shows up next to its numbers.

use std::time::Instant;

/// CPU seconds used by this process so far; `None` where `/proc` is not available.
pub fn cpu_seconds() -> Option<f64> {
    parse_stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// User + system CPU seconds from the text of a `/proc/PID/stat`.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state (3) … utime (14) stime (15).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// CPU seconds all processes of the machine used so far (all cores: user, nice, system,
/// irq, softirq, steal), from the first line of `/proc/stat`.
pub fn machine_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_ascii_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy = f.get(..8)?.iter().sum::<u64>() - f[3] - f[4];
    Some(busy as f64 / clock_ticks())
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_ascii_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// CPU use of the whole machine between two points in time, in % of one core.
#[derive(Debug, Clone, Copy)]
pub struct MachineMeter {
    cpu: Option<f64>,
    at: Instant,
}

impl MachineMeter {
    pub fn start() -> Self {
        MachineMeter {
            cpu: machine_seconds(),
            at: Instant::now(),
        }
    }

    /// % of one core since `start` (0 when unknown).
    pub fn percent(&self) -> f64 {
        let wall = self.at.elapsed().as_secs_f64();
        match (self.cpu, machine_seconds()) {
            (Some(a), Some(b)) if wall > 0.0 => (b - a) / wall * 100.0,
            _ => 0.0,
        }
    }
}

/// CPU use between two points in time, in % of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    cpu: Option<f64>,
    at: Instant,
}

impl CpuMeter {
    pub fn start() -> Self {
        CpuMeter {
            cpu: cpu_seconds(),
            at: Instant::now(),
        }
    }

    /// % of one core since `start` (0 when unknown).
    pub fn percent(&self) -> f64 {
        let wall = self.at.elapsed().as_secs_f64();
        match (self.cpu, cpu_seconds()) {
            (Some(a), Some(b)) if wall > 0.0 => (b - a) / wall * 100.0,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let m = super::CpuMeter::start();
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_add(i * i);
            }
            std::hint::black_box(x);
            assert!(super::cpu_seconds().is_some());
            assert!(m.percent() >= 0.0);
            let machine = super::MachineMeter::start();
            assert!(super::machine_seconds().is_some());
            assert!(machine.percent() >= 0.0);
        }
    }
}
