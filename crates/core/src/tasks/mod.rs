//! The task engine behind `task_start`, `task_await`, `task_peek`,
//! `task_list` and `task_cancel`.
//!
//! Every job is written to the store before `task_start` returns, so no
//! record is ever lost; a running job's record lives in a `watch` channel
//! that awaiting callers subscribe to, and is saved on every state change
//! that matters (session created, finished) and at most once a second for
//! progress in between.

pub mod attachments;
mod model_ops;
pub mod routing;
pub mod runner;
pub mod views;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestra_protocol::tools::collect_ids;
use orchestra_protocol::{
    JobRecord, JobStatus, RouteDecision, TaskAwaitParams, TaskCancelParams, TaskKind,
    TaskListParams, TaskPeekParams, TaskStartParams, TaskStartResult,
};
use orchestra_store::{Store, StoreError};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::workers::WorkerPool;
use attachments::AttachmentError;
use runner::JobInput;

/// How often progress may be written to the store while a job runs.
const PROGRESS_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often `task_await` re-reads a job that another hub process owns.
const FOREIGN_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("`task` is empty; say what the worker should do")]
    EmptyTask,
    #[error(
        "the task is {chars} characters, more than tasks.maxTaskChars ({max}); shorten it, attach the rest as a file, or raise the limit"
    )]
    TaskTooLong { chars: usize, max: usize },
    #[error("`{field}` is required when kind is \"{kind}\"; {hint}")]
    MissingField {
        field: &'static str,
        kind: &'static str,
        hint: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    #[error("{what} is not available in this version of Open Orchestra yet; {hint}")]
    NotYetSupported { what: String, hint: String },
    #[error("pass `taskId` or `taskIds`; list tasks with task_list")]
    NoIds,
    #[error("no task with id `{id}`; list tasks with task_list")]
    UnknownTask { id: String },
    #[error("the job store failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workflow(#[from] crate::workflows::WorkflowError),
}

/// Why a job was canceled, as given to `task_cancel`.
#[derive(Debug, Clone)]
pub struct CancelReason(pub String);

struct LiveJob {
    record: watch::Sender<JobRecord>,
    cancel: CancellationToken,
    reason: watch::Sender<Option<CancelReason>>,
    last_saved: Instant,
}

/// Where running jobs report: the live channels and the store.
pub struct JobSink {
    store: Arc<Store>,
    live: Mutex<HashMap<String, LiveJob>>,
}

impl JobSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveJob>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Shares a progress update; saves it when `force` or when the last save
    /// is old enough.
    pub fn publish(&self, record: &JobRecord, force: bool) {
        let save = {
            let mut live = self.lock();
            let Some(job) = live.get_mut(&record.id) else {
                return;
            };
            job.record.send_replace(record.clone());
            let due = force || job.last_saved.elapsed() >= PROGRESS_SAVE_INTERVAL;
            if due {
                job.last_saved = Instant::now();
            }
            due
        };
        if save && let Err(err) = self.store.save_job(record) {
            tracing::error!(job = %record.id, error = %err, "saving job progress failed");
        }
    }

    /// Records the final state. The store refuses to finalize twice, so a
    /// late completion can never overwrite a cancel.
    pub async fn finish(&self, record: &JobRecord) {
        match self.store.finish_job(record) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = %record.id, "job was already final in the store"),
            Err(err) => {
                tracing::error!(job = %record.id, error = %err, "saving final job state failed")
            }
        }
        let message = match record.status {
            JobStatus::Succeeded => format!("job {} succeeded on {}", record.id, record.worker_id),
            JobStatus::Failed => format!(
                "job {} failed on {}: {}",
                record.id,
                record.worker_id,
                record.error.as_deref().unwrap_or("")
            ),
            JobStatus::Canceled => format!("job {} canceled", record.id),
            JobStatus::Running => format!("job {} running", record.id),
        };
        let level = if record.status == JobStatus::Failed {
            "error"
        } else {
            "info"
        };
        if let Err(err) = self.store.append_log(Some(&record.id), level, &message) {
            tracing::warn!(error = %err, "writing the job log failed");
        }
        let job = self.lock().remove(&record.id);
        if let Some(job) = job {
            job.record.send_replace(record.clone());
        }
    }
}

/// One task as returned to callers: a record, or a note that the id is unknown.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TaskLookup {
    Record(Box<JobRecord>),
    Unknown {
        id: String,
        status: &'static str,
        error: String,
    },
}

impl TaskLookup {
    fn unknown(id: &str) -> TaskLookup {
        TaskLookup::Unknown {
            id: id.to_owned(),
            status: "unknown",
            error: format!("no task with id `{id}`; list tasks with task_list"),
        }
    }

    pub fn record(&self) -> Option<&JobRecord> {
        match self {
            TaskLookup::Record(record) => Some(record),
            TaskLookup::Unknown { .. } => None,
        }
    }
}

/// `taskId` answers with one record, `taskIds` with a list, as the original did.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TaskAnswer {
    One(TaskLookup),
    Many(Vec<TaskLookup>),
}

impl TaskAnswer {
    fn from_lookups(single: bool, mut lookups: Vec<TaskLookup>) -> TaskAnswer {
        if single && lookups.len() == 1 {
            TaskAnswer::One(lookups.remove(0))
        } else {
            TaskAnswer::Many(lookups)
        }
    }

    pub fn lookups(&self) -> Vec<&TaskLookup> {
        match self {
            TaskAnswer::One(one) => vec![one],
            TaskAnswer::Many(many) => many.iter().collect(),
        }
    }
}

/// Cheap to clone: every clone shares the pool, the live jobs and the store.
#[derive(Clone)]
pub struct TaskEngine {
    pool: WorkerPool,
    sink: Arc<JobSink>,
    config: Arc<Config>,
    hub_id: String,
    project_dir: PathBuf,
    /// Reads the store without running workers (the CLI's listings): its
    /// own, never-started pool is left out of the worker views.
    observer: bool,
}

impl TaskEngine {
    pub fn new(
        pool: WorkerPool,
        store: Arc<Store>,
        hub_id: String,
        project_dir: PathBuf,
    ) -> TaskEngine {
        TaskEngine {
            config: pool.config().clone(),
            pool,
            sink: Arc::new(JobSink {
                store,
                live: Mutex::new(HashMap::new()),
            }),
            hub_id,
            project_dir,
            observer: false,
        }
    }

    /// An engine that only reads: listings from the store and the workers
    /// the project's live hubs publish. It never starts OpenCode.
    pub fn observer(config: Arc<Config>, store: Arc<Store>, project_dir: PathBuf) -> TaskEngine {
        let pool = WorkerPool::new(
            config,
            crate::workers::LaunchSettings {
                binary: PathBuf::from("opencode"),
                project_dir: project_dir.clone(),
                env: Vec::new(),
                config_overlay: serde_json::Value::Null,
            },
        );
        TaskEngine {
            observer: true,
            ..TaskEngine::new(pool, store, "observer".into(), project_dir)
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.sink.store
    }

    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Validates, records and launches a task; returns at once.
    pub fn start(
        &self,
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let tasks = &self.config.tasks;
        if params.task.trim().is_empty() {
            return Err(TaskError::EmptyTask);
        }
        let chars = params.task.chars().count();
        let max_chars = usize::try_from(tasks.max_task_chars).unwrap_or(usize::MAX);
        if chars > max_chars {
            return Err(TaskError::TaskTooLong {
                chars,
                max: max_chars,
            });
        }
        let route = match params.kind {
            TaskKind::Worker => {
                let worker_id =
                    params
                        .worker_id
                        .clone()
                        .ok_or_else(|| TaskError::MissingField {
                            field: "workerId",
                            kind: "worker",
                            hint: format!("one of: {}", self.profile_ids()),
                        })?;
                self.config.profile(&worker_id)?;
                RouteDecision {
                    profile: worker_id,
                    reason: "named by workerId".into(),
                }
            }
            TaskKind::Auto => routing::route(&params.task, &params.attachments, &self.config),
            TaskKind::Workflow => {
                return crate::workflows::start(self, params, requested_by);
            }
            TaskKind::Op => return self.start_op(params, requested_by),
        };
        let prepared =
            attachments::prepare_blocking(&params.attachments, &self.project_dir, tasks.into())?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut record = JobRecord::start(
            id.clone(),
            route.profile.clone(),
            params.task.clone(),
            params.kind.as_str(),
            &self.hub_id,
        );
        record.requested_by = requested_by;
        record.route = (params.kind == TaskKind::Auto).then(|| route.clone());
        let (cancel, reason_rx) = self.open_job(&record)?;
        let input = JobInput {
            profile_id: route.profile.clone(),
            task: params.task,
            from: params.from,
            model: params.model,
            model_policy: params.model_policy.unwrap_or(tasks.default_model_policy),
            attachments: prepared,
            auto_spawn: params
                .auto_spawn
                .unwrap_or(tasks.default_auto_spawn && self.config.auto_spawn),
            timeout: Duration::from_millis(params.timeout_ms.unwrap_or(tasks.default_timeout_ms)),
            retry_limit: tasks.provider_retry_limit,
        };
        tokio::spawn(runner::run_job(
            self.pool.clone(),
            self.sink.clone(),
            record,
            input,
            cancel,
            reason_rx,
        ));
        Ok(TaskStartResult {
            task_id: id,
            kind: params.kind,
            worker_id: Some(route.profile),
            workflow_id: None,
            continue_run_id: None,
            op: None,
            route_reason: Some(route.reason),
            status: JobStatus::Running,
            next: "task_await".into(),
        })
    }

    /// Writes a new running job to the store and makes it live here: awaitable, cancelable
    /// (through the returned token and reason) and reported through [`TaskEngine::sink`].
    pub(crate) fn open_job(
        &self,
        record: &JobRecord,
    ) -> Result<(CancellationToken, watch::Receiver<Option<CancelReason>>), TaskError> {
        self.sink.store.insert_job(record)?;
        let cancel = CancellationToken::new();
        let (reason_tx, reason_rx) = watch::channel(None);
        let (record_tx, _) = watch::channel(record.clone());
        self.sink.lock().insert(
            record.id.clone(),
            LiveJob {
                record: record_tx,
                cancel: cancel.clone(),
                reason: reason_tx,
                last_saved: Instant::now(),
            },
        );
        Ok((cancel, reason_rx))
    }

    pub(crate) fn sink(&self) -> &Arc<JobSink> {
        &self.sink
    }

    pub fn hub_id(&self) -> &str {
        &self.hub_id
    }

    pub fn project_dir(&self) -> &std::path::Path {
        &self.project_dir
    }

    /// True while the job runs in this hub.
    pub fn is_live(&self, id: &str) -> bool {
        self.sink.lock().contains_key(id)
    }

    /// Waits, with no cap, until the job is final; for callers inside the hub (workflow
    /// steps), whose jobs carry their own timeouts.
    pub async fn wait_final(&self, id: &str) -> Result<JobRecord, TaskError> {
        loop {
            // A day at a time keeps the deadline far from Instant overflow.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(86_400);
            if let TaskLookup::Record(record) = self.await_one(id, deadline).await? {
                if record.status.is_final() {
                    return Ok(*record);
                }
            } else {
                return Err(TaskError::UnknownTask { id: id.to_owned() });
            }
        }
    }

    /// Waits until every named job is final or the (capped) timeout passes.
    pub async fn await_tasks(&self, params: &TaskAwaitParams) -> Result<TaskAnswer, TaskError> {
        let ids = collect_ids(&params.task_id, &params.task_ids);
        if ids.is_empty() {
            return Err(TaskError::NoIds);
        }
        let cap = self.config.tasks.await_cap_ms;
        let wait = Duration::from_millis(params.timeout_ms.unwrap_or(cap).min(cap));
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.await_one(id, deadline).await?);
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
    }

    async fn await_one(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
    ) -> Result<TaskLookup, TaskError> {
        let live = self.sink.lock().get(id).map(|job| job.record.subscribe());
        if let Some(mut rx) = live {
            loop {
                let current = rx.borrow_and_update().clone();
                if current.status.is_final() {
                    return Ok(TaskLookup::Record(Box::new(current)));
                }
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The sender is gone: the job finished; the store has it.
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Ok(TaskLookup::Record(Box::new(current)));
                    }
                }
            }
        }
        // Not ours (or just finished): another hub may own it; re-read until final.
        loop {
            let Some(record) = self.sink.store.get_job(id)? else {
                return Ok(TaskLookup::unknown(id));
            };
            if record.status.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(TaskLookup::Record(Box::new(record)));
            }
            tokio::time::sleep(FOREIGN_POLL.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// The current records, without waiting.
    pub fn peek(&self, params: &TaskPeekParams) -> Result<TaskAnswer, TaskError> {
        let ids = collect_ids(&params.task_id, &params.task_ids);
        if ids.is_empty() {
            return Err(TaskError::NoIds);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.lookup_now(id)?);
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
    }

    fn lookup_now(&self, id: &str) -> Result<TaskLookup, TaskError> {
        if let Some(job) = self.sink.lock().get(id) {
            return Ok(TaskLookup::Record(Box::new(job.record.borrow().clone())));
        }
        Ok(match self.sink.store.get_job(id)? {
            Some(record) => TaskLookup::Record(Box::new(record)),
            None => TaskLookup::unknown(id),
        })
    }

    /// Aborts the workers' sessions (the model really stops) and returns the
    /// final records.
    pub async fn cancel(&self, params: &TaskCancelParams) -> Result<TaskAnswer, TaskError> {
        let ids = collect_ids(&params.task_id, &params.task_ids);
        if ids.is_empty() {
            return Err(TaskError::NoIds);
        }
        let reason = params
            .reason
            .clone()
            .unwrap_or_else(|| "canceled by task_cancel".into());
        let mut waiting = Vec::new();
        for id in &ids {
            let job = self.sink.lock().get(id).map(|job| {
                job.reason.send_replace(Some(CancelReason(reason.clone())));
                job.cancel.cancel();
                job.record.subscribe()
            });
            waiting.extend(job);
        }
        // The runner aborts the session and writes the canceled record; wait
        // for that (bounded) so the answer shows the final state.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for mut rx in waiting {
            while !rx.borrow_and_update().status.is_final() {
                let changed = tokio::time::timeout_at(deadline, rx.changed()).await;
                match changed {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.cancel_lookup(id)?);
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
    }

    fn cancel_lookup(&self, id: &str) -> Result<TaskLookup, TaskError> {
        let lookup = self.lookup_now(id)?;
        if let TaskLookup::Record(record) = &lookup
            && record.status == JobStatus::Running
            && record.hub_id != self.hub_id
        {
            return Ok(TaskLookup::Unknown {
                id: id.to_owned(),
                status: "running",
                error: format!(
                    "task `{id}` belongs to another Open Orchestra process (hub {}); cancel it from the OpenCode window that started it",
                    record.hub_id
                ),
            });
        }
        Ok(lookup)
    }

    pub async fn list(&self, params: &TaskListParams) -> Result<views::Listing, TaskError> {
        views::render(self, params).await
    }

    /// Cancels every running job of this hub (on shutdown).
    pub fn cancel_all(&self, reason: &str) {
        for job in self.sink.lock().values() {
            job.reason
                .send_replace(Some(CancelReason(reason.to_owned())));
            job.cancel.cancel();
        }
    }

    pub fn running_count(&self) -> usize {
        self.sink.lock().len()
    }

    fn profile_ids(&self) -> String {
        self.config
            .profiles
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}
