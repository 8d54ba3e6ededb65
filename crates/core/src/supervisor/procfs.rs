//! What `/proc` says about processes: parent, process group, session and start time.
//!
//! Start times are what make a pid or pgid safe to act on later: a pid is only reused by a
//! process that starts after the old one ended, so "same pid, same start time" is the same
//! process, within one boot (`boot_id`).

use std::collections::HashMap;

/// The fields of `/proc/<pid>/stat` the supervisor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// Clock ticks after boot at which the process started (field 22).
    pub start: u64,
    /// `Z` (zombie) and `X` (dead) count as gone.
    pub state: char,
}

impl ProcStat {
    pub(crate) fn is_running(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// contain spaces and `)`, so fields are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Option<ProcStat> {
    let (head, tail) = line.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // fields[0] is field 3 (state), so field n is fields[n - 3].
    let state = fields.first()?.chars().next()?;
    Some(ProcStat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        state,
    })
}

/// The process with this pid, if it exists (zombies included; see [`ProcStat::is_running`]).
pub(crate) fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line)
}

/// Resident memory of a process in bytes (`VmRSS`), if it exists.
pub(crate) fn rss_bytes(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// This process.
pub(crate) fn own() -> Option<ProcStat> {
    let line = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&line)
}

/// Identifies the current boot; start times from another boot mean nothing.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// Every process we can see, by pid. Processes that end while we read are simply missing.
pub(crate) fn all() -> HashMap<i32, ProcStat> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(stat) = stat(pid) {
            out.insert(pid, stat);
        }
    }
    out
}

/// The pids whose parent is `parent` now, zombies included.
pub(crate) fn children(parent: i32) -> Vec<i32> {
    all()
        .into_values()
        .filter(|stat| stat.ppid == parent)
        .map(|stat| stat.pid)
        .collect()
}

/// The oldest running child of `parent`, if any.
pub(crate) fn first_child(parent: i32) -> Option<i32> {
    all()
        .into_values()
        .filter(|stat| stat.ppid == parent && stat.is_running())
        .min_by_key(|stat| (stat.start, stat.pid))
        .map(|stat| stat.pid)
}

/// The running processes that descend from `root` (not `root` itself), following parent
/// links in a snapshot from [`all`].
pub(crate) fn descendants(snapshot: &HashMap<i32, ProcStat>, root: i32) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for stat in snapshot.values() {
        children.entry(stat.ppid).or_default().push(stat);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            // A pid seen twice would mean a cycle in a torn snapshot; stop there.
            if child.pid == root || out.iter().any(|s: &ProcStat| s.pid == child.pid) {
                continue;
            }
            if child.is_running() {
                out.push(**child);
            }
            stack.push(child.pid);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_after_a_tricky_name() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194304 226 0 0 0 0 0 0 0 20 0 1 0 55965 2998272 424";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                ppid: 17,
                pgid: 4242,
                start: 55965,
                state: 'S'
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_its_own_rss() {
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(rss_bytes(pid).unwrap() > 1024 * 1024);
        assert_eq!(rss_bytes(0), None);
    }

    #[test]
    fn sees_itself_and_its_children() {
        let me = own().unwrap();
        assert_eq!(me.pid, i32::try_from(std::process::id()).unwrap());
        assert!(boot_id().is_some());
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let found = descendants(&all(), me.pid);
        assert!(found.iter().any(|s| s.pid == pid), "{found:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
