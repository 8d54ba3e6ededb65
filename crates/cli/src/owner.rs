//! `orchestra serve --owner-pid PID`: a hub that belongs to one process (the desktop shell's
//! window that started it) stops when that process is gone, however it went — also after a
//! SIGKILL, which gives the owner no chance to ask. The hub is in a process group of its own
//! (so no signal to the owner's group reaches it), and `PR_SET_PDEATHSIG` would follow the
//! spawning *thread*, not the process; so the hub watches the owner itself.
//!
//! A pid can be reused, so the owner is the process with that pid *and* the start time it had
//! when the hub first looked; a process with that pid started after this hub is not the owner.

use std::time::Duration;

/// How often the hub looks at its owner: the delay between the owner's death and the hub's
/// shutdown starting.
const POLL: Duration = Duration::from_millis(200);

/// Completes when the owner is gone (at once if it already is); never without an owner.
pub async fn gone(owner: Option<u32>) {
    let Some(pid) = owner else {
        return std::future::pending().await;
    };
    watch(pid, start_time_of_self()).await;
}

/// Completes when `pid` is gone, or at once when the process with that pid started after
/// `not_after` (the hub's own start: its owner is older than it, so a younger one reused the pid).
async fn watch(pid: u32, not_after: Option<u64>) {
    let Some(started) = start_time(pid).filter(|&at| not_after.is_none_or(|limit| at <= limit))
    else {
        tracing::info!(pid, "the owner of this hub is already gone");
        return;
    };
    loop {
        if start_time(pid) != Some(started) {
            tracing::info!(pid, "the process that owns this hub exited; the hub stops");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The start time (clock ticks after boot) of a running, non-zombie process.
fn start_time(pid: u32) -> Option<u64> {
    parse_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn start_time_of_self() -> Option<u64> {
    parse_start(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Field 22 of `/proc/<pid>/stat`, unless the state (field 3) says the process has exited. The
/// command name (field 2) is in parentheses and may hold spaces and `)`, so fields are counted
/// from the last `)`.
fn parse_start(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_start_time_after_a_tricky_name() {
        let line = "42 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_start(line), Some(777));
        let zombie = "42 (a) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_start(zombie), None);
        assert_eq!(parse_start("garbage"), None);
    }

    #[tokio::test]
    async fn a_live_owner_keeps_the_hub_and_a_dead_one_stops_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let born = start_time(pid).unwrap();
        // A process younger than the hub is not its owner, whatever its pid.
        tokio::time::timeout(Duration::from_secs(1), watch(pid, Some(born - 1)))
            .await
            .unwrap();
        let watch = tokio::spawn(watch(pid, Some(born)));
        tokio::time::sleep(POLL * 3).await;
        assert!(!watch.is_finished(), "stopped while its owner runs");
        child.kill().unwrap();
        // Not reaped yet: a zombie owner counts as gone.
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .unwrap()
            .unwrap();
        child.wait().unwrap();
        // A pid that does not exist (any more) is gone at once.
        tokio::time::timeout(Duration::from_secs(1), gone(Some(pid)))
            .await
            .unwrap();
    }
}
