//! What benchmarks and load tests read about a process from /proc: its CPU time and resident
//! memory.

/// User plus system CPU seconds `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / clock_ticks_per_second()
}

/// User plus system CPU seconds used so far by the living processes called `name` (their
/// command name, as `ps -o comm` shows it), e.g. every backend of a Postgres server.
pub fn cpu_seconds_of_all(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == name))
        .map(cpu_seconds)
        .sum()
}

/// User plus system CPU seconds this process has used so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

/// `pid`'s resident memory, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// `USER_HZ`: 100 on every Linux this runs on.
fn clock_ticks_per_second() -> f64 {
    100.0
}
