//! Process groups recorded in the store, so nothing a worker server started outlives the hub.
//!
//! `PR_SET_PDEATHSIG` kills OpenCode with its hub, but not OpenCode's own children, and the
//! group kill that takes those down runs inside the hub, so it never runs when the hub is
//! SIGKILLed. Worse, OpenCode 1.18.33 starts every bash-tool command in a new session (its
//! pgid and sid are the command's own pid), so such commands are not even in OpenCode's group.
//!
//! So each hub process records in the store:
//! - the group of every worker server it starts (leader = OpenCode, with its start time);
//! - every group that a descendant of that server leads or joined (found by following parent
//!   links in `/proc` once a second while the server runs; never by name).
//!
//! A record names its owner process by pid *and* start time, and the boot it was made in. The
//! next hub to start ([`reap_orphans`]) kills the groups of owners that are gone, before it
//! does anything else, and forgets them; a server stopped normally kills its descendant groups
//! and forgets its records itself.
//!
//! Why a recorded group is safe to signal: a record also lists the processes seen in the group
//! (pid and start time, by the scan). Only those are ever trusted: a process with the same pid
//! and start time is the one we saw. While one of them is alive and still in the group, Linux
//! cannot have handed the group's id to anyone else (no pid is reused while a group or session
//! uses it), so the whole group is killed (members forked after the last scan included);
//! otherwise only the seen members still alive are killed, one by one. A group whose id was
//! reused by a stranger's group (its leader gone, its members unknown to us) is never signalled.
//!
//! Since each server runs under our subreaper supervisor (`subreaper.rs`), which kills its whole
//! tree when the hub dies, these records are the backstop for when the supervisor itself was
//! killed outright.
//!
//! Not chosen: making the hub a child subreaper (`PR_SET_CHILD_SUBREAPER`). It only helps
//! while the hub lives (a SIGKILLed subreaper adopts nothing), and the orphans it adopts must
//! be reaped with `waitpid(-1)`, which would race tokio's and our own reaping of OpenCode and
//! reopen the pgid-recycling window `group.rs` closes. The records cover both cases instead.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use orchestra_store::{ProcessGroupRecord, Store};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::ExitReport;
use super::procfs::{self, ProcStat};

/// How often the descendants of a running server are looked for. A process started and
/// orphaned by a crash within one interval is not recorded; a second is a fair trade for a
/// scan that costs about a millisecond.
const DESCENDANT_SCAN: Duration = Duration::from_secs(1);

/// What [`reap_orphans`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Groups of dead hubs that still had processes, now SIGKILLed.
    pub groups_killed: usize,
    /// The processes those groups had.
    pub processes_killed: usize,
    /// Records dropped without a signal: empty groups, reused ids, records of an earlier boot.
    pub forgotten: usize,
}

/// This hub process's records. Cheap to clone.
#[derive(Clone)]
pub struct GroupLedger {
    inner: Arc<LedgerInner>,
}

impl std::fmt::Debug for GroupLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupLedger")
            .field("hub_id", &self.inner.hub_id)
            .field("owner_pid", &self.inner.owner.pid)
            .finish_non_exhaustive()
    }
}

struct LedgerInner {
    store: Arc<Store>,
    hub_id: String,
    owner: ProcStat,
    boot_id: String,
}

/// The records of one running server, shared by its descendant scan and its reaper.
pub(crate) struct ServerGroups {
    ledger: GroupLedger,
    server_pgid: i32,
    label: String,
    /// Recorded groups (the server's and its descendants'): pgid → the processes seen in it,
    /// as `(pid, start)`.
    known: Mutex<HashMap<i32, Vec<(i32, u64)>>>,
    /// Set once the server is gone; no record is made after that.
    closed: Mutex<bool>,
}

/// Kills the process groups left by hub processes that are gone, then returns the ledger this
/// hub records its own groups in. Call it when the hub starts, before it starts anything.
/// It never fails the hub: problems are logged.
pub fn reap_orphans(store: &Arc<Store>, hub_id: &str) -> Option<GroupLedger> {
    let report = reap_orphan_groups(store);
    if report.groups_killed > 0 {
        tracing::warn!(
            groups = report.groups_killed,
            processes = report.processes_killed,
            "killed processes left behind by a hub that died"
        );
    }
    let (Some(owner), Some(boot_id)) = (procfs::own(), procfs::boot_id()) else {
        tracing::info!("no /proc: worker process groups are not recorded");
        return None;
    };
    Some(GroupLedger {
        inner: Arc::new(LedgerInner {
            store: store.clone(),
            hub_id: hub_id.to_owned(),
            owner,
            boot_id,
        }),
    })
}

/// The reap itself, for hubs and tests: see [`reap_orphans`].
pub fn reap_orphan_groups(store: &Store) -> ReapReport {
    let mut report = ReapReport::default();
    let records = match store.process_groups() {
        Ok(records) => records,
        Err(err) => {
            tracing::warn!(error = %err, "could not read recorded process groups");
            return report;
        }
    };
    if records.is_empty() {
        return report;
    }
    let Some(boot_id) = procfs::boot_id() else {
        return report;
    };
    let snapshot = procfs::all();
    let own_pgid = procfs::own().map(|me| me.pgid);
    for record in records {
        let forget = || {
            if let Err(err) =
                store.forget_process_group(record.owner_pid, record.owner_start, record.pgid)
            {
                tracing::warn!(error = %err, pgid = record.pgid, "could not forget a process group");
            }
        };
        if record.boot_id != boot_id {
            forget();
            report.forgotten += 1;
            continue;
        }
        let owner_alive = snapshot
            .get(&record.owner_pid)
            .is_some_and(|p| p.start == record.owner_start && p.is_running());
        if owner_alive {
            continue;
        }
        let seen = store
            .process_group_members(record.owner_pid, record.owner_start, record.pgid)
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, pgid = record.pgid, "could not read the processes of a recorded group");
                Vec::new()
            });
        let members = kill_seen_members(&snapshot, record.pgid, &seen, own_pgid);
        if members > 0 {
            tracing::warn!(
                pgid = record.pgid,
                worker = %record.label,
                hub = %record.hub_id,
                processes = members,
                "killed a process group left by a dead hub"
            );
            report.groups_killed += 1;
            report.processes_killed += members;
        } else {
            report.forgotten += 1;
        }
        forget();
    }
    report
}

/// SIGKILLs what is left of group `pgid` among `members` (the processes seen in it, as
/// `(pid, start)`; see the module docs); returns how many seen processes were running.
fn kill_seen_members(
    snapshot: &HashMap<i32, ProcStat>,
    pgid: i32,
    members: &[(i32, u64)],
    own_pgid: Option<i32>,
) -> usize {
    let own_pid = procfs::own().map(|me| me.pid);
    let alive: Vec<&ProcStat> = members
        .iter()
        .filter_map(|&(pid, start)| {
            snapshot
                .get(&pid)
                .filter(|now| now.start == start && now.is_running())
        })
        // Never ourselves, our own group, init, or the "every process" ids.
        .filter(|now| now.pid > 1 && Some(now.pid) != own_pid && Some(now.pgid) != own_pgid)
        .collect();
    if alive.is_empty() {
        return 0;
    }
    // A seen member still in the group pins its id: the group is the one we recorded.
    if pgid > 1 && Some(pgid) != own_pgid && alive.iter().any(|member| member.pgid == pgid) {
        match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => tracing::warn!(pgid, %error, "could not kill a recorded process group"),
        }
    }
    // Members that moved to another group since, or a group that could not be signalled.
    let mut killed = 0;
    for member in &alive {
        match kill(Pid::from_raw(member.pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => killed += 1,
            Err(error) => {
                tracing::warn!(pid = member.pid, %error, "could not kill a recorded process")
            }
        }
    }
    killed
}

impl GroupLedger {
    /// Records a server that was just spawned as the leader of its own group, and returns the
    /// handle its reaper and descendant scan share.
    pub(crate) fn record_server(&self, pgid: i32, label: &str) -> Option<Arc<ServerGroups>> {
        let leader = procfs::stat(pgid)?;
        let groups = Arc::new(ServerGroups {
            ledger: self.clone(),
            server_pgid: pgid,
            label: label.to_owned(),
            known: Mutex::new(HashMap::new()),
            closed: Mutex::new(false),
        });
        groups.record(pgid, leader.start);
        groups.record_members(pgid, &[(leader.pid, leader.start)]);
        Some(groups)
    }

    fn record_of(
        &self,
        pgid: i32,
        leader_start: u64,
        server_pgid: i32,
        label: &str,
    ) -> ProcessGroupRecord {
        let inner = &self.inner;
        ProcessGroupRecord {
            owner_pid: inner.owner.pid,
            owner_start: inner.owner.start,
            pgid,
            leader_pid: pgid,
            leader_start,
            boot_id: inner.boot_id.clone(),
            hub_id: inner.hub_id.clone(),
            server_pgid,
            label: label.to_owned(),
        }
    }
}

impl ServerGroups {
    fn record(&self, pgid: i32, leader_start: u64) {
        let closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return;
        }
        let record = self
            .ledger
            .record_of(pgid, leader_start, self.server_pgid, &self.label);
        match self.ledger.inner.store.record_process_group(&record) {
            Ok(()) => {
                tracing::debug!(worker = %self.label, pgid, "recorded process group");
                self.known
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(pgid)
                    .or_default();
            }
            Err(err) => {
                tracing::warn!(worker = %self.label, pgid, error = %err, "could not record a process group")
            }
        }
    }

    /// Records the groups of the server's descendants once a second until it exits.
    pub(crate) fn watch_descendants(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        mut exit: watch::Receiver<Option<ExitReport>>,
    ) {
        let groups = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(DESCENDANT_SCAN);
            loop {
                tokio::select! {
                    changed = exit.wait_for(Option::is_some) => {
                        let _ = changed;
                        return;
                    }
                    _ = tick.tick() => groups.scan(),
                }
            }
        });
    }

    /// Records the processes seen in a recorded group; the store keeps each once.
    fn record_members(&self, pgid: i32, seen: &[(i32, u64)]) {
        let closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return;
        }
        let new: Vec<(i32, u64)> = {
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(members) = known.get_mut(&pgid) else {
                return;
            };
            let new: Vec<(i32, u64)> = seen
                .iter()
                .filter(|member| !members.contains(member))
                .copied()
                .collect();
            members.extend(&new);
            new
        };
        if new.is_empty() {
            return;
        }
        let owner = &self.ledger.inner.owner;
        if let Err(err) =
            self.ledger
                .inner
                .store
                .record_process_group_members(owner.pid, owner.start, pgid, &new)
        {
            tracing::warn!(worker = %self.label, pgid, error = %err, "could not record the processes of a group");
        }
    }

    fn scan(&self) {
        let snapshot = procfs::all();
        let own_pgid = self.ledger.inner.owner.pgid;
        let known: HashSet<i32> = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        let mut seen: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
        for process in procfs::descendants(&snapshot, self.server_pgid) {
            let pgid = process.pgid;
            if pgid <= 1 || pgid == own_pgid {
                continue;
            }
            seen.entry(pgid)
                .or_default()
                .push((process.pid, process.start));
            if known.contains(&pgid) {
                continue;
            }
            // The group's leader if it is still there, else this member: no process of the
            // group started before either.
            let leader_start = snapshot
                .get(&pgid)
                .filter(|leader| leader.pgid == pgid)
                .map_or(process.start, |leader| leader.start.min(process.start));
            self.record(pgid, leader_start);
        }
        for (pgid, members) in seen {
            self.record_members(pgid, &members);
        }
    }

    /// Called once the server's own group is dead: kills the groups its descendants moved to,
    /// and forgets every record of this server.
    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        let known: Vec<(i32, Vec<(i32, u64)>)> = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .filter(|(pgid, _)| *pgid != self.server_pgid)
            .collect();
        if !known.is_empty() {
            let snapshot = procfs::all();
            for (pgid, members) in known {
                let killed = kill_seen_members(
                    &snapshot,
                    pgid,
                    &members,
                    Some(self.ledger.inner.owner.pgid),
                );
                if killed > 0 {
                    tracing::debug!(worker = %self.label, pgid, killed, "killed a group the worker's commands left");
                }
            }
        }
        let inner = &self.ledger.inner;
        if let Err(err) =
            inner
                .store
                .forget_server_groups(inner.owner.pid, inner.owner.start, self.server_pgid)
        {
            tracing::warn!(worker = %self.label, error = %err, "could not forget the worker's process groups");
        }
    }
}
