//! The tiny supervisor every hub-started `opencode serve` runs under, so nothing a worker
//! starts outlives the hub — by construction, not by scanning.
//!
//! A worker's bash tool runs `cmd &`, `nohup cmd &`, `setsid cmd`, double forks: the shell
//! returns at once and its child is re-parented within milliseconds, long before any scan of
//! the process tree could record it. So the hub does not start OpenCode itself; it starts
//! `orchestra __supervise <hub pid> <opencode> serve …` (its own executable, in a hidden
//! mode), which:
//! - is a child subreaper (`PR_SET_CHILD_SUBREAPER`): every orphan below it is re-parented to
//!   it instead of to init, so the whole tree stays its descendants;
//! - gets SIGTERM when the hub dies (`PR_SET_PDEATHSIG`, checked against the hub's pid right
//!   after, since the hub may have died before the call);
//! - runs OpenCode in its own process group (the one the hub recorded and signals);
//! - forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to OpenCode while the hub lives, and reaps every
//!   orphan it adopts;
//! - once OpenCode has exited, or at once when the hub is gone, kills every process left below
//!   it and exits with OpenCode's status (a signal is re-raised), like tini and dumb-init.
//!
//! Killing the subtree only ever signals *direct children*: a child's pid cannot be reused
//! before we reap it, so the signal cannot reach a stranger. Grandchildren are re-parented to
//! us when their parent dies and are killed in the next round; when `waitpid` reports no child
//! at all, nothing is left below us.
//!
//! Signals are taken synchronously (`sigwait` on a blocked set), so no handler runs; this mode
//! must be entered before any other thread exists (before the async runtime), because a signal
//! blocked in one thread only would be delivered to another. The child gets an empty signal
//! mask again before it runs OpenCode.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill, raise};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid};

/// The hidden first argument of the `orchestra` binary that selects this mode.
pub const SUPERVISE_ARG: &str = "__supervise";

/// How long the final kill may take before the supervisor gives up and exits anyway (a process
/// in uninterruptible sleep ignores even SIGKILL for a while).
const KILL_ALL_BOUND: Duration = Duration::from_secs(5);
const KILL_ROUND_PAUSE: Duration = Duration::from_millis(5);

/// The arguments the hub passes after [`SUPERVISE_ARG`]: its own pid, then the command.
pub fn supervise_args(hub_pid: u32, program: &std::path::Path) -> Vec<OsString> {
    vec![
        OsString::from(SUPERVISE_ARG),
        OsString::from(hub_pid.to_string()),
        program.as_os_str().to_owned(),
    ]
}

/// Runs the supervisor mode if `args` (the process's arguments, without argv[0]) select it;
/// returns the exit code to end the process with. `None`: not this mode.
pub fn run_if_selected(args: &[OsString]) -> Option<u8> {
    let (first, rest) = args.split_first()?;
    if first != SUPERVISE_ARG {
        return None;
    }
    Some(match rest {
        [hub, program, command_args @ ..] => match hub.to_str().and_then(|p| p.parse().ok()) {
            Some(hub) => supervise(hub, program, command_args),
            None => usage(),
        },
        _ => usage(),
    })
}

fn usage() -> u8 {
    eprintln!("orchestra {SUPERVISE_ARG}: usage: {SUPERVISE_ARG} <hub pid> <program> [args…]");
    2
}

/// How OpenCode ended.
#[derive(Debug, Clone, Copy)]
enum ChildEnd {
    Code(i32),
    Signal(Signal),
}

fn supervise(hub: i32, program: &OsString, args: &[OsString]) -> u8 {
    let signals = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
    ];
    let mut set = SigSet::empty();
    for signal in signals {
        set.add(signal);
    }
    if let Err(error) = set.thread_block() {
        eprintln!("orchestra {SUPERVISE_ARG}: could not block signals: {error}");
        return 1;
    }
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("orchestra {SUPERVISE_ARG}: could not become a child subreaper: {error}");
        return 1;
    }
    if let Err(error) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        eprintln!("orchestra {SUPERVISE_ARG}: could not set the parent-death signal: {error}");
        return 1;
    }
    // The hub may have died before the parent-death signal was armed: then nobody would tell us.
    if getppid().as_raw() != hub {
        eprintln!("orchestra {SUPERVISE_ARG}: the hub (pid {hub}) is gone; not starting");
        return 1;
    }
    let mut command = Command::new(program);
    command.args(args);
    unblock_signals_in_child(&mut command);
    let child = match command.spawn() {
        Ok(child) => Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)),
        Err(error) => {
            eprintln!(
                "orchestra {SUPERVISE_ARG}: could not start `{}`: {error}",
                program.to_string_lossy()
            );
            return 127;
        }
    };
    if child.as_raw() <= 0 {
        return 1;
    }

    let end = loop {
        let signal = match set.wait() {
            Ok(signal) => signal,
            Err(Errno::EINTR) => continue,
            Err(error) => {
                eprintln!("orchestra {SUPERVISE_ARG}: sigwait failed: {error}");
                break None;
            }
        };
        match signal {
            Signal::SIGCHLD => {
                if let Some(end) = reap_ready(child) {
                    break Some(end);
                }
            }
            _ if getppid().as_raw() != hub => {
                // The hub is gone: take everything down now, OpenCode included.
                break None;
            }
            _ => {
                // The hub asks OpenCode to stop; the rest goes once OpenCode has exited.
                let _ = kill(child, signal);
            }
        }
    };
    kill_everything_below();
    match end {
        Some(ChildEnd::Code(code)) => u8::try_from(code).unwrap_or(1),
        Some(ChildEnd::Signal(signal)) => die_like(signal),
        None => 1,
    }
}

/// The child must not inherit our blocked signals (`exec` keeps the mask, and std does not
/// reset it): OpenCode would then ignore the SIGTERM that asks it to stop.
#[allow(unsafe_code)]
fn unblock_signals_in_child(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child between fork and exec. It only calls
    // pthread_sigmask(3) (async-signal-safe) on a set built on the stack, builds an io::Error
    // from a raw errno (no allocation), and touches no locks or shared state.
    unsafe {
        command.pre_exec(|| {
            SigSet::empty()
                .thread_set_mask()
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))
        });
    }
}

/// Reaps every child that has exited (OpenCode and adopted orphans); returns how OpenCode
/// ended if it was among them.
fn reap_ready(main: Pid) -> Option<ChildEnd> {
    let mut main_end = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => {
                main_end = Some(ChildEnd::Code(code));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                main_end = Some(ChildEnd::Signal(signal));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return main_end,
            Err(Errno::EINTR) => {}
            Err(_) => return main_end,
            Ok(_) => {}
        }
    }
}

/// SIGKILLs our children round after round (orphans of the killed ones become our children)
/// until we have none; see the module docs for why only direct children are signalled.
fn kill_everything_below() {
    let me = getpid().as_raw();
    let started = Instant::now();
    loop {
        for pid in super::procfs::children(me) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Reap what died, without blocking: a child that is still dying is waited for below.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) | Ok(_) => {}
                Err(_) => return,
            }
        }
        if started.elapsed() > KILL_ALL_BOUND {
            eprintln!("orchestra {SUPERVISE_ARG}: processes below OpenCode survived SIGKILL");
            return;
        }
        std::thread::sleep(KILL_ROUND_PAUSE);
    }
}

/// Ends this process the way OpenCode ended: the same signal with its default action.
fn die_like(signal: Signal) -> u8 {
    let mut only = SigSet::empty();
    only.add(signal);
    let _ = only.thread_unblock();
    let _ = raise(signal);
    // A signal whose default action is not to terminate: report it the shell's way.
    u8::try_from(128 + signal as i32).unwrap_or(1)
}
