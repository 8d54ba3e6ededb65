//! [`ServerProcess`]: one `opencode serve` child, from spawn to reaped.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::group::{ProcessGroup, set_parent_death_signal, watch_exit};
use super::ledger::GroupLedger;
use super::output::{OutputLog, drain};
use super::subreaper::supervise_args;
use super::{ExitReport, ServeSpec, SupervisorError};
use crate::opencode::{BasicAuth, DEFAULT_USERNAME, OpenCodeClient, OpenCodeError};

/// Per-request bound while polling health: early requests can hang forever (see the reference).
const HEALTH_POLL_TIMEOUT: Duration = Duration::from_millis(500);
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait for the reap after SIGKILL before reporting the process as stuck.
const AFTER_KILL_WAIT: Duration = Duration::from_secs(5);
/// How long `stop` waits, once the process is reaped, for the tasks that watched it: the exit
/// watcher ends at once, the output readers at EOF — later only if a process that escaped
/// the group still holds a pipe, and then they are left to end with it.
const WATCHERS_AFTER_EXIT: Duration = Duration::from_secs(1);

/// A running `opencode serve`, in its own process group. Dropping it SIGKILLs the group.
pub struct ServerProcess {
    url: String,
    pid: u32,
    password: String,
    label: String,
    group: Arc<ProcessGroup>,
    output: Arc<OutputLog>,
    exit: watch::Receiver<Option<ExitReport>>,
    /// The output readers, the exit watcher and the descendant scanner: they end when the
    /// process does, and `stop` waits for them.
    watchers: TaskTracker,
}

// By hand: the password must never reach a log line.
impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("url", &self.url)
            .field("pid", &self.pid)
            .field("password", &"<redacted>")
            .field("label", &self.label)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// What the startup wait saw before giving up, for the error message.
enum StartupFailure {
    Exited(ExitReport),
    NotReady { progress: String },
}

impl ServerProcess {
    /// Spawns `<binary> serve --hostname 127.0.0.1 --port <port>` and waits until it answers
    /// `GET /global/health`, all within `spec.startup_timeout`. On failure the group is killed
    /// and the error carries the last output lines.
    ///
    /// Call this from async code, never from `spawn_blocking` (see `set_parent_death_signal`).
    pub async fn spawn(spec: ServeSpec) -> Result<ServerProcess, SupervisorError> {
        ServerProcess::spawn_recorded(spec, None).await
    }

    /// [`ServerProcess::spawn`], recording the server's process group and the groups of its
    /// descendants in `ledger`, so a later hub can kill them if this process dies abruptly.
    pub async fn spawn_recorded(
        spec: ServeSpec,
        ledger: Option<&GroupLedger>,
    ) -> Result<ServerProcess, SupervisorError> {
        let deadline = Instant::now() + spec.startup_timeout;
        let cwd = std::fs::canonicalize(&spec.cwd)
            .ok()
            .filter(|cwd| cwd.is_dir())
            .ok_or_else(|| SupervisorError::InvalidCwd {
                label: spec.label.clone(),
                cwd: spec.cwd.clone(),
            })?;

        let mut command = match &spec.supervisor {
            Some(supervisor) => {
                let mut command = tokio::process::Command::new(supervisor);
                command.args(supervise_args(std::process::id(), &spec.binary));
                command
            }
            None => tokio::process::Command::new(&spec.binary),
        };
        command
            .arg("serve")
            .arg("--hostname")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(spec.port.to_string())
            .current_dir(&cwd)
            .envs(spec.env.iter().map(|(key, value)| (key, value)))
            // OpenCode takes its project directory from $PWD, not from the real cwd.
            .env("PWD", &cwd)
            .env("OPENCODE_SERVER_PASSWORD", &spec.password)
            .env("OPENCODE_SERVER_USERNAME", DEFAULT_USERNAME)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        set_parent_death_signal(&mut command);

        let mut child = command.spawn().map_err(|source| SupervisorError::Spawn {
            label: spec.label.clone(),
            binary: spec.binary.clone(),
            hint: spawn_hint(&source),
            source,
        })?;
        // `id()` is only None after the child was awaited, which cannot have happened yet.
        let pid = child.id().unwrap_or_default();
        let raw_pid = i32::try_from(pid).unwrap_or_default();
        if raw_pid <= 0 {
            // Never signal pgid 0 or negative: that would hit our own group.
            let _ = child.start_kill();
            return Err(SupervisorError::Spawn {
                label: spec.label.clone(),
                binary: spec.binary.clone(),
                hint: "the child has no pid",
                source: std::io::Error::other("spawned process has no pid"),
            });
        }
        // process_group(0) makes the child the leader of a group whose id is its pid.
        let records = ledger.and_then(|ledger| ledger.record_server(raw_pid, &spec.label));
        let group = Arc::new(ProcessGroup::new(
            Pid::from_raw(raw_pid),
            spec.label.clone(),
            records.clone(),
        ));
        tracing::debug!(worker = %spec.label, pid, cwd = %cwd.display(), "spawned opencode serve");

        let output = Arc::new(OutputLog::default());
        let watchers = TaskTracker::new();
        let (listening_tx, mut listening_rx) = mpsc::channel(2);
        if let Some(stdout) = child.stdout.take() {
            drain(
                &watchers,
                stdout,
                "stdout",
                spec.label.clone(),
                output.clone(),
                Some(listening_tx),
            );
        }
        if let Some(stderr) = child.stderr.take() {
            drain(
                &watchers,
                stderr,
                "stderr",
                spec.label.clone(),
                output.clone(),
                None,
            );
        }
        let exit = watch_exit(&watchers, child, group.clone());
        if let Some(records) = &records {
            records.watch_descendants(&watchers, exit.clone());
        }
        watchers.close();

        let mut process = ServerProcess {
            url: String::new(),
            pid,
            password: spec.password.clone(),
            label: spec.label.clone(),
            group,
            output,
            exit,
            watchers,
        };
        match process.wait_ready(&mut listening_rx, deadline).await {
            Ok(url) => {
                if spec.supervisor.is_some() {
                    // OpenCode is the supervisor's first child; it answered, so it exists.
                    process.pid = super::procfs::first_child(raw_pid)
                        .and_then(|child| u32::try_from(child).ok())
                        .unwrap_or(pid);
                }
                tracing::info!(worker = %spec.label, pid = process.pid, group = pid, %url, "OpenCode is ready");
                process.url = url;
                Ok(process)
            }
            Err(failure) => {
                // Best effort: the error below is what matters; Drop kills again if needed.
                let _ = process.stop(Duration::ZERO).await;
                let last_output = process.output.render();
                Err(match failure {
                    StartupFailure::Exited(exit) => SupervisorError::ExitedDuringStartup {
                        label: spec.label,
                        exit,
                        last_output,
                    },
                    StartupFailure::NotReady { progress } => SupervisorError::StartupTimeout {
                        label: spec.label,
                        timeout_ms: u64::try_from(spec.startup_timeout.as_millis())
                            .unwrap_or(u64::MAX),
                        progress,
                        last_output,
                    },
                })
            }
        }
    }

    /// Waits for the "listening" line, then for a healthy `/global/health`.
    async fn wait_ready(
        &self,
        listening: &mut mpsc::Receiver<String>,
        deadline: Instant,
    ) -> Result<String, StartupFailure> {
        let mut exit = self.exit.clone();
        let mut progress = "it never printed `opencode server listening on …`".to_owned();

        let url = tokio::select! {
            biased;
            report = wait_for_exit(&mut exit) => return Err(StartupFailure::Exited(report)),
            url = listening.recv() => match url {
                Some(url) => url,
                // Both pipes closed without the line: the process is on its way out.
                None => match tokio::time::timeout_at(deadline, wait_for_exit(&mut exit)).await {
                    Ok(report) => return Err(StartupFailure::Exited(report)),
                    Err(_) => return Err(StartupFailure::NotReady { progress }),
                },
            },
            () = tokio::time::sleep_until(deadline) => return Err(StartupFailure::NotReady { progress }),
        };

        let client =
            match OpenCodeClient::new(&url, Some(BasicAuth::opencode(&self.password)), None) {
                Ok(client) => client,
                Err(error) => {
                    progress = format!("it printed an unusable URL `{url}`: {error}");
                    return Err(StartupFailure::NotReady { progress });
                }
            };
        loop {
            progress = format!("it listens on {url} but GET /global/health did not succeed yet");
            let poll = tokio::select! {
                biased;
                report = wait_for_exit(&mut exit) => return Err(StartupFailure::Exited(report)),
                () = tokio::time::sleep_until(deadline) => return Err(StartupFailure::NotReady { progress }),
                poll = client.health(HEALTH_POLL_TIMEOUT) => poll,
            };
            match poll {
                Ok(health) if health.healthy => return Ok(url),
                Ok(health) => {
                    tracing::debug!(worker = %self.label, ?health, "OpenCode not healthy yet");
                }
                Err(error) => {
                    tracing::debug!(worker = %self.label, %error, "OpenCode health poll failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(HEALTH_POLL_INTERVAL) => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(StartupFailure::NotReady { progress });
                }
            }
        }
    }

    /// The base URL, like `http://127.0.0.1:4096`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Resident memory of the server process now (its leader), in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        super::procfs::rss_bytes(i32::try_from(self.pid()).unwrap_or(0))
    }

    /// OpenCode's own pid. Under a supervisor the process group (and the process the hub
    /// waits for) is the supervisor's; this is its child.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The worker name used in logs and errors.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A client with this server's basic auth, optionally scoped to a project directory.
    pub fn client(&self, directory: Option<PathBuf>) -> Result<OpenCodeClient, OpenCodeError> {
        OpenCodeClient::new(
            &self.url,
            Some(BasicAuth::opencode(&self.password)),
            directory,
        )
    }

    /// Becomes `Some` once the process has exited for any reason and was reaped.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitReport>> {
        self.exit.clone()
    }

    /// The last lines OpenCode printed on stdout and stderr.
    pub fn recent_output(&self) -> Vec<String> {
        self.output.snapshot()
    }

    /// SIGTERM to the whole group, up to `grace` to exit, then SIGKILL. Idempotent; returns
    /// once the leader is reaped (and the rest of its group killed) and the tasks that watched
    /// it ended (bounded).
    pub async fn stop(&self, grace: Duration) -> Result<(), SupervisorError> {
        self.end(grace).await?;
        if tokio::time::timeout(WATCHERS_AFTER_EXIT, self.watchers.wait())
            .await
            .is_err()
        {
            tracing::debug!(worker = %self.label, left = self.watchers.len(), "OpenCode's output is still open after it exited");
        }
        Ok(())
    }

    async fn end(&self, grace: Duration) -> Result<(), SupervisorError> {
        let mut exit = self.exit.clone();
        if exit.borrow().is_some() {
            return Ok(());
        }
        if !grace.is_zero() {
            self.signal(Signal::SIGTERM)?;
            if tokio::time::timeout(grace, wait_for_exit(&mut exit))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tracing::debug!(worker = %self.label, grace_ms = grace.as_millis(), "OpenCode ignored SIGTERM; killing");
        }
        self.signal(Signal::SIGKILL)?;
        match tokio::time::timeout(AFTER_KILL_WAIT, wait_for_exit(&mut exit)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(SupervisorError::StillRunning {
                label: self.label.clone(),
                pid: u32::try_from(self.group.pgid().as_raw()).unwrap_or_default(),
                waited_ms: u64::try_from(AFTER_KILL_WAIT.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    fn signal(&self, signal: Signal) -> Result<bool, SupervisorError> {
        self.group
            .signal(signal)
            .map_err(|source| SupervisorError::Signal {
                label: self.label.clone(),
                pgid: self.group.pgid().as_raw(),
                source,
            })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exit.borrow().is_none() {
            // The group's own lock makes this a no-op once the leader was reaped.
            if let Err(error) = self.group.signal(Signal::SIGKILL) {
                tracing::warn!(worker = %self.label, %error, "could not kill OpenCode on drop");
            }
        }
    }
}

/// Resolves with the exit report; if the reaper task is gone (runtime shutting down) it
/// never resolves, so callers always race it against a deadline.
async fn wait_for_exit(exit: &mut watch::Receiver<Option<ExitReport>>) -> ExitReport {
    // Copy the report out before awaiting anything: the watch guard is not Send.
    let report = exit.wait_for(Option::is_some).await.ok().and_then(|r| *r);
    match report {
        Some(report) => report,
        None => std::future::pending().await,
    }
}

fn spawn_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            "no such executable; point the worker at an installed OpenCode (the pinned one is installed by `scripts/install-opencode` at tools/opencode/node_modules/.bin/opencode)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "the file is not executable; check its permissions (chmod +x) or the path"
        }
        _ => "check the OpenCode binary path and that the system can start processes",
    }
}
