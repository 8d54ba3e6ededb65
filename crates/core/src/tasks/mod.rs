//! The task facade: the five verbs behind `task_start`, `task_await`, `task_peek`,
//! `task_list` and `task_cancel`.
//!
//! This is where caller input is checked (`tasks.maxTaskChars`, attachments, worker names)
//! and routed by kind: worker tasks go to the job runtime (with the memory block when
//! `memory.autoInject`), workflows to the workflow engine, ops to `model_ops` and
//! `memory_ops`. The layers below never see an MCP or HTTP caller. `tools` answers the five
//! verbs by tool name and JSON arguments, for every front end.

mod control;
mod human;
mod limits;
mod memory_ops;
mod memory_view;
mod model_ops;
mod passthrough_ops;
pub mod routing;
pub mod tools;
pub mod views;
mod workflow_args;
mod workflow_views;
mod worktree_ops;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orchestra_protocol::tools::collect_ids;
use orchestra_protocol::{
    ErrorKind, JobRecord, JobStatus, RouteDecision, TaskAwaitParams, TaskCancelParams, TaskKind,
    TaskListParams, TaskPeekParams, TaskStartParams, TaskStartResult,
};
use orchestra_store::{Store, StoreError};
use serde::Serialize;

use crate::config::Provenance;
use crate::config::{Config, ConfigError};
use crate::events::EventBus;
use crate::jobs::attachments::{self, AttachmentError};
use crate::jobs::questions::QuestionError;
use crate::jobs::{JobContext, JobError, JobRuntime, JobWorkspace, WorkerJob};
use crate::memory::{HubMemory, HubMemoryError};
use crate::workers::{WorkerError, WorkerPool};
use crate::workflows::{WorkflowError, WorkflowRequest, Workflows};
pub use memory_ops::{WORKER_REQUESTER, WorkerOpAnswer};
pub use passthrough_ops::PASSTHROUGH_EXIT_WORDS;

/// How long `task_cancel` waits for the runner to abort the session and write the final
/// record before answering with the record as it is.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

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
    #[error("`{field}` is required for task_list view \"{view}\"; {hint}")]
    MissingViewField {
        field: &'static str,
        view: &'static str,
        hint: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("pass `taskId` or `taskIds`; list tasks with task_list")]
    NoIds,
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Boxed: the worker's errors are large, and every facade call returns this type.
    #[error(transparent)]
    Worker(Box<WorkerError>),
    #[error(transparent)]
    Question(#[from] QuestionError),
    #[error("`{field}` = `{value}` is not valid; {hint}")]
    BadValue {
        field: &'static str,
        value: String,
        hint: String,
    },
    #[error(transparent)]
    Memory(#[from] HubMemoryError),
    #[error("`{field}`: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error(
        "workers may only run memory ops here ({asked} is not one); use kind \"op\" with op memory.put, memory.link, memory.done, memory.search, memory.get or memory.forget"
    )]
    WorkerRestricted { asked: String },
    /// Boxed like the worker's: git's errors carry paths and output.
    #[error(transparent)]
    Worktree(Box<crate::worktree::WorktreeError>),
    #[error(transparent)]
    Limits(#[from] limits::LimitsError),
}

impl TaskError {
    /// What kind of failure this is, for a front end to map (the HTTP server to a status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaskError::EmptyTask
            | TaskError::TaskTooLong { .. }
            | TaskError::MissingField { .. }
            | TaskError::MissingViewField { .. }
            | TaskError::InvalidField { .. }
            | TaskError::NoIds
            | TaskError::BadValue { .. } => ErrorKind::BadRequest,
            TaskError::WorkerRestricted { .. } => ErrorKind::Forbidden,
            TaskError::Config(err) => err.kind(),
            TaskError::Job(err) => err.kind(),
            TaskError::Workflow(err) => err.kind(),
            TaskError::Worker(err) => err.kind(),
            TaskError::Question(err) => err.kind(),
            TaskError::Memory(err) => err.kind(),
            TaskError::Worktree(err) => err.kind(),
            TaskError::Limits(err) => err.kind(),
        }
    }
}

impl From<WorkerError> for TaskError {
    fn from(err: WorkerError) -> Self {
        TaskError::Worker(Box::new(err))
    }
}

impl From<StoreError> for TaskError {
    fn from(err: StoreError) -> Self {
        TaskError::Job(JobError::Store(err))
    }
}

impl From<AttachmentError> for TaskError {
    fn from(err: AttachmentError) -> Self {
        TaskError::Job(JobError::Attachment(err))
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
    runtime: JobRuntime,
    workflows: Workflows,
    config: Arc<Config>,
    project_dir: PathBuf,
    /// Which config file set each key (shown by the panel's config view).
    provenance: Arc<Provenance>,
    /// `None` when `memory.enabled` is false.
    memory: Option<HubMemory>,
    worktrees: crate::worktree::Worktrees,
}

impl TaskEngine {
    pub fn new(
        runtime: JobRuntime,
        config: Arc<Config>,
        project_dir: PathBuf,
        memory: Option<HubMemory>,
    ) -> TaskEngine {
        TaskEngine {
            workflows: Workflows::new(
                runtime.clone(),
                config.clone(),
                project_dir.clone(),
                memory.clone(),
            ),
            worktrees: crate::worktree::Worktrees::new(
                &project_dir,
                orchestra_state_dir::project_state_dir(&project_dir).join("worktrees"),
                config.worktree.clone(),
            ),
            runtime,
            config,
            project_dir,
            provenance: Arc::new(Provenance::default()),
            memory,
        }
    }

    /// The engine, knowing where its config came from.
    pub fn with_provenance(mut self, provenance: Provenance) -> TaskEngine {
        self.provenance = Arc::new(provenance);
        self
    }

    /// The project's memory, or why there is none (`memory.enabled` is false).
    pub fn memory(&self) -> Result<&HubMemory, HubMemoryError> {
        self.memory
            .as_ref()
            .ok_or_else(|| HubMemoryError::Disabled {
                what: "memory".to_owned(),
            })
    }

    pub fn store(&self) -> &Arc<Store> {
        self.runtime.store()
    }

    pub fn pool(&self) -> &WorkerPool {
        self.runtime.pool()
    }

    pub fn runtime(&self) -> &JobRuntime {
        &self.runtime
    }

    pub fn bus(&self) -> &EventBus {
        self.runtime.bus()
    }

    pub fn workflows(&self) -> &Workflows {
        &self.workflows
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn hub_id(&self) -> &str {
        self.runtime.hub_id()
    }

    pub fn project_dir(&self) -> &std::path::Path {
        &self.project_dir
    }

    /// Validates, records and launches a task; returns as soon as the job is recorded.
    pub async fn start(
        &self,
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let tasks = &self.config.tasks;
        // An op's `task` is only a label; the op's name stands in for a missing one.
        if params.task.trim().is_empty() && params.kind != TaskKind::Op {
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
        let continues = limits::continued_task(self.runtime.store(), &params)?;
        let route = match params.kind {
            // A continued task stays on its worker, in its session.
            TaskKind::Worker | TaskKind::Auto if continues.is_some() => RouteDecision {
                profile: continues
                    .as_ref()
                    .map(|r| r.worker_id.clone())
                    .unwrap_or_default(),
                reason: "continues its task's session (continueTaskId)".into(),
            },
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
            TaskKind::Auto => {
                let route = routing::route(&params.task, &params.attachments, &self.config);
                // The default (`coder`) may have been removed from the profiles.
                self.config.profile(&route.profile)?;
                route
            }
            TaskKind::Workflow => return self.start_workflow(params, requested_by, None),
            TaskKind::Op => return self.start_op(params, requested_by),
        };
        let profile = self.config.profile(&route.profile)?.clone();
        let params = worktree_ops::continued_workspace(params, continues.as_ref());
        let workspace = self.workspace_for(&params, &profile).await?;
        let profile_budget = self.config.profile(&route.profile)?.budget;
        let limits = limits::resolve(
            &self.config,
            self.runtime.store(),
            &params,
            profile_budget,
            continues,
        )?;
        let prepared =
            attachments::prepare(&params.attachments, &self.project_dir, tasks.into()).await?;
        // Built while the worker is leased and its session opens: the start does not wait.
        let context = match &self.memory {
            Some(memory) => {
                let (memory, task) = (memory.clone(), params.task.clone());
                JobContext::building(async move { memory.block_for_task(&task).await })
            }
            None => JobContext::text(None),
        };
        let mut record =
            self.runtime
                .new_record(route.profile.clone(), params.task.clone(), params.kind);
        record.requested_by = requested_by;
        record.caller_session_id = params.caller_session_id.clone();
        record.attachments = prepared.iter().map(|a| a.summary()).collect();
        record.route = (params.kind == TaskKind::Auto).then(|| route.clone());
        // A follow-up names its worktree from the start: no merge may slip in meanwhile.
        record.worktree = workspace.as_ref().and_then(JobWorkspace::existing);
        record.budget = limits.budget;
        record.until.clone_from(&params.until);
        record.continues_task_id = limits.continues.as_ref().map(|r| r.id.clone());
        let job = WorkerJob {
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
            permission_ask_timeout: Duration::from_millis(tasks.permission_ask_timeout_ms),
            context,
            token_budget: None,
            required_skills: Vec::new(),
            workspace,
            budget: limits.budget,
            prior_spend: limits.prior_spend,
            session_id: limits.continues.and_then(|r| r.session_id),
            until: limits.until,
            shared_budget: None,
        };
        let id = self.runtime.start_worker(record, job)?;
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

    /// A workflow a trigger starts (`workflows.triggers.*`), its tokens capped by the trigger's
    /// `maxTokens`.
    pub fn start_triggered_workflow(
        &self,
        params: TaskStartParams,
        requested_by: String,
        max_run_tokens: u64,
    ) -> Result<TaskStartResult, TaskError> {
        if params.task.trim().is_empty() {
            return Err(TaskError::EmptyTask);
        }
        self.start_workflow(params, Some(requested_by), Some(max_run_tokens))
    }

    fn start_workflow(
        &self,
        params: TaskStartParams,
        requested_by: Option<String>,
        max_run_tokens: Option<u64>,
    ) -> Result<TaskStartResult, TaskError> {
        workflow_args::refuse_worker_only(&params)?;
        let started = self.workflows.start(
            WorkflowRequest {
                workflow_id: params.workflow_id,
                continue_run_id: params.continue_run_id,
                task: params.task,
                attachments: params.attachments,
                auto_spawn: params.auto_spawn,
                caller_session_id: params.caller_session_id,
                max_run_tokens,
                workspace: params.workspace,
                worktrees: Some(self.worktrees.clone()),
                // A run draws from what is left of the project's day.
                budget: limits::within_daily(&self.config, self.runtime.store(), params.budget)?,
            },
            requested_by,
        )?;
        Ok(TaskStartResult {
            task_id: started.job_id,
            kind: TaskKind::Workflow,
            worker_id: Some(started.job_label),
            workflow_id: Some(started.workflow_id),
            continue_run_id: Some(started.run_id),
            op: None,
            route_reason: None,
            status: JobStatus::Running,
            next: "task_await".into(),
        })
    }

    /// True while the job runs in this hub.
    pub fn is_live(&self, id: &str) -> bool {
        self.runtime.is_live(id)
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
            out.push(lookup(id, self.runtime.await_until(id, deadline).await?));
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
    }

    /// The current records, without waiting.
    pub fn peek(&self, params: &TaskPeekParams) -> Result<TaskAnswer, TaskError> {
        let ids = collect_ids(&params.task_id, &params.task_ids);
        if ids.is_empty() {
            return Err(TaskError::NoIds);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(lookup(id, self.runtime.peek(id)?));
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
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
        let mut ours = Vec::new();
        for id in &ids {
            if self.runtime.cancel(id, &reason) {
                ours.push(id.clone());
            }
        }
        // The runner aborts the session and writes the canceled record; wait for that
        // (bounded) so the answer shows the final state.
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        for id in &ours {
            self.runtime.await_until(id, deadline).await?;
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.cancel_lookup(id)?);
        }
        Ok(TaskAnswer::from_lookups(params.task_ids.is_empty(), out))
    }

    fn cancel_lookup(&self, id: &str) -> Result<TaskLookup, TaskError> {
        let found = self.runtime.peek(id)?;
        if let Some(record) = &found
            && record.status == JobStatus::Running
            && record.hub_id != self.runtime.hub_id()
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
        Ok(lookup(id, found))
    }

    pub async fn list(&self, params: &TaskListParams) -> Result<views::Listing, TaskError> {
        views::render(self, params).await
    }

    /// Cancels every running job of this hub (on shutdown).
    pub fn cancel_all(&self, reason: &str) {
        self.runtime.cancel_all(reason);
    }

    pub fn running_count(&self) -> usize {
        self.runtime.running_count()
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

fn lookup(id: &str, record: Option<JobRecord>) -> TaskLookup {
    match record {
        Some(record) => TaskLookup::Record(Box::new(record)),
        None => TaskLookup::unknown(id),
    }
}
