//! One hub per project: it owns the store, the event bus, the worker pool, the job runtime
//! and the task facade, and the background tasks that keep them healthy.
//!
//! Ownership decides shutdown (no polling): the hub's background tasks (heartbeat, prune,
//! warm-up, the Neo4j sync) live in one [`TaskTracker`] and stop on one
//! token; jobs live in the runtime's tracker, which [`Hub::shutdown`] drains after canceling
//! them; the chat hooks, the recorder and the triggers own their tasks and wait for them when
//! stopped; the pool stops the servers; the bus is flushed to the store, and last the hub waits
//! (bounded) for its own tracker, so nothing the hub started outlives `shutdown`.
//!
//! Memory (`memory.enabled`) is opened at start — the project's records in the job store, the
//! user's global store beside — with the recorder of automatic records, the `memoryOnTurnEnd`
//! trigger and (feature `neo4j`, `NEO4J_URI` set) the Neo4j replay as tasks of their own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orchestra_store::{HUB_STALE_AFTER_MS, Store, StoreError, default_store_path, pid_is_alive};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::ChatHooks;
use crate::config::Config;
use crate::events::EventBus;
use crate::jobs::JobRuntime;
use crate::memory::{GlobalStore, HubMemory, HubMemoryError, Recorder};
use crate::tasks::TaskEngine;
use crate::workers::{LaunchSettings, WorkerMcp, WorkerPool};
use crate::workflows::triggers::Triggers;

/// How often a hub proves it is alive to other processes sharing the store.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often old job records, runs, logs and events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Log lines kept in the store.
const KEEP_LOG_LINES: u64 = 10_000;
/// Events kept in the store for replay: hours of a busy hub, a few tens of MB at most.
const KEEP_EVENTS: u64 = 200_000;
/// How long shutdown waits for notify deliveries in flight to give up.
const STOP_NOTIFIER: Duration = Duration::from_secs(2);

/// How long shutdown waits for canceled jobs to abort their sessions.
const DRAIN_JOBS: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last events to reach the store.
const FLUSH_EVENTS: Duration = Duration::from_secs(2);
/// How long shutdown waits for the records of jobs that finished before it.
const FINISH_RECORDS: Duration = Duration::from_secs(3);
/// How long shutdown waits for the chat hooks' tasks (a memory block being built).
const STOP_CHAT: Duration = Duration::from_secs(2);
/// How long shutdown waits for the background tasks once told to stop: they stop at their next
/// `select!`, but a warm-up may be inside a server start and a prune inside SQLite.
const STOP_BACKGROUND: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("could not open the job store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "could not open the project's memory: {0}; set `memory.enabled` to false to start without it"
    )]
    Memory(#[from] HubMemoryError),
}

pub struct HubOptions {
    pub project_dir: PathBuf,
    pub config: Config,
    pub launch: LaunchSettings,
    /// Start the default worker server at once (a long-lived hub), so the first task does not
    /// wait for a cold OpenCode. The spawn list (`workers`) starts either way.
    pub warm: bool,
    /// Which config file set each key (the panel's config view); empty when not known.
    pub provenance: crate::config::Provenance,
    /// Where the user's global memory lives.
    pub global_memory: GlobalStore,
    /// The hub's worker MCP endpoint (served by its HTTP server), given to every worker
    /// server so the memory worker can call the memory ops; `None` without an HTTP server.
    pub worker_mcp: Option<WorkerMcp>,
}

pub struct Hub {
    id: String,
    engine: Arc<TaskEngine>,
    background: CancellationToken,
    tasks: TaskTracker,
    interrupted: usize,
    /// Persists the bus; see `start`.
    _event_writer: tokio::task::JoinHandle<()>,
    /// What the OpenCode plugin's hooks do; the HTTP server calls them.
    chat: Arc<ChatHooks>,
    /// Stopped at shutdown, in order (tokio mutexes only so `shutdown` can take them by `&self`).
    recorder: tokio::sync::Mutex<Option<Recorder>>,
    notifier: tokio::sync::Mutex<Option<crate::notify::Notifier>>,
    triggers: tokio::sync::Mutex<Option<Triggers>>,
}

/// Task worktrees live beside the store, in the hub's private state folder, never inside
/// the project.
fn worktree_root(store_path: &std::path::Path) -> PathBuf {
    store_path
        .parent()
        .map_or_else(|| PathBuf::from("worktrees"), |dir| dir.join("worktrees"))
}

impl Hub {
    pub async fn start(options: HubOptions) -> Result<Hub, HubError> {
        let config = Arc::new(options.config);
        let store_path = config
            .tasks
            .store_path
            .clone()
            .unwrap_or_else(|| default_store_path(&options.project_dir));
        let store = Arc::new(Store::open(&store_path)?);
        let id = uuid::Uuid::new_v4().to_string();
        let ledger = crate::supervisor::reap_orphans(&store, &id);
        let project_label = options.project_dir.display().to_string();
        store.register_hub(&id, std::process::id(), &project_label)?;
        let interrupted = store.recover_interrupted(&pid_is_alive, HUB_STALE_AFTER_MS)?;
        for job in &interrupted {
            tracing::warn!(job = %job.id, "job was running when its hub died; marked failed");
        }
        // Runs a dead hub was driving are paused now, not only when someone looks at them.
        if let Err(err) = store.recover_interrupted_runs(&pid_is_alive, HUB_STALE_AFTER_MS) {
            tracing::warn!(error = %err, "pausing the workflow runs of a dead hub failed");
        }
        let jobs = &config.tasks.jobs;
        store.prune_jobs(
            i64::try_from(jobs.max_age_ms).unwrap_or(i64::MAX),
            jobs.max_count,
        )?;

        let tasks = TaskTracker::new();
        let background = CancellationToken::new();
        let (bus, writer) = EventBus::with_store(store.clone())?;
        // Not in `tasks`: the writer is owned by the bus and ends when its last clone drops
        // (after writing the rest), which is after the hub; shutdown waits for the store
        // through `flush` instead.
        let event_writer = tokio::spawn(writer.run());
        let pool = WorkerPool::new(config.clone(), options.launch, bus.clone());
        pool.record_groups(ledger);
        if let Some(mcp) = options.worker_mcp {
            pool.set_worker_mcp(mcp);
        }
        let memory = HubMemory::open(
            &config,
            store.clone(),
            &options.project_dir,
            options.global_memory,
            bus.clone(),
        )
        .await?;
        let recorder = memory
            .as_ref()
            .filter(|m| m.auto_record())
            .map(|m| Recorder::spawn(m.clone(), store.clone(), &bus));
        #[cfg(feature = "neo4j")]
        if let Some(memory) = &memory {
            tasks.spawn(crate::memory::neo4j_sync(
                memory.clone(),
                background.clone(),
            ));
        }
        // Subscribed before any job can start, so no event of this hub is missed.
        let notifier = crate::notify::Notifier::spawn(config.notify.clone(), store.clone(), &bus);
        let runtime = JobRuntime::new(store.clone(), bus, pool.clone(), id.clone());
        let engine = Arc::new(
            TaskEngine::new(runtime, config.clone(), options.project_dir, memory)
                .with_provenance(options.provenance)
                .with_worktrees_at(worktree_root(&store_path)),
        );
        // Before any task can make a worktree, so none in the making is taken for a stray.
        match engine.reconcile_worktrees().await {
            Ok(report)
                if !report.removed.is_empty()
                    || !report.kept.is_empty()
                    || report.spares_kept + report.spares_removed > 0 =>
            {
                tracing::info!(
                    kept = ?report.kept,
                    removed = ?report.removed,
                    spares_kept = report.spares_kept,
                    spares_removed = report.spares_removed,
                    "task worktrees reconciled"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "reconciling task worktrees failed"),
        }
        let triggers = Triggers::spawn(engine.workflows());
        let chat = ChatHooks::start(engine.clone(), background.child_token());
        tasks.spawn(heartbeat(
            store.clone(),
            id.clone(),
            project_label,
            background.clone(),
        ));
        tasks.spawn(prune(store, config.clone(), background.clone()));
        if config.auto_spawn {
            let mut warm: Vec<String> = config.spawn.clone();
            if options.warm
                && let Some(profile) = pool.default_profile()
                && !warm.contains(&profile)
            {
                warm.insert(0, profile);
            }
            for profile in warm {
                let pool = pool.clone();
                let stop = background.clone();
                tasks.spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        warmed = pool.warm_up(&profile) => if let Err(err) = warmed {
                            tracing::warn!(worker = %profile, error = %err, "auto-spawn failed");
                        },
                    }
                });
            }
        }
        Ok(Hub {
            id,
            engine,
            background,
            tasks,
            interrupted: interrupted.len(),
            _event_writer: event_writer,
            chat,
            recorder: tokio::sync::Mutex::new(recorder),
            notifier: tokio::sync::Mutex::new(notifier),
            triggers: tokio::sync::Mutex::new(triggers),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn engine(&self) -> &Arc<TaskEngine> {
        &self.engine
    }

    pub fn bus(&self) -> &EventBus {
        self.engine.bus()
    }

    /// The hooks of Orchestra's OpenCode plugin, following this hub's events until shutdown.
    pub fn chat(&self) -> &Arc<ChatHooks> {
        &self.chat
    }

    /// Jobs of dead hubs this hub marked failed when it started.
    pub fn interrupted_on_start(&self) -> usize {
        self.interrupted
    }

    /// Cancels running jobs (their models stop), stops every server we own,
    /// and leaves the store consistent.
    pub async fn shutdown(&self) {
        if !self.chat.stop(STOP_CHAT).await {
            tracing::warn!("the chat hooks' tasks did not stop in time");
        }
        // No new memory runs while the hub winds down.
        if let Some(triggers) = self.triggers.lock().await.take() {
            triggers.stop().await;
        }
        let runtime = self.engine.runtime();
        runtime.cancel_all("the Open Orchestra hub is shutting down");
        if !runtime.drain(DRAIN_JOBS).await {
            tracing::warn!("some jobs did not stop in time; their servers are stopped anyway");
        }
        // Jobs that finished before the shutdown still get their memory records.
        if let Some(recorder) = self.recorder.lock().await.take() {
            recorder.stop(FINISH_RECORDS).await;
        }
        // After the jobs: their final events are recorded (and sent if there is time);
        // webhooks not sent yet stay pending for the next hub.
        if let Some(notifier) = self.notifier.lock().await.take()
            && !notifier.stop(STOP_NOTIFIER).await
        {
            tracing::warn!("notify deliveries did not stop in time");
        }
        self.engine.pool().shutdown().await;
        self.background.cancel();
        if !self.bus().flush(FLUSH_EVENTS).await {
            tracing::warn!("the last events could not be saved before shutdown");
        }
        if let Err(err) = self.engine.store().unregister_hub(&self.id) {
            tracing::warn!(error = %err, "unregistering the hub failed");
        }
        self.tasks.close();
        if tokio::time::timeout(STOP_BACKGROUND, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "some of the hub's background tasks did not stop in time"
            );
        }
    }

    /// The hub's own background tasks still running (heartbeat, prune, warm-up, the Neo4j
    /// sync): 0 after [`Hub::shutdown`] returned in time.
    pub fn background_tasks(&self) -> usize {
        self.tasks.len()
    }
}

/// Proves the hub alive, in a task of its own so that nothing else the hub does can delay it.
/// A hub whose row vanished (another hub judged it dead: it was suspended past
/// `HUB_STALE_AFTER_MS`, or the row was removed by hand) registers again, so that from then on
/// it is not taken for dead; what another hub closed meanwhile stays closed (see
/// `jobs::late`).
async fn heartbeat(
    store: Arc<Store>,
    hub_id: String,
    project_dir: String,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => match store.heartbeat(&hub_id) {
                Ok(()) => {}
                Err(StoreError::HubNotRegistered { .. }) => {
                    tracing::warn!(
                        hub_id,
                        "this hub's liveness row is gone (another hub took it for dead); registering again"
                    );
                    if let Err(err) = store.register_hub(&hub_id, std::process::id(), &project_dir) {
                        tracing::warn!(error = %err, "registering the hub again failed");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "hub heartbeat failed"),
            },
        }
    }
}

async fn prune(store: Arc<Store>, config: Arc<Config>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                let jobs = &config.tasks.jobs;
                let max_age = i64::try_from(jobs.max_age_ms).unwrap_or(i64::MAX);
                if let Err(err) = store.prune_jobs(max_age, jobs.max_count) {
                    tracing::warn!(error = %err, "pruning jobs failed");
                }
                if let Err(err) = store.prune_logs(KEEP_LOG_LINES) {
                    tracing::warn!(error = %err, "pruning logs failed");
                }
                if let Err(err) = store.prune_events(KEEP_EVENTS) {
                    tracing::warn!(error = %err, "pruning events failed");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_leaves_none_of_the_hubs_tasks_running() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::builtin();
        config.tasks.store_path = Some(dir.path().join("orchestra.db"));
        let hub = Hub::start(HubOptions {
            project_dir: dir.path().to_path_buf(),
            config,
            launch: LaunchSettings {
                supervisor: None,
                // The warm-up fails at once: there is no OpenCode here.
                binary: dir.path().join("no-opencode"),
                project_dir: dir.path().to_path_buf(),
                env: Vec::new(),
                config_overlay: serde_json::Value::Null,
                provider_pin: None,
            },
            warm: true,
            provenance: Default::default(),
            global_memory: GlobalStore::At(dir.path().join("global").join("memory.db")),
            worker_mcp: None,
        })
        .await
        .unwrap();
        // Heartbeat and prune at least, whatever the warm-up did meanwhile.
        assert!(hub.background_tasks() >= 2, "{}", hub.background_tasks());
        hub.shutdown().await;
        assert_eq!(hub.background_tasks(), 0);
    }
}
