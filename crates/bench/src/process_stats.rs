//! Memory and CPU figures of our children, from the test kit's `/proc` readers, as the bench's
//! errors.

use anyhow::Context;
use orchestra_testkit::processes;

pub use orchestra_testkit::processes::descendants;

/// A `/proc/<pid>/status` field in kB.
pub fn status_kb(pid: u32, field: &str) -> anyhow::Result<f64> {
    processes::status_number(pid, field)
        .map(|kb| kb as f64)
        .with_context(|| format!("no {field} in /proc/{pid}/status (has process {pid} exited?)"))
}

pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    Ok(status_kb(pid, "VmRSS:")? / 1024.0)
}

/// CPU seconds (user + system) used so far by one process.
pub fn cpu_s(pid: u32) -> anyhow::Result<f64> {
    processes::cpu_seconds(pid)
        .with_context(|| format!("cannot read /proc/{pid}/stat (has process {pid} exited?)"))
}

/// CPU seconds (user + system) used so far by the processes now in group `pgid`.
pub fn group_cpu_s(pgid: u32) -> f64 {
    processes::group_members(pgid)
        .into_iter()
        .filter_map(processes::cpu_seconds)
        .sum()
}

/// Summed RSS of every process in process group `pgid` (the `opencode` launcher and the
/// server it runs).
pub fn group_rss_mb(pgid: u32) -> f64 {
    processes::group_members(pgid)
        .into_iter()
        .map(|pid| rss_mb(pid).unwrap_or(0.0))
        .sum()
}
