//! The window's hub: attach to the project's hub or start one, and stop it again when the window
//! closes — only if this window started it.
//!
//! A hub started here gets `--owner-pid <this process>`, so it also stops when this process dies
//! without closing the window (SIGKILL, a crash): nothing the window started outlives it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use orchestra_client::{ConnectOptions, HubClient, HubFiles, HubInfo, connect};

/// How long a hub we own may take to stop (cancel its jobs, stop its workers) before it is
/// sent SIGTERM, and then again before we give up on it.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// What the window needs to reach its project's hub.
#[derive(Clone)]
pub struct Setup {
    pub project_dir: PathBuf,
    pub orchestra_exe: PathBuf,
    /// Start a missing hub on the built-in fake model.
    pub fake: bool,
}

/// The hub the window is on now.
#[derive(Clone)]
pub struct Current {
    pub client: HubClient,
    pub info: HubInfo,
    /// This window started it (and stops it when it closes).
    pub owned: bool,
    /// Things the person should know (another environment, a restart after a config change).
    pub warnings: Vec<String>,
    /// The hub process's start time (clock ticks after boot) when we attached: a pid is only
    /// signalled while it still names that very process, never one that reused the pid.
    pub started: Option<u64>,
}

/// The `orchestra` binary: `explicit`, else the one next to this binary (an install or a
/// `cargo build` puts both in one folder), else the first on PATH.
pub fn find_orchestra(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(
            is_executable(&path),
            "--orchestra {}: no executable there",
            path.display()
        );
        return Ok(path);
    }
    let me = std::env::current_exe().context("cannot find the path of orchestra-desktop")?;
    let beside = me.with_file_name("orchestra");
    if is_executable(&beside) {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("orchestra"))
        .find(|path| is_executable(path))
        .with_context(|| {
            format!(
                "cannot find the `orchestra` binary: not next to {} and not on PATH. Build it \
                 (`cargo build -p orchestra-cli`, which puts it beside this one) or pass --orchestra PATH",
                me.display()
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The project's hub: the running one, or one started now and owned by this process.
pub async fn attach(setup: &Setup) -> anyhow::Result<Current> {
    let connection = connect(&ConnectOptions {
        project_dir: setup.project_dir.clone(),
        orchestra_exe: setup.orchestra_exe.clone(),
        fake: setup.fake,
        // The window shows whichever hub serves the project.
        any_mode: true,
        config_file: None,
        start: true,
        owner_pid: Some(std::process::id()),
    })
    .await?;
    if connection.started {
        tracing::info!(pid = connection.info.pid, url = %connection.info.url, "started the project's hub; it stops when this window closes");
    } else {
        tracing::info!(pid = connection.info.pid, url = %connection.info.url, "attached to the project's running hub; it keeps running when this window closes");
    }
    let started = process_start(connection.info.pid);
    Ok(Current {
        client: connection.client,
        info: connection.info,
        owned: connection.started,
        warnings: connection.warnings,
        started,
    })
}

/// Stops the hub if this window owns it and waits until it has let go of the project (its
/// workers are stopped by then); a hub the window only attached to is left alone.
pub async fn release(current: Option<Current>, project_dir: &Path) {
    let Some(current) = current.filter(|c| c.owned) else {
        return;
    };
    let pid = current.info.pid;
    let files = HubFiles::for_project(project_dir);
    // Another client may have replaced our hub (a config change restarts an idle hub); only
    // the hub we started is ours to stop.
    if files
        .read_info()
        .is_some_and(|info| info.hub_id != current.info.hub_id)
    {
        tracing::info!(
            pid,
            "the hub this window started was replaced; leaving the new one running"
        );
        return;
    }
    tracing::info!(pid, "stopping the hub this window started");
    if let Err(err) = current.client.shutdown().await {
        tracing::warn!(
            pid,
            "asking the hub to stop failed ({err}); sending it SIGTERM"
        );
        terminate(pid, current.started);
    }
    if wait_released(&files, STOP_WAIT).await {
        return;
    }
    tracing::warn!(
        pid,
        "the hub still runs {} s after it was asked to stop; sending it SIGTERM",
        STOP_WAIT.as_secs()
    );
    terminate(pid, current.started);
    if !wait_released(&files, STOP_WAIT).await {
        tracing::error!(pid, "the hub did not stop; stop it with `kill -9 {pid}`");
    }
}

/// True once no process holds the project's hub lock (the hub has stopped, workers included).
async fn wait_released(files: &HubFiles, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        match files.is_locked() {
            Ok(false) => return true,
            Ok(true) => {}
            Err(err) => {
                tracing::warn!("cannot check the hub lock: {err}");
                return false;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to the hub, if `pid` is still the process we attached to (same start time).
fn terminate(pid: u32, started: Option<u64>) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    if started.is_none() || process_start(pid) != started {
        tracing::warn!(
            pid,
            "the hub's process is gone (its pid names another process now or cannot be checked); not signalling it"
        );
        return;
    }
    if let Err(err) = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::SIGTERM,
    ) {
        tracing::warn!(pid, "cannot signal the hub: {err}");
    }
}

/// When process `pid` started (`/proc/<pid>/stat` field 22, clock ticks after boot); `None`
/// when it does not exist (or is a zombie) or `/proc` cannot say.
fn process_start(pid: u32) -> Option<u64> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and `)`: count from the last `)`.
    let (_, tail) = line.rsplit_once(')')?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_that_names_another_process_now_is_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let started = process_start(pid);
        assert!(started.is_some());
        // Another start time: the pid was reused by a stranger.
        terminate(pid, started.map(|s| s.saturating_sub(1)));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            child.try_wait().unwrap().is_none(),
            "a stranger was signalled"
        );
        // The very process we attached to is.
        terminate(pid, started);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15));
    }
}
