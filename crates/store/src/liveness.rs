//! Whether a hub's process still exists, std-only, and when a hub counts as gone.

/// A hub whose heartbeat is older than this is gone: its running jobs are marked interrupted
/// and its running workflow runs paused by the next hub on the store. The heartbeat runs in a
/// task of its own every 10 s, so only a stopped process (SIGSTOP, a suspended laptop) misses
/// six in a row.
pub const HUB_STALE_AFTER_MS: i64 = 60_000;

/// True if a process with this pid exists and is not a zombie.
///
/// Linux: reads the state field of `/proc/<pid>/stat`. Without a readable
/// procfs (other systems, or `/proc` not mounted) it answers true, leaving
/// the hub's heartbeat age to decide; a reused pid is caught the same way.
pub fn pid_is_alive(pid: u32) -> bool {
    if pid == 0 || !std::path::Path::new("/proc/self/stat").exists() {
        return pid != 0;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Unparseable: the process exists, so call it alive.
        Ok(stat) => process_state(&stat).is_none_or(|state| state != 'Z' && state != 'X'),
        // Hidden from us (procfs `hidepid`) still means it exists.
        Err(error) => error.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// The state letter of a `/proc/<pid>/stat` line. The command name before it
/// is in parentheses and may itself contain spaces and `)`, so the state is
/// the first field after the last `)`.
fn process_state(stat: &str) -> Option<char> {
    let after_name = stat.rfind(')')?;
    stat.get(after_name + 1..)?.trim_start().chars().next()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_after_tricky_name() {
        assert_eq!(process_state("42 (a) Z (b) S 1 2 3"), Some('S'));
        assert_eq!(process_state("42 (sleep) Z 1 2 3"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_pid_zero_is_not() {
        assert!(pid_is_alive(std::process::id()));
        assert!(!pid_is_alive(0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reaped_and_zombie_children_are_dead() {
        use std::os::unix::process::CommandExt;
        use std::time::{Duration, Instant};

        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Not yet waited for: once it exits it is a zombie.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_is_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "child {pid} never became a zombie"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!pid_is_alive(pid));
    }
}
