//! What tests need to know about processes on this machine, read from `/proc`: whether one is
//! still running, which processes are in a group, and which carry a marker in their environment;
//! and, for the bench, how much memory and CPU they use.
//!
//! For assertions and the bench's measurements only. Product code never picks processes this
//! way; it signals only the groups it recorded (see `orchestra_core::supervisor`).

/// An environment variable a test sets on the process it starts; every descendant inherits it,
/// so [`with_marker`] finds whatever of that tree is still running, wherever it was re-parented.
pub const MARKER_VAR: &str = "ORCHESTRA_TEST_MARKER";

/// A marker value no other test uses.
pub fn new_marker() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}-{n}", std::process::id())
}

/// `(ppid, pgid, state)` of a process, if it exists.
pub fn stat(pid: u32) -> Option<(u32, u32, char)> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, tail) = line.rsplit_once(')')?;
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid, state))
}

/// True while the process exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, _, state)| state != 'Z' && state != 'X')
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The running processes of group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            stat(pid).is_some_and(|(_, group, state)| group == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// The running processes whose parent is `ppid`.
pub fn children(ppid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            stat(pid)
                .is_some_and(|(parent, _, state)| parent == ppid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// The running descendants of `root` (not `root` itself), following parent links.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| {
            stat(pid)
                .filter(|(_, _, state)| *state != 'Z' && *state != 'X')
                .map(|(ppid, _, _)| (pid, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && pid != root && !out.contains(&pid) {
                out.push(pid);
                stack.push(pid);
            }
        }
    }
    out
}

/// The command line, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The running processes whose environment has `MARKER_VAR=<marker>`.
pub fn with_marker(marker: &str) -> Vec<u32> {
    let needle = format!("{MARKER_VAR}={marker}");
    all_pids()
        .into_iter()
        .filter(|&pid| pid != std::process::id() && running(pid))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|entry| entry == needle.as_bytes())
            })
        })
        .collect()
}

/// Waits up to `timeout` for every process in `pids` to be gone; returns those still running.
pub fn wait_all_gone(pids: &[u32], timeout: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| running(p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// True while the process runs with no signal pending (`SigPnd` and `ShdPnd` both empty): right
/// after a `kill(2)` returns, its signal is either pending or has already ended the process, so
/// this tells at once, without waiting, that nothing was sent to a process that ignores nothing.
pub fn running_unsignalled(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let pending_empty = ["SigPnd:", "ShdPnd:"].iter().all(|field| {
        status
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|mask| u64::from_str_radix(mask, 16).ok())
            == Some(0)
    });
    running(pid) && pending_empty
}

/// A numeric `/proc/<pid>/status` field (`VmRSS:` in kB, `Threads:` …), if the process and
/// the field exist.
pub fn status_number(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used so far, if it exists.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, tail) = line.rsplit_once(')')?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // utime and stime are stat fields 14 and 15, i.e. 11 and 12 after the `(comm)`. /proc counts
    // them in USER_HZ ticks, which Linux fixes at 100 per second.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&at| fields.get(at).and_then(|t| t.parse::<u64>().ok()))
        .sum();
    Some(ticks as f64 / 100.0)
}
