//! The job runtime: live jobs and what happens to them — open, publish progress, finish,
//! await, cancel — and the runner that drives one worker job on one OpenCode session.
//!
//! Everything above (workflows, the task facade) starts work through [`JobRuntime`]; nothing
//! here knows about callers, routing or workflows. Every job is written to the store before
//! its start returns, so no record is ever lost; its changes are published on the event bus;
//! and every job runs in a task the runtime owns, guarded so that a panic finishes the job
//! `failed` with the panic's message instead of leaving it `running`.

pub mod attachments;
mod budget;
pub mod check_run;
mod context;
mod fallback;
mod files;
pub mod health;
mod late;
mod prompt;
pub mod questions;
mod runner;
mod shared_budget;
mod turn;
mod workspace;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use orchestra_protocol::{
    ErrorKind, EventBody, JobRecord, JobStatus, JobUpdate, LogEvent, ModelPolicy, TaskKind, now_ms,
};
use orchestra_store::{Store, StoreError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::EventBus;
use crate::workers::WorkerPool;
use attachments::{AttachmentError, PreparedAttachment};
pub use check_run::UntilJob;
pub use context::{ContextBlock, JobContext};
pub use shared_budget::SharedBudget;
pub use turn::{ReplySummary, error_text, summarize};
pub use workspace::JobWorkspace;

/// How often progress may be written to the store while a job runs; the event stream and
/// awaiting callers see every change at once regardless.
const PROGRESS_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often an await re-reads a job that another hub process owns (two hubs sharing one
/// store); jobs of this hub are awaited through their live channel, without polling.
const FOREIGN_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the job store failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    #[error("no task with id `{id}`; list tasks with task_list")]
    UnknownTask { id: String },
}

impl JobError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Store(_) => ErrorKind::Internal,
            JobError::Attachment(_) => ErrorKind::BadRequest,
            JobError::UnknownTask { .. } => ErrorKind::NotFound,
        }
    }
}

/// One worker job: what to run, where, and under which limits.
pub struct WorkerJob {
    pub profile_id: String,
    pub task: String,
    /// The worker (or `orchestrator`) a worker-to-worker message comes from.
    pub from: Option<String>,
    /// A per-task model (tag or reference) instead of the worker's.
    pub model: Option<String>,
    /// `Sticky` makes the per-task model the worker's model for later tasks.
    pub model_policy: ModelPolicy,
    pub attachments: Vec<PreparedAttachment>,
    pub auto_spawn: bool,
    /// Covers the whole job: acquiring the worker, choosing the model, the model's turn.
    pub timeout: Duration,
    pub retry_limit: u32,
    /// How long a permission question waits for a person (profiles with `onPermissionAsk: ask`).
    pub permission_ask_timeout: Duration,
    /// Text added to the prompt's `system` field after the profile's own (the memory block);
    /// the same text for the same memory, so the provider's prompt cache keeps working.
    pub context: JobContext,
    /// Input + output + reasoning tokens the turn may use; the session is aborted once its
    /// finished model steps used more.
    pub token_budget: Option<TokenBudget>,
    /// A workflow step's `requiredSkills`, checked with the profile's before the session exists.
    pub required_skills: Vec<String>,
    /// A worktree to run in (`workspace: "worktree"`); `None` runs in the project directory.
    pub workspace: Option<JobWorkspace>,
    /// The task's own budget (`budget` on `task_start` over the profile's), all dimensions.
    pub budget: Option<orchestra_protocol::TaskBudget>,
    /// What the tasks this one continues spent, read from the store.
    pub prior_spend: orchestra_protocol::BudgetSpend,
    /// Continue in this existing session (`continueTaskId`) instead of a fresh one.
    pub session_id: Option<String>,
    /// Repeat until this check passes (`until`).
    pub until: Option<UntilJob>,
    /// The budget this job shares with others (its workflow run's `budget`).
    pub shared_budget: Option<SharedBudget>,
}

/// A turn's token budget, and the setting that sets it (named in the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBudget {
    pub tokens: u64,
    pub setting: String,
}

struct LiveJob {
    record: watch::Sender<JobRecord>,
    cancel: CancellationToken,
    reason: watch::Sender<Option<String>>,
    last_saved: Instant,
}

/// Cheap to clone: every clone shares the live jobs, the store and the bus.
#[derive(Clone)]
pub struct JobRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    bus: EventBus,
    pool: WorkerPool,
    hub_id: String,
    live: Mutex<HashMap<String, LiveJob>>,
    /// Owns every job task and the timeouts of their permission questions, so shutdown can
    /// wait for exactly those.
    tasks: TaskTracker,
    questions: questions::QuestionInbox,
    /// Cool-downs of failing models and the profiles' circuit breakers (`health.rs`).
    model_health: Arc<health::ModelHealth>,
}

/// A running job's hold on its record: publish progress, emit events, finish once.
pub struct JobHandle {
    id: String,
    runtime: JobRuntime,
    cancel: CancellationToken,
    reason: watch::Receiver<Option<String>>,
}

impl JobRuntime {
    pub fn new(store: Arc<Store>, bus: EventBus, pool: WorkerPool, hub_id: String) -> JobRuntime {
        let tasks = TaskTracker::new();
        JobRuntime {
            inner: Arc::new(Inner {
                store,
                questions: questions::QuestionInbox::new(bus.clone(), tasks.clone()),
                bus,
                pool,
                hub_id,
                live: Mutex::new(HashMap::new()),
                tasks,
                model_health: Arc::default(),
            }),
        }
    }

    pub fn model_health(&self) -> &Arc<health::ModelHealth> {
        &self.inner.model_health
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    pub fn pool(&self) -> &WorkerPool {
        &self.inner.pool
    }

    pub fn hub_id(&self) -> &str {
        &self.inner.hub_id
    }

    /// Permission questions waiting for a person.
    pub fn questions(&self) -> &questions::QuestionInbox {
        &self.inner.questions
    }

    /// A new running record owned by this hub.
    pub fn new_record(&self, worker_id: String, message: String, kind: TaskKind) -> JobRecord {
        JobRecord::start(
            uuid::Uuid::new_v4().to_string(),
            worker_id,
            message,
            kind,
            &self.inner.hub_id,
        )
    }

    /// Writes a new running job to the store and makes it live here: awaitable, cancelable,
    /// reported on the bus.
    pub fn open(&self, record: JobRecord) -> Result<JobHandle, JobError> {
        self.inner.store.insert_job(&record)?;
        let cancel = CancellationToken::new();
        let (reason_tx, reason_rx) = watch::channel(None);
        let (record_tx, _) = watch::channel(record.clone());
        let id = record.id.clone();
        self.lock().insert(
            id.clone(),
            LiveJob {
                record: record_tx,
                cancel: cancel.clone(),
                reason: reason_tx,
                last_saved: Instant::now(),
            },
        );
        self.inner.bus.publish(EventBody::JobStarted {
            job: Box::new(record),
        });
        Ok(JobHandle {
            id,
            runtime: self.clone(),
            cancel,
            reason: reason_rx,
        })
    }

    /// Runs `work` as the job's task. If it panics, the job is finished `failed` with the
    /// panic's message, so no record stays `running` and no awaiting caller hangs.
    pub fn spawn<F>(&self, job_id: String, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = self.clone();
        self.inner.tasks.spawn(async move {
            if let Err(panic) = AssertUnwindSafe(work).catch_unwind().await {
                runtime.fail_after_panic(&job_id, &panic_text(panic.as_ref()));
            }
        });
    }

    /// Records and launches one worker job; returns at once.
    pub fn start_worker(&self, record: JobRecord, job: WorkerJob) -> Result<String, JobError> {
        let handle = self.open(record.clone())?;
        let id = handle.id.clone();
        let pool = self.inner.pool.clone();
        self.spawn(id.clone(), runner::run_job(pool, handle, record, job));
        Ok(id)
    }

    fn fail_after_panic(&self, job_id: &str, message: &str) {
        let record = self
            .lock()
            .get(job_id)
            .map(|job| job.record.borrow().clone());
        let Some(mut record) = record else {
            tracing::error!(
                job = job_id,
                panic = message,
                "a finished job's task panicked"
            );
            return;
        };
        tracing::error!(
            job = job_id,
            panic = message,
            "a job's task panicked; the job failed"
        );
        record.error = Some(format!(
            "internal error: the task's runner panicked ({message}); this is a bug in Open Orchestra — please report it with the hub log"
        ));
        record.finish(JobStatus::Failed, now_ms());
        self.finish_record(&record);
    }

    /// True while the job runs in this hub.
    pub fn is_live(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// The record now: the live one, else the stored one.
    pub fn peek(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        if let Some(job) = self.lock().get(id) {
            return Ok(Some(job.record.borrow().clone()));
        }
        Ok(self.inner.store.get_job(id)?)
    }

    /// Waits until the job is final or `deadline` passes, and returns its record then
    /// (`None` for an unknown id).
    pub async fn await_until(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Option<JobRecord>, JobError> {
        let live = self.lock().get(id).map(|job| job.record.subscribe());
        if let Some(mut rx) = live {
            loop {
                let current = rx.borrow_and_update().clone();
                if current.status.is_final() {
                    return Ok(Some(current));
                }
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The job left the live set: it is final in the store now.
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => return Ok(Some(current)),
                }
            }
        }
        loop {
            let Some(record) = self.inner.store.get_job(id)? else {
                return Ok(None);
            };
            if record.status.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(Some(record));
            }
            tokio::time::sleep(FOREIGN_POLL.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// Waits with no cap until the job is final; for callers inside the hub (workflow steps),
    /// whose jobs carry their own timeouts.
    pub async fn wait_final(&self, id: &str) -> Result<JobRecord, JobError> {
        loop {
            // A day at a time keeps the deadline far from Instant overflow.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(86_400);
            match self.await_until(id, deadline).await? {
                Some(record) if record.status.is_final() => return Ok(record),
                Some(_) => {}
                None => return Err(JobError::UnknownTask { id: id.to_owned() }),
            }
        }
    }

    /// Asks a live job to stop (its runner aborts the session). Returns false when the job is
    /// not running in this hub.
    pub fn cancel(&self, id: &str, reason: &str) -> bool {
        let live = self.lock();
        let Some(job) = live.get(id) else {
            return false;
        };
        job.reason.send_replace(Some(reason.to_owned()));
        job.cancel.cancel();
        true
    }

    /// Cancels every running job of this hub (on shutdown).
    pub fn cancel_all(&self, reason: &str) {
        for job in self.lock().values() {
            job.reason.send_replace(Some(reason.to_owned()));
            job.cancel.cancel();
        }
    }

    pub fn running_count(&self) -> usize {
        self.lock().len()
    }

    /// The live jobs a chat session started (`callerSessionId`), as they stand now. Read from
    /// the jobs themselves, so a task counts from the moment its start returned, before any
    /// follower of the bus has handled its `JobStarted`.
    pub fn live_for_caller(&self, session_id: &str) -> Vec<JobRecord> {
        self.lock()
            .values()
            .filter_map(|job| {
                let record = job.record.borrow();
                (record.caller_session_id.as_deref() == Some(session_id)
                    && !record.status.is_final())
                .then(|| record.clone())
            })
            .collect()
    }

    /// Waits until every job task this runtime spawned has ended, at most `limit`.
    /// Returns false if some were still running then.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.inner.tasks.close();
        tokio::time::timeout(limit, self.inner.tasks.wait())
            .await
            .is_ok()
    }

    fn publish(&self, record: &JobRecord, force: bool) {
        let (announce, save) = {
            let mut live = self.lock();
            let Some(job) = live.get_mut(&record.id) else {
                return;
            };
            job.record.send_replace(record.clone());
            let due = job.last_saved.elapsed() >= PROGRESS_SAVE_INTERVAL;
            if due {
                job.last_saved = Instant::now();
            }
            (force || due, due)
        };
        if announce {
            self.inner
                .bus
                .publish(EventBody::JobUpdated(JobUpdate::of(record)));
        }
        // The stored record follows at most a second behind: the event above is stored with
        // the stream, and the final record is written whole. A forced update used to be a
        // commit of its own, the most frequent one of a short task.
        if save {
            match self.inner.store.save_job(record) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    job = %record.id,
                    "the store refused a progress write: the job is final or owned by another hub"
                ),
                Err(err) => {
                    tracing::error!(job = %record.id, error = %err, "saving job progress failed");
                }
            }
        }
    }

    /// Records the final state. The store refuses to finalize twice, so a late completion can
    /// never overwrite a cancel.
    fn finish_record(&self, record: &JobRecord) {
        let (level, message) = finish_line(record);
        let append_log = |level: &str, message: &str| {
            if let Err(err) = self
                .inner
                .store
                .append_log(Some(&record.id), level, message)
            {
                tracing::warn!(error = %err, "writing the job log failed");
            }
        };
        match self.inner.store.finish_job_logged(record, level, &message) {
            Ok(true) => {}
            Ok(false) => {
                let (late_level, late) = late::record_late(&self.inner.store, record);
                append_log(late_level, &late);
                append_log(level, &message);
            }
            Err(err) => {
                tracing::error!(job = %record.id, error = %err, "saving final job state failed");
                append_log(level, &message);
            }
        }
        let job = self.lock().remove(&record.id);
        if let Some(job) = job {
            job.record.send_replace(record.clone());
        }
        self.inner.bus.publish(EventBody::Log(LogEvent {
            level: level.into(),
            message,
            target: Some("orchestra_core::jobs".into()),
            job_id: Some(record.id.clone()),
            worker_id: Some(record.worker_id.clone()),
        }));
        self.inner.bus.publish(EventBody::JobFinished {
            job: Box::new(record.clone()),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveJob>> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl JobHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Shares a progress update: awaiting callers see it at once; the store and the event
    /// stream get it when `force` or when the last save is old enough.
    pub fn publish(&self, record: &JobRecord, force: bool) {
        self.runtime.publish(record, force);
    }

    /// Publishes an event about this job (text deltas, tool calls, permission questions).
    pub fn emit(&self, body: EventBody) {
        self.runtime.inner.bus.publish(body);
    }

    /// Records the final state; the handle is spent.
    pub fn finish(self, record: &JobRecord) {
        self.runtime.finish_record(record);
    }

    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Why the job was canceled, as given to cancel.
    pub fn cancel_reason(&self) -> String {
        self.reason
            .borrow()
            .clone()
            .unwrap_or_else(|| "canceled".to_owned())
    }

    pub fn runtime(&self) -> &JobRuntime {
        &self.runtime
    }
}

fn finish_line(record: &JobRecord) -> (&'static str, String) {
    match record.status {
        JobStatus::Succeeded => (
            "info",
            format!("job {} succeeded on {}", record.id, record.worker_id),
        ),
        JobStatus::Failed => (
            "error",
            format!(
                "job {} failed on {}: {}",
                record.id,
                record.worker_id,
                record.error.as_deref().unwrap_or("")
            ),
        ),
        JobStatus::Canceled => ("info", format!("job {} canceled", record.id)),
        JobStatus::Running => ("info", format!("job {} running", record.id)),
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::workers::LaunchSettings;

    fn runtime() -> JobRuntime {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let bus = EventBus::in_memory();
        let pool = WorkerPool::new(
            Arc::new(Config::builtin()),
            LaunchSettings {
                supervisor: None,
                binary: "opencode".into(),
                project_dir: std::env::temp_dir(),
                env: Vec::new(),
                config_overlay: serde_json::Value::Null,
                provider_pin: None,
            },
            bus.clone(),
        );
        JobRuntime::new(store, bus, pool, "hub-1".into())
    }

    #[tokio::test]
    async fn a_panicking_job_task_finishes_the_job_failed_with_the_message() {
        let runtime = runtime();
        let mut events = runtime.bus().subscribe(None);
        let record = runtime.new_record("coder".into(), "boom".into(), TaskKind::Worker);
        let id = record.id.clone();
        let handle = runtime.open(record).unwrap();
        runtime.spawn(id.clone(), async move {
            let _keep = handle;
            let index = "aé".len();
            panic!("sliced at byte {index}");
        });
        let done = runtime.wait_final(&id).await.unwrap();
        assert_eq!(done.status, JobStatus::Failed);
        let error = done.error.unwrap();
        assert!(error.contains("sliced at byte 3"), "{error}");
        assert_eq!(
            runtime.store().get_job(&id).unwrap().unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(runtime.running_count(), 0);
        let mut types = Vec::new();
        while types.last() != Some(&"orchestra.job.finished") {
            types.push(events.next().await.unwrap().body.type_name());
        }
        assert_eq!(types.first(), Some(&"orchestra.job.started"));
    }
}
