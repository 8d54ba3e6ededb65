//! Finding the project's hub, and starting one in the background when none serves.
//!
//! Two clients that find no hub at the same moment may both start `orchestra serve`; the hub
//! lock lets exactly one of them serve (the other says where the running one is and exits 0),
//! and both clients end up on the same hub.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ClientError;
use crate::api::HubClient;
use crate::discovery::{HubFiles, HubInfo, config_stamp, env_differences, env_fingerprint};
use orchestra_state_dir::private;

/// How long a client waits for a hub it started (or saw starting) to answer.
const START_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(40);
/// How often a client starts a hub again whose predecessor gave way to a hub that is not there.
const MAX_RESPAWNS: u32 = 3;
/// How much of a failed hub's log a client shows.
const LOG_TAIL_BYTES: u64 = 4096;

pub struct ConnectOptions {
    pub project_dir: PathBuf,
    /// The `orchestra` binary that serves (`orchestra serve`).
    pub orchestra_exe: PathBuf,
    /// Ask for a hub that runs on the built-in fake model (`--fake`).
    pub fake: bool,
    /// Accept the running hub whichever model it runs on (listings, `stop`); `fake` then only
    /// says how to start one when none runs.
    pub any_mode: bool,
    /// An extra `orchestrator.json` for a hub this client starts (`--config`).
    pub config_file: Option<PathBuf>,
    /// Start a hub in the background when none serves the project.
    pub start: bool,
    /// A hub this call starts stops when this process exits, however it exits
    /// (`orchestra serve --owner-pid`): the desktop shell's window owns the hub it started.
    pub owner_pid: Option<u32>,
}

/// A client on the project's hub.
pub struct Connection {
    pub client: HubClient,
    pub info: HubInfo,
    /// This call started the hub that serves (not only some hub that lost the race for the
    /// lock to another client's).
    pub started: bool,
    /// Things the person should know (the hub's environment differs from ours, …).
    pub warnings: Vec<String>,
}

pub async fn connect(options: &ConnectOptions) -> Result<Connection, ClientError> {
    let files = HubFiles::for_project(&options.project_dir);
    let mut deadline = Instant::now() + START_WAIT;
    let mut spawned: Option<Spawned> = None;
    let mut respawns = 0;
    let mut notes = Vec::new();
    loop {
        if let Some(info) = files.read_info() {
            let client = HubClient::new(&info)?;
            if let Ok(health) = client.health().await
                && health.hub_id == info.hub_id
            {
                if spawned.is_none() && options.start && config_changed(&info, options) {
                    if health.running == 0 {
                        // Nothing runs: restart it so the new configuration applies now.
                        tracing::info!(
                            pid = info.pid,
                            "the configuration changed; restarting the hub"
                        );
                        client.shutdown().await?;
                        wait_unlocked(&files, deadline).await?;
                        // The new hub gets a start of its own, however long the old one
                        // took to let go.
                        deadline = Instant::now() + START_WAIT;
                        notes.push(format!(
                            "the configuration changed since the hub (pid {}) started, so it was restarted",
                            info.pid
                        ));
                        continue;
                    }
                    notes.push(format!(
                        "the configuration changed since the hub (pid {}) started; it keeps the old one while {} task(s) run — `orchestra stop` applies the new one",
                        info.pid, health.running
                    ));
                }
                let ours = spawned.as_ref().is_some_and(|s| s.pid == info.pid);
                let mut connection = finish(options, client, info, ours)?;
                connection.warnings.splice(0..0, notes);
                return Ok(connection);
            }
        }
        let locked = files.is_locked()?;
        if !locked {
            if !options.start {
                return Err(ClientError::NoHub {
                    project: options.project_dir.clone(),
                });
            }
            match &mut spawned {
                None => spawned = Some(spawn(options, &files)?),
                Some(child) => {
                    if let Some(failure) = child.failure(&files) {
                        return Err(failure);
                    }
                    // It gave way to another hub (exit 0), yet no process holds the lock now:
                    // that hub is gone too, or there never was one. Start another.
                    if child.gave_way() && respawns < MAX_RESPAWNS {
                        respawns += 1;
                        tracing::info!(
                            pid = child.pid,
                            "the hub we started gave way, but none serves; starting another"
                        );
                        spawned = Some(spawn(options, &files)?);
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(match files.read_info() {
                Some(info) if locked => ClientError::HubNotAnswering {
                    pid: info.pid,
                    url: info.url,
                },
                _ => ClientError::StartTimedOut {
                    log: files.log.clone(),
                    tail: spawned.map(|s| s.log_tail(&files)).unwrap_or_default(),
                },
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The hub's configuration files changed since it loaded them, or this client asks for a
/// `--config` file the hub did not load.
fn config_changed(info: &HubInfo, options: &ConnectOptions) -> bool {
    let asked_other_file = options.config_file.as_ref().is_some_and(|file| {
        !info
            .config_files
            .iter()
            .any(|f| std::path::Path::new(f) == file.as_path())
    });
    asked_other_file || config_stamp(&info.config_files) != info.config_stamp
}

/// Waits until the hub lock is free (the hub we asked to stop has let go).
async fn wait_unlocked(files: &HubFiles, deadline: Instant) -> Result<(), ClientError> {
    while files.is_locked()? {
        if Instant::now() >= deadline {
            return Err(ClientError::HubNotAnswering {
                pid: files.read_info().map_or(0, |i| i.pid),
                url: String::new(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

fn finish(
    options: &ConnectOptions,
    client: HubClient,
    info: HubInfo,
    started: bool,
) -> Result<Connection, ClientError> {
    if info.fake != options.fake && !options.any_mode {
        return Err(ClientError::ModeMismatch {
            pid: info.pid,
            hub_fake: info.fake,
        });
    }
    let mut warnings = Vec::new();
    let differ = env_differences(&info.env, &env_fingerprint());
    if !started && !differ.is_empty() {
        warnings.push(format!(
            "the project's hub (pid {}) was started with a different environment: {} differ; \
             its workers use the hub's environment. Run `orchestra stop` and try again to restart \
             the hub with yours",
            info.pid,
            differ.join(", ")
        ));
    }
    Ok(Connection {
        client,
        info,
        started,
        warnings,
    })
}

/// A hub this client started.
struct Spawned {
    pid: u32,
    exited: std::sync::mpsc::Receiver<Option<i32>>,
    log_from: u64,
    status: Option<Option<i32>>,
}

fn spawn(options: &ConnectOptions, files: &HubFiles) -> Result<Spawned, ClientError> {
    private::create_private_dir(&files.dir).map_err(|source| ClientError::Files {
        path: files.dir.clone(),
        source,
    })?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(private::FILE_MODE)
        .open(&files.log)
        .and_then(|log| private::narrow(&files.log).map(|()| log))
        .map_err(|source| ClientError::Files {
            path: files.log.clone(),
            source,
        })?;
    let log_from = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log.try_clone().map_err(|source| ClientError::Files {
        path: files.log.clone(),
        source,
    })?;
    let mut command = Command::new(&options.orchestra_exe);
    command
        .arg("serve")
        .arg("--background")
        .arg("--project")
        .arg(&options.project_dir);
    if options.fake {
        command.arg("--fake");
    }
    if let Some(config) = &options.config_file {
        command.arg("--config").arg(config);
    }
    if let Some(owner) = options.owner_pid {
        command.arg("--owner-pid").arg(owner.to_string());
    }
    // Its own process group: the hub outlives this client (an OpenCode window, a CLI command)
    // and a Ctrl-C in the client's terminal does not reach it.
    command
        .current_dir(&options.project_dir)
        .env("PWD", &options.project_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .env(
            private::USER_UMASK_ENV,
            format!("{:o}", private::user_umask()),
        )
        .process_group(0);
    let mut child = command.spawn().map_err(|source| ClientError::Spawn {
        exe: options.orchestra_exe.clone(),
        source,
    })?;
    let pid = child.id();
    tracing::info!(pid, "started the project's hub in the background");
    // Reaped by a thread of ours, so the hub never lingers as a zombie of this client.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let code = child.wait().ok().and_then(|status| status.code());
        let _ = tx.send(code);
    });
    Ok(Spawned {
        pid,
        exited: rx,
        log_from,
        status: None,
    })
}

impl Spawned {
    /// The error to report when the hub we started has exited without serving.
    fn failure(&mut self, files: &HubFiles) -> Option<ClientError> {
        if self.status.is_none() {
            self.status = self.exited.try_recv().ok();
        }
        match self.status {
            // Exit 0 means another hub won the lock; keep waiting for that one.
            Some(Some(0)) | None => None,
            Some(code) => Some(ClientError::HubFailed {
                code,
                log: files.log.clone(),
                tail: self.log_tail(files),
            }),
        }
    }

    /// It exited 0: it found the lock taken and left the project to that holder.
    fn gave_way(&self) -> bool {
        self.status == Some(Some(0))
    }

    fn log_tail(&self, files: &HubFiles) -> String {
        read_tail(&files.log, self.log_from).unwrap_or_default()
    }
}

fn read_tail(path: &Path, from: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = from.max(len.saturating_sub(LOG_TAIL_BYTES));
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}
