//! The worker pool: which OpenCode server hosts which profile, and in what state.
//!
//! Profiles are OpenCode agents. In `shared` isolation (the default) one
//! server hosts every profile, so a second worker costs a session, not a
//! 300 MB process; `process` gives a profile a server of its own; `attach`
//! drives a server someone else started. Any number of tasks may run on one
//! profile at once: each task gets its own session.

pub mod agents;
pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use orchestra_protocol::{ModelPolicy, WorkerSnapshot, WorkerStatus, now_ms};

use crate::config::{Config, ConfigError, Isolation, Profile};
use crate::models::{self, Catalog, ModelNeeds, Resolution, ResolveError};
use crate::opencode::{BasicAuth, OpenCodeClient, OpenCodeError};
use crate::supervisor::{ExitReport, ServeSpec, ServerProcess, SupervisorError};
pub use server::{ServerConn, SessionSignal};

/// How to start OpenCode for this hub.
#[derive(Debug, Clone)]
pub struct LaunchSettings {
    pub binary: PathBuf,
    pub project_dir: PathBuf,
    /// Extra environment for every OpenCode child (isolation, offline switches).
    pub env: Vec<(String, String)>,
    /// Merged into `OPENCODE_CONFIG_CONTENT` under our agent definitions
    /// (a provider block, for instance).
    pub config_overlay: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "worker `{profile}` is not running and autoSpawn is off; pass `autoSpawn: true` or start it first"
    )]
    NotRunning { profile: String },
    #[error("could not start OpenCode for worker `{profile}`: {source}")]
    Spawn {
        profile: String,
        #[source]
        source: SupervisorError,
    },
    #[error("could not connect to OpenCode for worker `{profile}` at {url}: {source}")]
    Connect {
        profile: String,
        url: String,
        #[source]
        source: OpenCodeError,
    },
    #[error(
        "runtime.isolation is `attach` but runtime.attachUrl is not set; set it to the URL `opencode serve` printed"
    )]
    AttachUrlMissing,
    #[error("the hub is shutting down; no new work is accepted")]
    ShuttingDown,
    #[error("could not read the model catalog from OpenCode for worker `{profile}`: {source}")]
    Catalog {
        profile: String,
        #[source]
        source: OpenCodeError,
    },
    #[error("worker `{profile}`: {source}")]
    Model {
        profile: String,
        #[source]
        source: ResolveError,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    Shared,
    Profile(String),
    Attach,
}

impl ServerKey {
    fn label(&self) -> String {
        match self {
            ServerKey::Shared => "shared".into(),
            ServerKey::Profile(id) => id.clone(),
            ServerKey::Attach => "attached".into(),
        }
    }
}

/// One server position in the pool; the conn inside is replaced on restart.
struct Slot {
    key: ServerKey,
    current: tokio::sync::Mutex<Option<Arc<ServerConn>>>,
    /// The models of the current server, read when it started.
    catalog: Mutex<Option<Arc<Catalog>>>,
    restarts: AtomicU32,
}

/// A model that replaces a profile's own (`worker.model.set`, sticky tasks).
#[derive(Debug, Clone)]
struct ModelOverride {
    reference: String,
    /// `Dynamic` lasts until the worker's server restarts; `Sticky` for the hub's lifetime.
    policy: ModelPolicy,
}

#[derive(Debug, Clone)]
struct WorkerState {
    status: WorkerStatus,
    active_jobs: u32,
    last_activity_at: Option<i64>,
    warning: Option<String>,
    /// Resolved `provider/model` and the reason (or the resolution error).
    model: Option<String>,
    model_resolution: Option<String>,
}

impl Default for WorkerState {
    fn default() -> Self {
        WorkerState {
            status: WorkerStatus::Stopped,
            active_jobs: 0,
            last_activity_at: None,
            warning: None,
            model: None,
            model_resolution: None,
        }
    }
}

struct PoolInner {
    config: Arc<Config>,
    launch: LaunchSettings,
    slots: Mutex<HashMap<ServerKey, Arc<Slot>>>,
    workers: Mutex<HashMap<String, WorkerState>>,
    overrides: Mutex<HashMap<String, ModelOverride>>,
    /// One OpenCode start at a time: servers sharing a data directory that
    /// start together race on OpenCode's own database ("database is
    /// locked"), and on two cores parallel starts are not faster anyway.
    startups: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

/// Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<PoolInner>,
}

/// A task's hold on a worker: the server to use and how to address the
/// profile there. Dropping it releases the worker.
pub struct Lease {
    pub conn: Arc<ServerConn>,
    pub profile: Profile,
    /// The agent to prompt; `None` on an attached server, where the profile's
    /// prompt travels as the prompt's `system` text instead.
    pub agent: Option<String>,
    /// The server's model catalog (`None` if reading it failed at start; read it again then).
    pub catalog: Option<Arc<Catalog>>,
    /// The model reference in force: an override from `worker.model.set` or the profile's.
    pub model_ref: String,
    pool: WorkerPool,
}

impl Lease {
    pub fn touch(&self) {
        self.pool
            .update(&self.profile.id, |w| w.last_activity_at = Some(now_ms()));
    }

    /// A sticky task model becomes the worker's model for later tasks.
    pub fn keep_model(&self, reference: &str, resolution: &Resolution) {
        self.pool.lock_overrides().insert(
            self.profile.id.clone(),
            ModelOverride {
                reference: reference.to_owned(),
                policy: ModelPolicy::Sticky,
            },
        );
        self.pool
            .record_model(&self.profile.id, &Ok(resolution.clone()));
    }

    pub fn system_prompt(&self) -> Option<String> {
        match self.agent {
            Some(_) => None,
            None => Some(self.profile.prompt.clone()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.update(&self.profile.id, |w| {
            w.active_jobs = w.active_jobs.saturating_sub(1);
            if w.active_jobs == 0 && w.status == WorkerStatus::Busy {
                w.status = WorkerStatus::Ready;
            }
        });
    }
}

impl WorkerPool {
    pub fn new(config: Arc<Config>, launch: LaunchSettings) -> WorkerPool {
        WorkerPool {
            inner: Arc::new(PoolInner {
                config,
                launch,
                slots: Mutex::new(HashMap::new()),
                workers: Mutex::new(HashMap::new()),
                overrides: Mutex::new(HashMap::new()),
                startups: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// Holds a worker for one task, starting its server first when needed.
    pub async fn acquire(&self, profile_id: &str, auto_spawn: bool) -> Result<Lease, WorkerError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(WorkerError::ShuttingDown);
        }
        let profile = self.inner.config.profile(profile_id)?.clone();
        let key = self.key_for(&profile);
        let conn = self.ensure_server(&key, &profile, auto_spawn).await?;
        self.update(&profile.id, |w| {
            w.active_jobs += 1;
            w.status = WorkerStatus::Busy;
            w.last_activity_at = Some(now_ms());
            w.warning = None;
        });
        let agent = match key {
            ServerKey::Attach => None,
            ServerKey::Shared | ServerKey::Profile(_) => Some(profile.agent_name()),
        };
        let catalog = self.slot(&key).catalog_now();
        let model_ref = self.model_ref(&profile);
        Ok(Lease {
            conn,
            profile,
            agent,
            catalog,
            model_ref,
            pool: self.clone(),
        })
    }

    /// The model reference in force for a profile: an override, else the profile's own.
    pub fn model_ref(&self, profile: &Profile) -> String {
        self.lock_overrides()
            .get(&profile.id)
            .map_or_else(|| profile.model.clone(), |o| o.reference.clone())
    }

    /// The catalog of the server hosting `profile_id`, starting it when `auto_spawn`.
    pub async fn catalog(
        &self,
        profile_id: &str,
        auto_spawn: bool,
    ) -> Result<Arc<Catalog>, WorkerError> {
        let profile = self.inner.config.profile(profile_id)?.clone();
        let key = self.key_for(&profile);
        let conn = self.ensure_server(&key, &profile, auto_spawn).await?;
        let slot = self.slot(&key);
        if let Some(catalog) = slot.catalog_now() {
            return Ok(catalog);
        }
        let catalog =
            Arc::new(
                Catalog::read(&conn.client)
                    .await
                    .map_err(|source| WorkerError::Catalog {
                        profile: profile.id.clone(),
                        source,
                    })?,
            );
        slot.set_catalog(Some(catalog.clone()));
        Ok(catalog)
    }

    /// `worker.model.set` and sticky tasks: resolves `reference` for the profile (starting its
    /// server to read the catalog) and makes it the worker's model.
    pub async fn set_model(
        &self,
        profile_id: &str,
        reference: &str,
        policy: ModelPolicy,
    ) -> Result<Resolution, WorkerError> {
        let profile = self.inner.config.profile(profile_id)?.clone();
        let catalog = self.catalog(profile_id, true).await?;
        let resolution =
            models::resolve(&catalog, reference, profile_needs(&profile)).map_err(|source| {
                WorkerError::Model {
                    profile: profile.id.clone(),
                    source,
                }
            })?;
        self.lock_overrides().insert(
            profile.id.clone(),
            ModelOverride {
                reference: reference.to_owned(),
                policy,
            },
        );
        self.record_model(&profile.id, &Ok(resolution.clone()));
        Ok(resolution)
    }

    /// `worker.model.reset`: back to the profile's own model, re-resolved.
    pub async fn reset_model(&self, profile_id: &str) -> Result<Resolution, WorkerError> {
        let profile = self.inner.config.profile(profile_id)?.clone();
        self.lock_overrides().remove(&profile.id);
        let catalog = self.catalog(profile_id, true).await?;
        let resolution = models::resolve(&catalog, &profile.model, profile_needs(&profile));
        self.record_model(&profile.id, &resolution);
        resolution.map_err(|source| WorkerError::Model {
            profile: profile.id.clone(),
            source,
        })
    }

    fn record_model(&self, profile_id: &str, resolution: &Result<Resolution, ResolveError>) {
        self.update(profile_id, |w| match resolution {
            Ok(resolution) => {
                w.model = Some(resolution.full_id());
                w.model_resolution = Some(resolution.reason.clone());
            }
            Err(err) => {
                w.model = None;
                w.model_resolution = Some(format!("no model: {err}"));
            }
        });
    }

    /// After a server (re)start: read its catalog, drop dynamic overrides, and resolve every
    /// hosted profile so the worker listing shows its model before the first task.
    async fn load_catalog(&self, key: &ServerKey, conn: &ServerConn, hosted: &[Profile]) {
        let slot = self.slot(key);
        {
            let mut overrides = self.lock_overrides();
            for profile in hosted {
                if overrides
                    .get(&profile.id)
                    .is_some_and(|o| o.policy == ModelPolicy::Dynamic)
                {
                    overrides.remove(&profile.id);
                }
            }
        }
        match Catalog::read(&conn.client).await {
            Ok(catalog) => {
                for profile in hosted {
                    let resolution =
                        models::resolve(&catalog, &self.model_ref(profile), profile_needs(profile));
                    if let Err(err) = &resolution {
                        tracing::warn!(worker = %profile.id, error = %err, "no model for worker");
                    }
                    self.record_model(&profile.id, &resolution);
                }
                slot.set_catalog(Some(Arc::new(catalog)));
            }
            Err(err) => {
                tracing::warn!(server = %key.label(), error = %err, "reading the model catalog failed; tasks will retry");
                slot.set_catalog(None);
            }
        }
    }

    /// Starts a worker's server without running a task (the `spawn` list).
    pub async fn warm_up(&self, profile_id: &str) -> Result<(), WorkerError> {
        let profile = self.inner.config.profile(profile_id)?.clone();
        let key = self.key_for(&profile);
        self.ensure_server(&key, &profile, true).await.map(|_| ())
    }

    /// The running server of a profile, if any (no spawn).
    pub async fn running_conn(&self, profile_id: &str) -> Option<Arc<ServerConn>> {
        let profile = self.inner.config.profile(profile_id).ok()?;
        let slot = self.slot(&self.key_for(profile));
        slot.current.lock().await.clone()
    }

    /// Any running server (for catalog look-ups).
    pub async fn any_conn(&self) -> Option<Arc<ServerConn>> {
        let slots: Vec<Arc<Slot>> = self.lock_slots().values().cloned().collect();
        for slot in slots {
            if let Some(conn) = slot.current.lock().await.clone() {
                return Some(conn);
            }
        }
        None
    }

    pub fn record_warning(&self, profile_id: &str, warning: String) {
        self.update(profile_id, |w| w.warning = Some(warning));
    }

    pub async fn snapshots(&self) -> Vec<WorkerSnapshot> {
        let mut out = Vec::new();
        for profile in self.inner.config.profiles.values() {
            let key = self.key_for(profile);
            let slot = self.slot(&key);
            let conn = slot.current.lock().await.clone();
            let state = self
                .lock_workers()
                .get(&profile.id)
                .cloned()
                .unwrap_or_default();
            let (url, pid) = match &conn {
                Some(conn) => (Some(conn.client.base_url().to_owned()), conn.pid()),
                None => (None, None),
            };
            let port = url
                .as_deref()
                .and_then(|u| u.rsplit(':').next())
                .and_then(|p| p.trim_end_matches('/').parse().ok());
            out.push(WorkerSnapshot {
                id: profile.id.clone(),
                name: profile.name.clone(),
                status: state.status,
                model_ref: self.model_ref(profile),
                model: state.model,
                model_resolution: state.model_resolution,
                model_policy: self.lock_overrides().get(&profile.id).map(|o| o.policy),
                agent: profile.agent_name(),
                isolation: key_isolation(&key).into(),
                server_url: url,
                port,
                pid,
                active_jobs: state.active_jobs,
                last_activity_at: state.last_activity_at,
                restarts: slot.restarts.load(Ordering::Relaxed),
                warning: state.warning,
                purpose: profile.purpose.clone(),
                read_only: profile.read_only(),
            });
        }
        out
    }

    /// Stops every server we own; later `acquire` calls fail.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let slots: Vec<Arc<Slot>> = self.lock_slots().values().cloned().collect();
        for slot in slots {
            let conn = slot.current.lock().await.take();
            if let Some(conn) = conn {
                conn.fail_all("the hub is shutting down");
                conn.shutdown(Duration::from_secs(3)).await;
            }
        }
        let mut workers = self.lock_workers();
        for state in workers.values_mut() {
            state.status = WorkerStatus::Stopped;
        }
    }

    fn key_for(&self, profile: &Profile) -> ServerKey {
        let isolation = profile
            .isolation
            .unwrap_or(self.inner.config.runtime.isolation);
        match (self.inner.config.runtime.isolation, isolation) {
            (Isolation::Attach, _) => ServerKey::Attach,
            (_, Isolation::Process) => ServerKey::Profile(profile.id.clone()),
            (_, Isolation::Shared | Isolation::Attach) => ServerKey::Shared,
        }
    }

    fn profiles_on(&self, key: &ServerKey) -> Vec<Profile> {
        self.inner
            .config
            .profiles
            .values()
            .filter(|p| &self.key_for(p) == key)
            .cloned()
            .collect()
    }

    fn slot(&self, key: &ServerKey) -> Arc<Slot> {
        self.lock_slots()
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    key: key.clone(),
                    current: tokio::sync::Mutex::new(None),
                    catalog: Mutex::new(None),
                    restarts: AtomicU32::new(0),
                })
            })
            .clone()
    }

    async fn ensure_server(
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
        let conn = self.start_server(key, &profile.id).await?;
        *current = Some(conn.clone());
        drop(current);
        self.watch_server(slot, conn.clone());
        Ok(conn)
    }

    async fn start_server(
        &self,
        key: &ServerKey,
        for_profile: &str,
    ) -> Result<Arc<ServerConn>, WorkerError> {
        let hosted = self.profiles_on(key);
        self.set_status(&hosted, WorkerStatus::Starting, None);
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
            binary: launch.binary.clone(),
            cwd: launch.project_dir.clone(),
            env: self.server_env(hosted),
            password: uuid::Uuid::new_v4().simple().to_string(),
            port: 0,
            startup_timeout: Duration::from_millis(config.startup_timeout_ms),
            label: key.label(),
        };
        let startup = self.inner.startups.lock().await;
        let process = ServerProcess::spawn(spec).await;
        drop(startup);
        let process = process.map_err(|source| WorkerError::Spawn {
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

    /// Environment for a spawned server: isolation from the launch settings
    /// plus our agents in `OPENCODE_CONFIG_CONTENT`.
    fn server_env(&self, hosted: &[Profile]) -> Vec<(String, String)> {
        let mut content = self.inner.launch.config_overlay.clone();
        if !content.is_object() {
            content = json!({});
        }
        let ours = json!({
            "agent": agents::agents_block(hosted),
            // A worker must never load the orchestrator again (it would start
            // hubs inside workers if the user installed us globally).
            "mcp": {"orchestra": {"type": "local", "command": ["true"], "enabled": false}},
            "autoupdate": false,
            "share": "disabled",
        });
        agents::merge_json(&mut content, &ours);
        let mut env = self.inner.launch.env.clone();
        env.push(("OPENCODE_CONFIG_CONTENT".into(), content.to_string()));
        env.push(("ORCHESTRA_WORKER".into(), "1".into()));
        env
    }

    /// Restarts the server with backoff when it dies, and pings its health at
    /// `healthCheckInterval`, killing it when it stops answering.
    fn watch_server(&self, slot: Arc<Slot>, conn: Arc<ServerConn>) {
        let Some(mut exit) = conn.exit_watch() else {
            return;
        };
        let pool = self.clone();
        tokio::spawn(async move {
            let interval =
                Duration::from_millis(pool.inner.config.health_check_interval_ms.max(1000));
            let mut failures = 0u32;
            let report: ExitReport = loop {
                tokio::select! {
                    () = pool.inner.shutdown.cancelled() => return,
                    changed = exit.changed() => {
                        if changed.is_err() { return; }
                        let report = *exit.borrow();
                        if let Some(report) = report { break report; }
                    }
                    () = tokio::time::sleep(interval) => {
                        match conn.client.health(Duration::from_secs(5)).await {
                            Ok(_) => failures = 0,
                            Err(err) => {
                                failures += 1;
                                tracing::warn!(server = %conn.label, error = %err, failures, "health check failed");
                                if failures >= 3 && let Some(process) = &conn.process {
                                    let _ = process.stop(Duration::from_secs(2)).await;
                                }
                            }
                        }
                    }
                }
            };
            pool.on_server_exit(slot, conn, report).await;
        });
    }

    async fn on_server_exit(&self, slot: Arc<Slot>, conn: Arc<ServerConn>, report: ExitReport) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let how = describe_exit(&report);
        let reason = format!(
            "the OpenCode server for {} (pid {}) {how}",
            conn.label,
            conn.pid().unwrap_or_default()
        );
        tracing::warn!(%reason, "worker server died; restarting");
        conn.fail_all(&reason);
        let hosted = self.profiles_on(&slot.key);
        let mut current = slot.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
            *current = None;
        }
        self.set_status(&hosted, WorkerStatus::Error, Some(reason.clone()));
        let max = self.inner.config.runtime.max_restarts;
        let base = self.inner.config.runtime.restart_backoff_ms;
        let mut attempt = 0u32;
        while current.is_none() {
            let done = slot.restarts.fetch_add(1, Ordering::Relaxed);
            if done >= max {
                self.set_status(
                    &hosted,
                    WorkerStatus::Error,
                    Some(format!(
                        "{reason}; gave up after {max} restarts (runtime.maxRestarts); the next task will try again"
                    )),
                );
                slot.restarts.store(0, Ordering::Relaxed);
                return;
            }
            let delay = base.saturating_mul(1u64 << attempt.min(6));
            attempt += 1;
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(delay)) => {}
            }
            let first = hosted.first().map(|p| p.id.clone()).unwrap_or_default();
            match self.start_server(&slot.key, &first).await {
                Ok(new_conn) => {
                    *current = Some(new_conn.clone());
                    drop(current);
                    self.watch_server(slot.clone(), new_conn);
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "restart failed"),
            }
        }
    }

    fn set_status(&self, profiles: &[Profile], status: WorkerStatus, warning: Option<String>) {
        let mut workers = self.lock_workers();
        for profile in profiles {
            let state = workers.entry(profile.id.clone()).or_default();
            state.status = if status == WorkerStatus::Ready && state.active_jobs > 0 {
                WorkerStatus::Busy
            } else {
                status
            };
            state.warning = warning.clone();
        }
    }

    fn update(&self, profile_id: &str, f: impl FnOnce(&mut WorkerState)) {
        let mut workers = self.lock_workers();
        f(workers.entry(profile_id.to_owned()).or_default());
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkerState>> {
        self.inner
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_overrides(&self) -> std::sync::MutexGuard<'_, HashMap<String, ModelOverride>> {
        self.inner
            .overrides
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<ServerKey, Arc<Slot>>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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

impl Slot {
    fn catalog_now(&self) -> Option<Arc<Catalog>> {
        self.catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_catalog(&self, catalog: Option<Arc<Catalog>>) {
        *self
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
    }
}

/// What a profile's model must do regardless of the task: a vision profile needs image input.
pub fn profile_needs(profile: &Profile) -> ModelNeeds {
    ModelNeeds {
        image_input: profile.supports_vision,
    }
}

fn has_exited(conn: &ServerConn) -> bool {
    conn.exit_watch().is_some_and(|w| w.borrow().is_some())
}

fn key_isolation(key: &ServerKey) -> &'static str {
    match key {
        ServerKey::Shared => "shared",
        ServerKey::Profile(_) => "process",
        ServerKey::Attach => "attach",
    }
}

pub fn describe_exit(report: &ExitReport) -> String {
    match (report.code, report.signal) {
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "exited".to_owned(),
    }
}
