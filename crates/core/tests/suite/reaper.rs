#![allow(clippy::unwrap_used)]
//! The orphan reaper signals only processes that were seen as ours: never a group whose id a
//! stranger's group reused, never a process whose pid was reused.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use orchestra_core::supervisor::reap_orphan_groups;
use orchestra_store::{ProcessGroupRecord, Store};
use orchestra_testkit::processes;

/// `(pid, start)` of a process: start is `/proc/<pid>/stat` field 22, clock ticks after boot.
fn identity(pid: u32) -> (i32, u64) {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, tail) = line.rsplit_once(')').unwrap();
    let start = tail.split_whitespace().nth(19).unwrap().parse().unwrap();
    (i32::try_from(pid).unwrap(), start)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_owned()
}

/// A record of a hub process that is gone (no process has this pid with this start time).
fn dead_hub_record(pgid: i32, leader_start: u64) -> ProcessGroupRecord {
    let mut gone = Command::new("true").spawn().unwrap();
    let owner_pid = i32::try_from(gone.id()).unwrap();
    gone.wait().unwrap();
    ProcessGroupRecord {
        owner_pid,
        owner_start: 1,
        pgid,
        leader_pid: pgid,
        leader_start,
        boot_id: boot_id(),
        hub_id: "dead-hub".into(),
        server_pgid: pgid,
        label: "coder".into(),
    }
}

/// A process group whose leader has exited while two members live on (a pipeline whose
/// first command ended, a `make` whose parent died): `(pgid, members)`.
fn leaderless_group() -> (i32, Vec<u32>) {
    let mut leader = Command::new("sh")
        .args(["-c", "sleep 60 & sleep 60 & exit 0"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = leader.id();
    leader.wait().unwrap();
    let members = processes::group_members(pgid);
    assert_eq!(members.len(), 2, "{members:?}");
    (i32::try_from(pgid).unwrap(), members)
}

fn kill_all(pids: &[u32]) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn a_reused_group_id_is_never_signalled() {
    let store = Store::open_in_memory().unwrap();
    // A group the dead hub saw: its only member, now gone.
    let mut ours = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let seen = identity(ours.id());
    ours.kill().unwrap();
    ours.wait().unwrap();
    // A stranger's group now has the recorded id (crafted: the kernel picks ids), no leader,
    // and members that all started after the recorded leader: the rule "no leader, a member
    // started after it" would have SIGKILLed them.
    let (stranger, members) = leaderless_group();
    let record = dead_hub_record(stranger, seen.1);
    store.record_process_group(&record).unwrap();
    store
        .record_process_group_members(record.owner_pid, record.owner_start, stranger, &[seen])
        .unwrap();
    // And a seen member whose pid is now a stranger's process (another start time).
    let (reused_pid, reused_start) = identity(members[0]);
    let other = dead_hub_record(stranger + 1_000_000, 0);
    store.record_process_group(&other).unwrap();
    store
        .record_process_group_members(
            other.owner_pid,
            other.owner_start,
            other.pgid,
            &[(reused_pid, reused_start.saturating_sub(1))],
        )
        .unwrap();

    let report = reap_orphan_groups(&store);
    // The reaper's signals are sent when it returns: one sent to a member would be pending in
    // it or would have ended it already, so no waiting is needed to see that none was.
    let alive: Vec<u32> = members
        .iter()
        .copied()
        .filter(|&pid| processes::running_unsignalled(pid))
        .collect();
    kill_all(&members);
    assert_eq!(alive, members, "the reaper killed a stranger's processes");
    assert_eq!(report.groups_killed, 0, "{report:?}");
    assert_eq!(report.processes_killed, 0, "{report:?}");
    assert_eq!(report.forgotten, 2, "{report:?}");
    assert!(store.process_groups().unwrap().is_empty());
    assert!(
        store
            .process_group_members(record.owner_pid, record.owner_start, stranger)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_group_seen_as_ours_is_killed_whole() {
    let store = Store::open_in_memory().unwrap();
    // The leader waits for two children; only the leader was seen before the hub died.
    let mut leader: Child = Command::new("sh")
        .args(["-c", "sleep 60 & sleep 60 & wait"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = leader.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while processes::group_members(pgid).len() < 3 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let tree = processes::group_members(pgid);
    let seen = identity(pgid);
    let record = dead_hub_record(i32::try_from(pgid).unwrap(), seen.1);
    store.record_process_group(&record).unwrap();
    store
        .record_process_group_members(record.owner_pid, record.owner_start, record.pgid, &[seen])
        .unwrap();

    let report = reap_orphan_groups(&store);
    leader.wait().unwrap();
    let left = processes::wait_all_gone(&tree, Duration::from_secs(5));
    kill_all(&left);
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(report.groups_killed, 1, "{report:?}");
    assert!(store.process_groups().unwrap().is_empty());
}
