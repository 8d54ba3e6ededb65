//! One hub per project: config, job store, worker pool and task engine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orchestra_store::{Store, StoreError, default_store_path, pid_is_alive};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::tasks::TaskEngine;
use crate::workers::{LaunchSettings, WorkerPool};

/// How often a hub proves it is alive to other hubs sharing the store.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A hub whose heartbeat is older than this is dead; its running jobs are
/// marked interrupted by the next hub to start.
pub(crate) const STALE_AFTER_MS: i64 = 60_000;
/// How often worker state is checked for changes and published to the store,
/// where other processes on the project (`orchestra workers`) read it.
const PUBLISH_WORKERS: Duration = Duration::from_secs(1);
/// How often old job records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("could not open the job store: {0}")]
    Store(#[from] StoreError),
}

pub struct HubOptions {
    pub project_dir: PathBuf,
    pub config: Config,
    pub launch: LaunchSettings,
}

pub struct Hub {
    id: String,
    engine: Arc<TaskEngine>,
    background: CancellationToken,
    interrupted: usize,
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
        store.register_hub(
            &id,
            std::process::id(),
            &options.project_dir.display().to_string(),
        )?;
        let interrupted = store.recover_interrupted(&pid_is_alive, STALE_AFTER_MS)?;
        for job in &interrupted {
            tracing::warn!(job = %job.id, "job was running when its hub died; marked failed");
        }
        let jobs = &config.tasks.jobs;
        store.prune_jobs(
            i64::try_from(jobs.max_age_ms).unwrap_or(i64::MAX),
            jobs.max_count,
        )?;

        let pool = WorkerPool::new(config.clone(), options.launch);
        pool.record_groups(ledger);
        let engine = Arc::new(TaskEngine::new(
            pool.clone(),
            store.clone(),
            id.clone(),
            options.project_dir,
        ));
        let background = CancellationToken::new();
        tokio::spawn(housekeeping(
            store,
            id.clone(),
            config.clone(),
            pool.clone(),
            background.clone(),
        ));
        if config.auto_spawn {
            for profile in config.spawn.clone() {
                let pool = pool.clone();
                tokio::spawn(async move {
                    if let Err(err) = pool.warm_up(&profile).await {
                        tracing::warn!(worker = %profile, error = %err, "auto-spawn failed");
                    }
                });
            }
        }
        Ok(Hub {
            id,
            engine,
            background,
            interrupted: interrupted.len(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn engine(&self) -> &Arc<TaskEngine> {
        &self.engine
    }

    /// Jobs of dead hubs this hub marked failed when it started.
    pub fn interrupted_on_start(&self) -> usize {
        self.interrupted
    }

    /// Cancels running jobs (their models stop), stops every server we own,
    /// and leaves the store consistent.
    pub async fn shutdown(&self) {
        self.engine
            .cancel_all("the Open Orchestra hub is shutting down");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.engine.running_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.engine.pool().shutdown().await;
        self.background.cancel();
        if let Err(err) = self.engine.store().unregister_hub(&self.id) {
            tracing::warn!(error = %err, "unregistering the hub failed");
        }
    }
}

async fn housekeeping(
    store: Arc<Store>,
    hub_id: String,
    config: Arc<Config>,
    pool: WorkerPool,
    stop: CancellationToken,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut publish = tokio::time::interval(PUBLISH_WORKERS);
    let mut published = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = publish.tick() => {
                // Written only when something changed: most ticks cost no I/O.
                let workers = pool.snapshots().await;
                if workers != published {
                    match store.publish_workers(&hub_id, &workers) {
                        Ok(()) => published = workers,
                        Err(err) => tracing::warn!(error = %err, "publishing worker state failed"),
                    }
                }
            }
            _ = heartbeat.tick() => {
                if let Err(err) = store.heartbeat(&hub_id) {
                    tracing::warn!(error = %err, "hub heartbeat failed");
                }
            }
            _ = prune.tick() => {
                let jobs = &config.tasks.jobs;
                if let Err(err) = store.prune_jobs(i64::try_from(jobs.max_age_ms).unwrap_or(i64::MAX), jobs.max_count) {
                    tracing::warn!(error = %err, "pruning jobs failed");
                }
                if let Err(err) = store.prune_logs(10_000) {
                    tracing::warn!(error = %err, "pruning logs failed");
                }
            }
        }
    }
}
