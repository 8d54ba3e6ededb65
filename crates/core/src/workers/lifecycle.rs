//! Starting, watching and restarting the OpenCode servers of the pool.
//!
//! One start at a time per hub (a start OpenCode aborts is retried), with our server defaults
//! (no autoupdate or sharing, snapshots per `runtime.snapshots`). Every server is watched by
//! health pings — an attached one too: three missed pings fail its tasks and reconnect — and a
//! dead one is restarted with backoff, at most `runtime.maxRestarts` times since it last passed
//! a health check. Listings read a copy of each slot's server, so they never wait for a start.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orchestra_protocol::WorkerStatus;
use serde_json::json;

use super::{ServerConn, ServerKey, Slot, WorkerError, WorkerPool, agents};
use crate::config::{Config, Profile};
use crate::opencode::{BasicAuth, OpenCodeClient};
use crate::supervisor::{ExitReport, ServeSpec, ServerProcess, SupervisorError};

/// How often a start that OpenCode aborted is tried before giving up.
const STARTUP_ATTEMPTS: u32 = 3;
/// The workers' own OpenCode database, by name in OpenCode's data folder (see `server_env`).
pub const WORKER_DB: &str = "orchestra-workers.db";

impl WorkerPool {
    /// The slot's running server, started if needed. The start runs in a task of the pool's,
    /// not the caller's: a caller that stops waiting (its task was canceled or timed out) never
    /// stops a start that other tasks wait for, and never leaves the worker `starting`.
    pub(super) async fn ensure_server(
        &self,
        key: &ServerKey,
        profile: &Profile,
        auto_spawn: bool,
    ) -> Result<Arc<ServerConn>, WorkerError> {
        let pool = self.clone();
        let key = key.clone();
        let profile = profile.clone();
        let started = self
            .inner
            .tasks
            .spawn(async move { pool.ensure_server_locked(&key, &profile, auto_spawn).await });
        match started.await {
            Ok(result) => result,
            // The pool's task panicked or the runtime is going down.
            Err(join) => Err(WorkerError::Interrupted {
                reason: join.to_string(),
            }),
        }
    }

    async fn ensure_server_locked(
        &self,
        key: &ServerKey,
        profile: &Profile,
        auto_spawn: bool,
    ) -> Result<Arc<ServerConn>, WorkerError> {
        let slot = self.slot(key);
        // Held across the spawn on purpose: concurrent tasks for the same
        // server wait for one spawn instead of racing to start duplicates.
        let mut current = slot.current.lock().await;
        if let Some(conn) = current.as_ref()
            && !has_exited(conn)
        {
            return Ok(conn.clone());
        }
        if !auto_spawn {
            return Err(WorkerError::NotRunning {
                profile: profile.id.clone(),
            });
        }
        let conn = self
            .start_server(key, &profile.id, WorkerStatus::Starting)
            .await?;
        *current = Some(conn.clone());
        slot.show(Some(conn.clone()));
        drop(current);
        self.watch_server(slot, conn.clone());
        Ok(conn)
    }

    /// Starts the slot's server; its workers show `meanwhile` (starting, or restarting) until
    /// it is ready or failed.
    async fn start_server(
        &self,
        key: &ServerKey,
        for_profile: &str,
        meanwhile: WorkerStatus,
    ) -> Result<Arc<ServerConn>, WorkerError> {
        let hosted = self.profiles_on(key);
        self.set_status(&hosted, meanwhile, None);
        let result = self.start_server_inner(key, for_profile, &hosted).await;
        if let Ok(conn) = &result {
            self.load_catalog(key, conn, &hosted).await;
        }
        match &result {
            Ok(_) => self.set_status(&hosted, WorkerStatus::Ready, None),
            Err(err) => self.set_status(&hosted, WorkerStatus::Error, Some(err.to_string())),
        }
        result
    }

    async fn start_server_inner(
        &self,
        key: &ServerKey,
        for_profile: &str,
        hosted: &[Profile],
    ) -> Result<Arc<ServerConn>, WorkerError> {
        let config = &self.inner.config;
        let launch = &self.inner.launch;
        let directory = Some(launch.project_dir.clone());
        if let ServerKey::Attach = key {
            let url = config
                .runtime
                .attach_url
                .clone()
                .ok_or(WorkerError::AttachUrlMissing)?;
            let auth = config
                .runtime
                .attach_password_env
                .as_deref()
                .and_then(|name| launch_env_var(&launch.env, name))
                .map(|password| BasicAuth {
                    username: "opencode".into(),
                    password,
                });
            let client = OpenCodeClient::new(&url, auth, directory).map_err(|source| {
                WorkerError::Connect {
                    profile: for_profile.into(),
                    url: url.clone(),
                    source,
                }
            })?;
            return ServerConn::connect(key.label(), None, client)
                .await
                .map_err(|source| WorkerError::Connect {
                    profile: for_profile.into(),
                    url,
                    source,
                });
        }
        let spec = ServeSpec {
            supervisor: launch.supervisor.clone(),
            binary: launch.binary.clone(),
            cwd: launch.project_dir.clone(),
            env: self.server_env(hosted),
            password: uuid::Uuid::new_v4().simple().to_string(),
            port: 0,
            startup_timeout: Duration::from_millis(config.startup_timeout_ms),
            label: key.label(),
        };
        let process = self
            .spawn_server(spec)
            .await
            .map_err(|source| WorkerError::Spawn {
                profile: for_profile.into(),
                source,
            })?;
        let url = process.url().to_owned();
        let client = process
            .client(directory)
            .map_err(|source| WorkerError::Connect {
                profile: for_profile.into(),
                url: url.clone(),
                source,
            })?;
        tracing::info!(server = %key.label(), %url, pid = process.pid(), "OpenCode server ready");
        ServerConn::connect(key.label(), Some(process), client)
            .await
            .map_err(|source| WorkerError::Connect {
                profile: for_profile.into(),
                url,
                source,
            })
    }

    /// Spawns one server, one start at a time in this hub, retrying a start
    /// that OpenCode itself aborted: another hub starting OpenCode on the same
    /// data directory at the same moment makes it exit with "database is
    /// locked", and a second try a moment later succeeds.
    async fn spawn_server(&self, spec: ServeSpec) -> Result<ServerProcess, SupervisorError> {
        let mut attempt = 1;
        loop {
            let startup = self.inner.startups.lock().await;
            let result = ServerProcess::spawn_recorded(spec.clone(), self.inner.ledger.get()).await;
            drop(startup);
            match result {
                Err(err @ SupervisorError::ExitedDuringStartup { .. })
                    if attempt < STARTUP_ATTEMPTS =>
                {
                    tracing::warn!(server = %spec.label, error = %err, attempt, "OpenCode exited while starting; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Environment for a spawned server: isolation from the launch settings
    /// plus our agents in `OPENCODE_CONFIG_CONTENT`.
    fn server_env(&self, hosted: &[Profile]) -> Vec<(String, String)> {
        let mut content = self.inner.launch.config_overlay.clone();
        if !content.is_object() {
            content = json!({});
        }
        agents::merge_json(&mut content, &server_defaults(&self.inner.config));
        let mut agents = agents::agents_block(hosted);
        // A worker must never load the orchestrator again (it would start hubs inside
        // workers if the user installed us globally), so `orchestra` is always ours: the
        // hub's worker endpoint (memory ops only), or nothing.
        let ours = match self.inner.worker_mcp.get() {
            Some(mcp) => {
                agents::allow_memory_tools(&mut agents, hosted);
                json!({
                    "agent": agents,
                    "mcp": {"orchestra": {
                        "type": "remote",
                        "url": mcp.url,
                        "headers": {"Authorization": format!("Bearer {}", mcp.token)},
                        "enabled": true,
                    }},
                    // Every agent but the memory worker's is denied them (above).
                    "tools": {agents::MEMORY_TOOLS: false},
                })
            }
            None => json!({
                "agent": agents,
                "mcp": {"orchestra": {"type": "local", "command": ["true"], "enabled": false}},
            }),
        };
        agents::merge_json(&mut content, &ours);
        let mut env = self.inner.launch.env.clone();
        env.push(("OPENCODE_CONFIG_CONTENT".into(), content.to_string()));
        env.push(("ORCHESTRA_WORKER".into(), "1".into()));
        // Workers keep their sessions in a database of their own, beside OpenCode's
        // (`OPENCODE_DB` is a name in OpenCode's data folder; credentials stay shared). OpenCode
        // 2.x converts the shared `opencode.db` to a schema 1.x refuses ("Database is not empty
        // and has no session table"), so a 2.x user's workers could not start; and the user's own
        // sessions no longer share a write lock with every worker. A user's `OPENCODE_DB` wins.
        let user_db = env.iter().any(|(key, _)| key == "OPENCODE_DB")
            || std::env::var_os("OPENCODE_DB").is_some();
        if !user_db {
            env.push(("OPENCODE_DB".into(), WORKER_DB.into()));
        }
        env
    }

    /// Pings the server's health at `healthCheckInterval` and handles its loss: a server we
    /// started is killed after three missed pings and restarted when it exits; an attached
    /// server that misses three pings is given up (its tasks fail with the reason) and
    /// reconnected with the same backoff.
    fn watch_server(&self, slot: Arc<Slot>, conn: Arc<ServerConn>) {
        let mut exit = conn.exit_watch();
        let pool = self.clone();
        self.inner.tasks.spawn(async move {
            let interval =
                Duration::from_millis(pool.inner.config.health_check_interval_ms.max(1000));
            let mut failures = 0u32;
            let reason: String = loop {
                tokio::select! {
                    () = pool.inner.shutdown.cancelled() => return,
                    report = wait_exit(exit.as_mut()) => match report {
                        Some(report) => break format!(
                            "the OpenCode server for {} (pid {}) {}",
                            conn.label,
                            conn.pid().unwrap_or_default(),
                            describe_exit(&report)
                        ),
                        None => return,
                    },
                    () = tokio::time::sleep(interval) => {
                        match conn.client.health(Duration::from_secs(5)).await {
                            Ok(_) => {
                                failures = 0;
                                // Up for a whole interval: a later crash is a new incident.
                                slot.failures_in_row.store(0, Ordering::Relaxed);
                            }
                            Err(err) => {
                                failures += 1;
                                tracing::warn!(server = %conn.label, error = %err, failures, "health check failed");
                                if failures >= 3 {
                                    match &conn.process {
                                        // Its exit ends this loop through the exit watch.
                                        Some(process) => {
                                            let _ = process.stop(Duration::from_secs(2)).await;
                                        }
                                        None => break format!(
                                            "the OpenCode server attached at {} did not answer {failures} health checks in a row ({err})",
                                            conn.client.base_url()
                                        ),
                                    }
                                }
                            }
                        }
                    }
                }
            };
            pool.on_server_lost(slot, conn, reason).await;
        });
    }

    async fn on_server_lost(&self, slot: Arc<Slot>, conn: Arc<ServerConn>, reason: String) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        tracing::warn!(%reason, "worker server lost; restarting");
        let hosted = self.profiles_on(&slot.key);
        // The worker shows the loss before its tasks hear of it, so whoever sees a task fail
        // never sees the dead server as ready. Only while no one is starting a replacement
        // (that holds the lock, and sets the status itself).
        if let Ok(mut current) = slot.current.try_lock()
            && current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn))
        {
            *current = None;
            slot.show(None);
            self.set_status(&hosted, WorkerStatus::Error, Some(reason.clone()));
        }
        conn.fail_all(&reason);
        conn.shutdown(Duration::ZERO).await;
        let mut current = slot.current.lock().await;
        match current.as_ref() {
            Some(c) if Arc::ptr_eq(c, &conn) => {
                *current = None;
                slot.show(None);
            }
            // A task already started a replacement: it is what the worker shows.
            Some(_) => return,
            None => {}
        }
        self.set_status(&hosted, WorkerStatus::Error, Some(reason.clone()));
        let max = self.inner.config.runtime.max_restarts;
        let base = self.inner.config.runtime.restart_backoff_ms;
        let mut attempt = 0u32;
        while current.is_none() {
            let in_row = slot.failures_in_row.fetch_add(1, Ordering::Relaxed);
            if in_row >= max {
                self.set_status(
                    &hosted,
                    WorkerStatus::Error,
                    Some(format!(
                        "{reason}; gave up after {max} restarts (runtime.maxRestarts); the next task will try again"
                    )),
                );
                slot.failures_in_row.store(0, Ordering::Relaxed);
                return;
            }
            slot.restarts.fetch_add(1, Ordering::Relaxed);
            let delay = base.saturating_mul(1u64 << attempt.min(6));
            attempt += 1;
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(delay)) => {}
            }
            let first = hosted.first().map(|p| p.id.clone()).unwrap_or_default();
            match self
                .start_server(&slot.key, &first, WorkerStatus::Restarting)
                .await
            {
                Ok(new_conn) => {
                    *current = Some(new_conn.clone());
                    slot.show(Some(new_conn.clone()));
                    drop(current);
                    self.watch_server(slot.clone(), new_conn);
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "restart failed"),
            }
        }
    }
}

impl WorkerPool {
    /// A person's restart of a worker's server (`POST /api/v1/workers/{id}/restart`): the tasks
    /// running on it fail with a message that says so, the server is stopped, and a new one is
    /// started at once (one that is not running is simply started). In `shared` isolation every
    /// profile's worker runs on that one server, so all of them restart.
    pub async fn restart(&self, profile_id: &str) -> Result<(), WorkerError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(WorkerError::ShuttingDown);
        }
        let profile = self.inner.config.profile(profile_id)?.clone();
        let key = self.key_for(&profile);
        let slot = self.slot(&key);
        let hosted = self.profiles_on(&key);
        // Waits for a start in progress, then holds the slot: no task starts a second server
        // meanwhile, and the old server's watcher sees a replacement and stands down.
        let mut current = slot.current.lock().await;
        let old = current.take();
        slot.show(None);
        self.set_status(&hosted, WorkerStatus::Restarting, None);
        if let Some(old) = old {
            let reason = format!(
                "the OpenCode server for {} was restarted by a person (worker `{}`, from the panel or POST /api/v1/workers/{}/restart)",
                old.label, profile.id, profile.id
            );
            tracing::info!(server = %old.label, worker = %profile.id, "restarting a worker server on request");
            old.fail_all(&reason);
            old.shutdown(Duration::from_secs(3)).await;
            slot.restarts.fetch_add(1, Ordering::Relaxed);
        }
        slot.failures_in_row.store(0, Ordering::Relaxed);
        let conn = self
            .start_server(&key, &profile.id, WorkerStatus::Restarting)
            .await?;
        *current = Some(conn.clone());
        slot.show(Some(conn.clone()));
        drop(current);
        self.watch_server(slot, conn);
        Ok(())
    }
}

/// The exit report of a server we own; never resolves for an attached server (no process).
async fn wait_exit(
    exit: Option<&mut tokio::sync::watch::Receiver<Option<ExitReport>>>,
) -> Option<ExitReport> {
    let Some(exit) = exit else {
        return std::future::pending().await;
    };
    exit.wait_for(Option::is_some).await.ok().and_then(|r| *r)
}

/// A variable from the launch environment (what OpenCode children get),
/// else from this process's environment.
fn launch_env_var(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var(name).ok())
}

/// OpenCode settings for every server the hub starts (the benchmarks start
/// their baseline servers with the same ones, so both sides match).
pub fn server_defaults(config: &Config) -> serde_json::Value {
    json!({
        "autoupdate": false,
        "share": "disabled",
        "snapshot": config.runtime.snapshots,
    })
}

pub(super) fn has_exited(conn: &ServerConn) -> bool {
    conn.exit_watch().is_some_and(|w| w.borrow().is_some())
}

pub fn describe_exit(report: &ExitReport) -> String {
    match (report.code, report.signal) {
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "exited".to_owned(),
    }
}
