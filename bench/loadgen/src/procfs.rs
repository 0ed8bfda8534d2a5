//! What the server under test costs, read from /proc of its pids: resident memory and CPU
//! seconds (user + system), plus the fd limit raise every process of the benchmark needs.

use std::fs;

/// One reading of a set of processes (summed: nginx has a master and a worker).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Sample {
    pub rss_bytes: u64,
    pub cpu_secs: f64,
}

/// Clock ticks per second for /proc/<pid>/stat times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn one(pid: u32) -> Option<Sample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields we want follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After ')': state is field 3 of the full line, so utime (14) is index 11, stime index 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(Sample {
        rss_bytes: rss_kib * 1024,
        cpu_secs: (utime + stime) / ticks_per_sec(),
    })
}

/// The sum over `pids` (the ones that no longer exist are skipped).
pub fn sample(pids: &[u32]) -> Sample {
    pids.iter()
        .filter_map(|&p| one(p))
        .fold(Sample::default(), |a, s| Sample {
            rss_bytes: a.rss_bytes + s.rss_bytes,
            cpu_secs: a.cpu_secs + s.cpu_secs,
        })
}

/// This process's own CPU seconds.
pub fn own_cpu_secs() -> f64 {
    one(std::process::id())
        .map(|s| s.cpu_secs)
        .unwrap_or_default()
}

/// Raises the soft descriptor limit to the hard one (N subscribers need N descriptors);
/// returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to / read from the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}
