//! This process's CPU time and resident memory, read from /proc: for the run report's
//! usage charts, and for the simulator's `/hub/metrics`, which shows them as a real hub's
//! prometheus_client does (CPU seconds to the clock tick, not whole seconds).

/// CPU seconds used so far and resident bytes now; `None` off Linux or if /proc fails.
#[cfg(target_os = "linux")]
pub fn usage() -> Option<(f64, f64)> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some((
        (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64,
        stat.rss as f64 * procfs::page_size() as f64,
    ))
}

#[cfg(not(target_os = "linux"))]
pub fn usage() -> Option<(f64, f64)> {
    None
}

/// The two figures in the Prometheus text format, as prometheus_client writes them.
pub fn metrics_text() -> String {
    match usage() {
        Some((cpu, rss)) => format!(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total {cpu}\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes {rss}\n"
        ),
        None => String::new(),
    }
}
