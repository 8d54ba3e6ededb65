//! The worker pool: which OpenCode server hosts which profile, and in what state.
//!
//! Profiles are OpenCode agents. In `shared` isolation (the default) one
//! server hosts every profile, so a second worker costs a session, not a
//! 300 MB process; `process` gives a profile a server of its own; `attach`
//! drives a server someone else started. Any number of tasks may run on one
//! profile at once: each task gets its own session.

pub mod agents;
mod directories;
mod error;
mod lease;
mod lifecycle;
pub mod server;
pub mod skills;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use orchestra_protocol::{EventBody, ModelPolicy, WorkerSnapshot, WorkerStatus, now_ms};

use crate::config::{Config, ConfigError, Isolation, Profile};
use crate::events::EventBus;
use crate::models::{self, Catalog, ModelNeeds, Resolution, ResolveError};
use crate::opencode::{OpenCodeClient, OpenCodeError};
use crate::supervisor::GroupLedger;
pub use directories::DirectoryUse;
pub use error::WorkerError;
pub use lease::Lease;
pub use lifecycle::{WORKER_DB, describe_exit, server_defaults};
pub use server::{ServerConn, SessionSignal};

/// How long `shutdown` waits for the pool's tasks once the servers are stopped: a watcher may
/// be inside a health check (5 s at most) when told to stop.
const POOL_TASKS_STOP: Duration = Duration::from_secs(3);

/// How to start OpenCode for this hub.
#[derive(Debug, Clone)]
pub struct LaunchSettings {
    pub binary: PathBuf,
    pub project_dir: PathBuf,
    /// Extra environment for every OpenCode child, on top of this process's (tests put their
    /// isolation here; the product adds nothing).
    pub env: Vec<(String, String)>,
    /// Merged into `OPENCODE_CONFIG_CONTENT` under our agent definitions: the user's own
    /// `OPENCODE_CONFIG_CONTENT`, plus the fake provider in `--fake` mode.
    pub config_overlay: Value,
    /// Only this provider's models may run tasks (`--fake` pins the built-in fake); `None`:
    /// every provider OpenCode reports as usable for the project.
    pub provider_pin: Option<String>,
    /// The `orchestra` executable every OpenCode server runs under (see
    /// `supervisor::SUPERVISE_ARG`); the hub sets it to itself. `None` starts OpenCode directly.
    pub supervisor: Option<PathBuf>,
}

/// The hub's worker MCP endpoint (`/mcp/worker`: the memory ops only), which every server the
/// pool starts gets as the remote MCP server `orchestra`; only the memory profile's agent may
/// use its tools (`orchestra_*`).
#[derive(Clone)]
pub struct WorkerMcp {
    /// The endpoint's full URL, `http://127.0.0.1:<port>/mcp/worker`.
    pub url: String,
    /// Sent as `Authorization: Bearer …`; good for that endpoint only.
    pub token: String,
}

impl std::fmt::Debug for WorkerMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMcp")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
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
    /// Held through whole starts and restarts, so concurrent tasks wait for one spawn.
    current: tokio::sync::Mutex<Option<Arc<ServerConn>>>,
    /// A copy of `current` for readers that must not wait for a start or a restart, which
    /// hold `current` for as long as they take (worker listings, the publisher).
    shown: Mutex<Option<Arc<ServerConn>>>,
    /// The models of the current server, read when it started.
    catalog: Mutex<Option<Arc<Catalog>>>,
    /// Restarts over the slot's life (shown in worker listings).
    restarts: AtomicU32,
    /// Restarts since the server last passed a health check: what `runtime.maxRestarts` caps,
    /// so a server that crashes now and then is restarted each time, one that crash-loops is not.
    failures_in_row: AtomicU32,
}

/// The model a profile's next task would run on, and why (the models view shows one per
/// profile).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPlan {
    pub profile: String,
    /// The reference in force: an override (`worker.model.set`) or the profile's `model`.
    pub reference: String,
    /// `provider/model`, or `None` when nothing resolves (the reason says why).
    pub model: Option<String>,
    pub reason: String,
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
    events: EventBus,
    slots: Mutex<HashMap<ServerKey, Arc<Slot>>>,
    workers: Mutex<HashMap<String, WorkerState>>,
    overrides: Mutex<HashMap<String, ModelOverride>>,
    /// One OpenCode start at a time: servers sharing a data directory that
    /// start together race on OpenCode's own database ("database is
    /// locked"), and on two cores parallel starts are not faster anyway.
    startups: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    /// Server starts and server watchers; `shutdown` waits for them.
    tasks: TaskTracker,
    /// Where the process groups of the servers we start are recorded (set once by the hub).
    ledger: std::sync::OnceLock<GroupLedger>,
    /// The hub's worker MCP endpoint, when the hub serves one (set once, before any start).
    worker_mcp: std::sync::OnceLock<WorkerMcp>,
    /// Sessions of final jobs still kept in OpenCode, oldest first (`runtime.keepSessions`).
    finished_sessions: Mutex<std::collections::VecDeque<RetiredSession>>,
}

/// Cheap to clone; all clones share one pool.
/// A finished job's session: its server, the client addressing its directory, its id.
/// The directory's use (a worktree) is let go once the session is deleted.
type RetiredSession = (
    std::sync::Weak<ServerConn>,
    OpenCodeClient,
    String,
    Option<DirectoryUse>,
);

#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<PoolInner>,
}

impl WorkerPool {
    pub fn new(config: Arc<Config>, launch: LaunchSettings, events: EventBus) -> WorkerPool {
        WorkerPool {
            inner: Arc::new(PoolInner {
                config,
                launch,
                events,
                slots: Mutex::new(HashMap::new()),
                workers: Mutex::new(HashMap::new()),
                overrides: Mutex::new(HashMap::new()),
                startups: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                ledger: std::sync::OnceLock::new(),
                worker_mcp: std::sync::OnceLock::new(),
                finished_sessions: Mutex::new(std::collections::VecDeque::new()),
            }),
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// Records the process groups of every server started from now on in `ledger`
    /// (see [`crate::supervisor::reap_orphans`]). The first ledger given is kept.
    pub fn record_groups(&self, ledger: Option<GroupLedger>) {
        if let Some(ledger) = ledger {
            let _ = self.inner.ledger.set(ledger);
        }
    }

    /// Gives every server started from now on the hub's worker MCP endpoint. The first one
    /// given is kept.
    pub fn set_worker_mcp(&self, mcp: WorkerMcp) {
        let _ = self.inner.worker_mcp.set(mcp);
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
        let slot = self.slot(&key);
        let model_ref = self.model_ref(&profile);
        // The lease exists from the moment the worker counts as busy: a caller that gives up
        // during the catalog read below drops it, and its drop frees the worker again.
        let mut lease = Lease {
            client: conn.client.clone(),
            conn,
            profile,
            agent,
            catalog: slot.catalog_now(),
            model_ref,
            workdir: None,
            pool: self.clone(),
        };
        if lease.catalog.is_none() {
            // Read at start failed; try again here so the task resolves against the catalog
            // with this hub's provider pin (the runner reads it itself only if this fails too).
            if let Ok(read) = self.read_catalog(&lease.conn.client).await {
                let read = Arc::new(read);
                slot.set_catalog(Some(read.clone()));
                lease.catalog = Some(read);
            }
        }
        Ok(lease)
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
        let catalog = Arc::new(self.read_catalog(&conn.client).await.map_err(|source| {
            WorkerError::Catalog {
                profile: profile.id.clone(),
                source,
            }
        })?);
        slot.set_catalog(Some(catalog.clone()));
        Ok(catalog)
    }

    /// The usable models of one of our servers, as tasks resolve against them: what OpenCode
    /// reports for the project, narrowed to the provider pin if this hub has one.
    pub async fn read_catalog(&self, client: &OpenCodeClient) -> Result<Catalog, OpenCodeError> {
        let mut catalog = Catalog::read(client).await?;
        if let Some(provider) = &self.inner.launch.provider_pin {
            catalog.pin_provider(provider);
        }
        Ok(catalog)
    }

    /// The provider every task is pinned to (`--fake`), if any.
    pub fn provider_pin(&self) -> Option<&str> {
        self.inner.launch.provider_pin.as_deref()
    }

    /// Which model each profile's task would get on `catalog` now, and why: the override or
    /// the profile's own reference, resolved with the profile's needs.
    pub fn model_plans(&self, catalog: &Catalog) -> Vec<ModelPlan> {
        self.inner
            .config
            .profiles
            .values()
            .map(|profile| {
                let reference = self.model_ref(profile);
                let (model, reason) =
                    match models::resolve(catalog, &reference, profile_needs(profile)) {
                        Ok(resolution) => (Some(resolution.full_id()), resolution.reason),
                        Err(err) => (None, err.to_string()),
                    };
                ModelPlan {
                    profile: profile.id.clone(),
                    reference,
                    model,
                    reason,
                }
            })
            .collect()
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
        match self.read_catalog(&conn.client).await {
            Ok(catalog) => {
                let mut failed: Vec<(String, &str)> = Vec::new();
                for profile in hosted {
                    let resolution =
                        models::resolve(&catalog, &self.model_ref(profile), profile_needs(profile));
                    if let Err(err) = &resolution {
                        failed.push((err.to_string(), profile.id.as_str()));
                    }
                    self.record_model(&profile.id, &resolution);
                }
                // One line per cause, not per worker: without a provider every worker fails alike.
                failed.sort();
                for group in failed.chunk_by(|a, b| a.0 == b.0) {
                    let workers: Vec<&str> = group.iter().map(|(_, id)| *id).collect();
                    tracing::warn!(workers = %workers.join(", "), error = %group[0].0, "no model for worker");
                }
                slot.set_catalog(Some(Arc::new(catalog)));
            }
            Err(err) => {
                tracing::warn!(server = %key.label(), error = %err, "reading the model catalog failed; tasks will retry");
                slot.set_catalog(None);
            }
        }
    }

    /// The profile whose server a warm start brings up: `coder` if there is one (in `shared`
    /// isolation its server hosts every profile), else the first.
    pub fn default_profile(&self) -> Option<String> {
        let profiles = &self.inner.config.profiles;
        if profiles.contains_key("coder") {
            return Some("coder".to_owned());
        }
        profiles.keys().next().cloned()
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

    /// Call once a job is final and its record written: keeps the job's session in OpenCode's
    /// session list while it is among the last `runtime.keepSessions`, and deletes the sessions
    /// that fall out (with 0, this one at once). A session whose server is gone is skipped;
    /// a failed delete is logged, never an error of the job.
    /// `client` addresses the session's directory (the job's worktree, or the project);
    /// `directory` is the job's use of that worktree, let go once the session is deleted.
    pub async fn retire_session(
        &self,
        conn: &Arc<ServerConn>,
        client: &OpenCodeClient,
        session_id: &str,
        directory: Option<DirectoryUse>,
    ) {
        let keep = usize::try_from(self.inner.config.runtime.keep_sessions).unwrap_or(usize::MAX);
        let expired: Vec<RetiredSession> = {
            let mut kept = self
                .inner
                .finished_sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kept.push_back((
                Arc::downgrade(conn),
                client.clone(),
                session_id.to_owned(),
                directory,
            ));
            let excess = kept.len().saturating_sub(keep);
            kept.drain(..excess).collect()
        };
        for (conn, client, session_id, directory) in expired {
            let Some(conn) = conn.upgrade() else {
                continue;
            };
            if let Err(err) = client.delete_session(&session_id).await {
                tracing::debug!(server = %conn.label, session = %session_id, error = %err, "could not delete a finished worker session");
            }
            // Only now: disposing first would boot the directory's instance again for the delete.
            drop(directory);
        }
    }

    pub fn record_warning(&self, profile_id: &str, warning: String) {
        self.update(profile_id, |w| w.warning = Some(warning));
    }

    /// Every profile's worker as it is now. Never waits for a starting server.
    pub fn snapshots(&self) -> Vec<WorkerSnapshot> {
        self.inner
            .config
            .profiles
            .values()
            .map(|profile| self.snapshot_of(profile))
            .collect()
    }

    /// One profile's worker as it is now.
    pub fn snapshot(&self, profile_id: &str) -> Result<WorkerSnapshot, ConfigError> {
        Ok(self.snapshot_of(self.inner.config.profile(profile_id)?))
    }

    fn snapshot_of(&self, profile: &Profile) -> WorkerSnapshot {
        let key = self.key_for(profile);
        let slot = self.slot(&key);
        let shown = slot.shown_now().filter(|conn| !lifecycle::has_exited(conn));
        let state = self
            .lock_workers()
            .get(&profile.id)
            .cloned()
            .unwrap_or_default();
        let url = shown.as_ref().map(|conn| conn.client.base_url().to_owned());
        let port = url
            .as_deref()
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.trim_end_matches('/').parse().ok());
        WorkerSnapshot {
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
            pid: shown.as_ref().and_then(|conn| conn.pid()),
            rss_bytes: shown.as_ref().and_then(|conn| conn.rss_bytes()),
            server_started_at: shown.as_ref().map(|conn| conn.started_at),
            active_jobs: state.active_jobs,
            last_activity_at: state.last_activity_at,
            restarts: slot.restarts.load(Ordering::Relaxed),
            warning: state.warning,
            purpose: profile.purpose.clone(),
            read_only: profile.read_only(),
        }
    }

    /// Publishes the current state of these workers on the event bus.
    fn announce<'a>(&self, profile_ids: impl IntoIterator<Item = &'a str>) {
        for id in profile_ids {
            if let Ok(profile) = self.inner.config.profile(id) {
                let worker = self.snapshot_of(profile);
                self.inner.events.publish(EventBody::WorkerStatus {
                    worker: Box::new(worker),
                });
            }
        }
    }

    /// Stops every server we own; later `acquire` calls fail.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let slots: Vec<Arc<Slot>> = self.lock_slots().values().cloned().collect();
        for slot in slots {
            let conn = slot.current.lock().await.take();
            slot.show(None);
            if let Some(conn) = conn {
                conn.fail_all("the hub is shutting down");
                conn.shutdown(Duration::from_secs(3)).await;
            }
        }
        let profiles: Vec<Profile> = self.inner.config.profiles.values().cloned().collect();
        self.set_status(&profiles, WorkerStatus::Stopped, None);
        self.inner.tasks.close();
        if tokio::time::timeout(POOL_TASKS_STOP, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.inner.tasks.len(),
                "some of the pool's tasks did not stop in time"
            );
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
                    shown: Mutex::new(None),
                    catalog: Mutex::new(None),
                    restarts: AtomicU32::new(0),
                    failures_in_row: AtomicU32::new(0),
                })
            })
            .clone()
    }

    fn set_status(&self, profiles: &[Profile], status: WorkerStatus, warning: Option<String>) {
        {
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
        self.announce(profiles.iter().map(|p| p.id.as_str()));
    }

    /// Changes one worker's state and publishes it.
    fn update(&self, profile_id: &str, f: impl FnOnce(&mut WorkerState)) {
        f(self
            .lock_workers()
            .entry(profile_id.to_owned())
            .or_default());
        self.announce([profile_id]);
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

impl Slot {
    fn show(&self, conn: Option<Arc<ServerConn>>) {
        *self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = conn;
    }

    fn shown_now(&self) -> Option<Arc<ServerConn>> {
        self.shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

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

fn key_isolation(key: &ServerKey) -> &'static str {
    match key {
        ServerKey::Shared => "shared",
        ServerKey::Profile(_) => "process",
        ServerKey::Attach => "attach",
    }
}
