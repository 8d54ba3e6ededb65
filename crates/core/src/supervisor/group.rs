//! The process group of one child: signalling it safely, the parent-death signal, and reaping.
//!
//! PID reuse: a pid (and the pgid equal to it) can only be handed to a new process after the
//! old one is reaped. The reaper therefore first waits for the leader *without* reaping it
//! (`waitid(WNOWAIT)`), SIGKILLs whatever is left in the group (MCP servers and other children
//! OpenCode does not stop itself) while the zombie leader still pins the pgid, marks the group
//! as reaped, and only then reaps. Every signal checks that mark under the same lock, so we
//! never signal a pgid after it could have been recycled.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{oneshot, watch};
use tokio_util::task::TaskTracker;

use super::ExitReport;
use super::ledger::ServerGroups;

pub(crate) struct ProcessGroup {
    pgid: Pid,
    label: String,
    reaped: Mutex<bool>,
    /// The store records of this group and its descendants' groups, when the hub keeps them.
    records: Option<Arc<ServerGroups>>,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("pgid", &self.pgid)
            .field("label", &self.label)
            .field("recorded", &self.records.is_some())
            .finish_non_exhaustive()
    }
}

impl ProcessGroup {
    pub(crate) fn new(pgid: Pid, label: String, records: Option<Arc<ServerGroups>>) -> Self {
        Self {
            pgid,
            label,
            reaped: Mutex::new(false),
            records,
        }
    }

    pub(crate) fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Sends `signal` to the whole group unless the leader was already reaped. Returns whether
    /// a signal was delivered. An empty group (ESRCH) is not an error.
    pub(crate) fn signal(&self, signal: Signal) -> Result<bool, Errno> {
        let reaped = self
            .reaped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *reaped {
            return Ok(false);
        }
        match killpg(self.pgid, signal) {
            Ok(()) => {
                tracing::debug!(worker = %self.label, pgid = self.pgid.as_raw(), ?signal, "signalled OpenCode process group");
                Ok(true)
            }
            Err(Errno::ESRCH) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn mark_reaped(&self) {
        *self
            .reaped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
    }

    /// Called once the leader is a zombie: kill the rest of the group, then forbid signals.
    fn finish(&self) {
        let mut reaped = self
            .reaped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !*reaped {
            match killpg(self.pgid, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(error) => {
                    tracing::warn!(worker = %self.label, pgid = self.pgid.as_raw(), %error, "could not kill the rest of the OpenCode process group");
                }
            }
            *reaped = true;
        }
    }
}

/// Makes the child die with SIGKILL when the thread that forked it exits.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked dies, not the process. Tokio's
/// blocking-pool threads exit after being idle, so children must never be spawned from
/// `spawn_blocking`; spawning from async code runs on a runtime thread, which lives as long
/// as the runtime (and a SIGKILLed hub takes all its threads with it).
#[allow(unsafe_code)]
pub(crate) fn set_parent_death_signal(command: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    // The hub runs with umask 077 (its state is private); OpenCode and the commands it runs
    // write the user's project and get the user's umask back.
    let user_umask = nix::sys::stat::Mode::from_bits_truncate(
        orchestra_state_dir::private::user_umask() as nix::libc::mode_t,
    );
    command.env(
        orchestra_state_dir::private::USER_UMASK_ENV,
        format!("{:o}", user_umask.bits()),
    );
    // SAFETY: the closure runs in the forked child between fork and exec. It only calls
    // prctl(2), umask(2) and getppid(2), all async-signal-safe, builds io::Errors from raw errno
    // values (no allocation), and touches no locks or shared state.
    unsafe {
        command.pre_exec(move || {
            nix::sys::stat::umask(user_umask);
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))?;
            // The parent may have died before prctl took effect; then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Reaps `child` in the background and publishes its [`ExitReport`]. See the module docs
/// for the ordering that makes group signals safe.
pub(crate) fn watch_exit(
    tasks: &TaskTracker,
    mut child: Child,
    group: Arc<ProcessGroup>,
) -> watch::Receiver<Option<ExitReport>> {
    let (report_tx, report_rx) = watch::channel(None);
    let (zombie_tx, zombie_rx) = oneshot::channel::<bool>();
    let pid = group.pgid();
    // A plain thread, not spawn_blocking: runtime shutdown waits for blocking tasks, and this
    // one lasts as long as OpenCode does. It only waits; it never forks.
    let waiter = std::thread::Builder::new()
        .name(format!("opencode-wait-{}", pid.as_raw()))
        .spawn(move || {
            let is_zombie = loop {
                match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                    Err(Errno::EINTR) => continue,
                    Ok(_) => break true,
                    Err(error) => {
                        tracing::debug!(pid = pid.as_raw(), %error, "waitid failed; falling back to a plain wait");
                        break false;
                    }
                }
            };
            let _ = zombie_tx.send(is_zombie);
        });
    let waiter_started = match waiter {
        Ok(_detached) => true,
        Err(error) => {
            tracing::warn!(%error, "could not start the exit-waiter thread; falling back to a plain wait");
            false
        }
    };

    tasks.spawn(async move {
        // Only a confirmed zombie pins the pgid; otherwise just reap, and stop signalling.
        let is_zombie = waiter_started && zombie_rx.await.unwrap_or(false);
        if is_zombie {
            group.finish();
        }
        let report = match child.wait().await {
            Ok(status) => ExitReport::from_status(status),
            Err(error) => {
                tracing::warn!(worker = %group.label, %error, "could not reap OpenCode");
                ExitReport {
                    code: None,
                    signal: None,
                    at_ms: now_ms(),
                }
            }
        };
        group.mark_reaped();
        // The server's own group is dead now; the groups its commands moved to go next.
        if let Some(records) = &group.records {
            records.close();
        }
        tracing::debug!(worker = %group.label, ?report, "OpenCode exited");
        report_tx.send_replace(Some(report));
    });
    report_rx
}

impl ExitReport {
    fn from_status(status: ExitStatus) -> Self {
        Self {
            code: status.code(),
            signal: status.signal(),
            at_ms: now_ms(),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
