//! Memory and CPU figures of our children, read from /proc.

use anyhow::{Context, bail};

/// A `/proc/<pid>/status` field in kB.
pub fn status_kb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(line) = text.lines().find(|l| l.starts_with(field)) else {
        bail!("{path} has no {field} line");
    };
    line.split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .with_context(|| format!("cannot parse `{line}` in {path}"))
}

pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    Ok(status_kb(pid, "VmRSS:")? / 1024.0)
}

/// The pids in process group `pgid`.
fn group_members(pgid: u32) -> anyhow::Result<Vec<(u32, String)>> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state, ppid, pgrp, …
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let group = rest
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse::<u32>().ok());
        if group == Some(pgid) {
            members.push((pid, rest.to_owned()));
        }
    }
    Ok(members)
}

/// CPU seconds (user + system) used so far by the processes now in group `pgid`.
pub fn group_cpu_s(pgid: u32) -> anyhow::Result<f64> {
    Ok(group_members(pgid)?
        .iter()
        .map(|(_, rest)| cpu_s_of(rest))
        .sum())
}

/// CPU seconds (user + system) used so far by one process.
pub fn cpu_s(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (_, rest) = stat
        .rsplit_once(')')
        .with_context(|| format!("cannot parse {path}"))?;
    Ok(cpu_s_of(rest))
}

/// utime + stime from the part of a stat line after `(comm)`. /proc counts them in USER_HZ
/// ticks, which Linux fixes at 100 per second.
fn cpu_s_of(rest: &str) -> f64 {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are stat fields 14 and 15, i.e. 11 and 12 after the comm.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&at| fields.get(at).and_then(|t| t.parse::<u64>().ok()))
        .sum();
    ticks as f64 / 100.0
}

/// Summed RSS of every process in process group `pgid` (the `opencode` launcher and the
/// server it runs).
pub fn group_rss_mb(pgid: u32) -> anyhow::Result<f64> {
    Ok(group_members(pgid)?
        .into_iter()
        .map(|(pid, _)| rss_mb(pid).unwrap_or(0.0))
        .sum())
}

/// Every process below `root` (children, their children, …), found through the parent pids in
/// /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        at += 1;
    }
    found.remove(0);
    found
}
