//! What /proc says about a process (Linux): live threads, memory, CPU time. Shared by the
//! fault tests, the soak run and the benchmark.

/// The number of live threads of process `pid`. A thread that has ended and been joined
/// stays listed for a moment while the kernel tears it down; the kernel marks it
/// PF_EXITING in the flags of its stat line, and it is not counted.
pub fn live_threads(pid: u32) -> Option<usize> {
    const PF_EXITING: u64 = 0x4;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let live = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter(|stat| {
            let flags = stat_fields(stat).get(6).and_then(|f| f.parse::<u64>().ok());
            flags.is_some_and(|flags| flags & PF_EXITING == 0)
        })
        .count();
    Some(live)
}

/// A number field of /proc/PID/status, such as `VmRSS:` (in KiB).
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// The CPU time `pid` has used (utime + stime), in clock ticks (usually 1/100 s).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat);
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The fields of a stat line after the parenthesised name (which may hold spaces):
/// state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
/// utime, stime, ...
fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rsplit_once(')') {
        Some((_, rest)) => rest.split_whitespace().collect(),
        None => Vec::new(),
    }
}

/// The CPU time all live threads of `pid` have used, in nanoseconds, from each thread's
/// schedstat: far finer than the clock ticks of `cpu_ticks`, but blind to threads that
/// have already ended.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let total = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Some(total)
}
