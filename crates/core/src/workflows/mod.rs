//! Workflows: multi-step plans the hub runs across workers.
//!
//! `task_start({kind: "workflow", workflowId, task})` checks the limits, saves a
//! [`WorkflowRun`] and starts a job that runs the steps one after another (a parallel group's
//! steps at the same time), each as an ordinary worker job. The run is saved at every step
//! boundary, so `task_start({kind: "workflow", continueRunId})` resumes a paused run — also in
//! a new hub after the old one was stopped or killed, in which case the step that was running
//! runs again from its start.
//!
//! # Layout
//! - [`builtin`]: `roocode-boomerang`, `vision`, `memory`.
//! - [`catalog`]: built-ins + `workflows.definitions` + `.opencode/workflows/*.json`.
//! - [`limits`]: caps and budgets, checked before anything runs.
//! - [`carry`]: the handoff between steps.
//! - `driver`: runs the steps, gates pauses, writes the job and the run.
//! - `run_budget`: the run's budget clock and its `orchestra.budget.exceeded`.
//! - [`triggers`]: `memoryOnTurnEnd` — the memory workflow after a finished task.
//!
//! Workflows sit on the job runtime (`crate::jobs`): each step is an ordinary worker job, and
//! the workflow itself is a job whose task is the driver. Nothing here knows about the task
//! facade above.

pub mod builtin;
pub mod carry;
pub mod catalog;
mod driver;
pub mod limits;
mod run_budget;
mod skills;
pub mod triggers;
mod worktree_run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orchestra_protocol::{
    Attachment, ErrorKind, EventBody, JobRecord, TaskKind, WorkflowRun, WorkflowRunEvent,
    WorkflowRunStatus, WorkflowRunUi, WorkflowStepResult, now_ms,
};
use orchestra_store::{HUB_STALE_AFTER_MS, StoreError, pid_is_alive};

use crate::config::{Config, WorkflowDefinition};
use crate::jobs::{JobError, JobRuntime};
use crate::memory::HubMemory;
pub use catalog::{Catalog, Entry, Source};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("workflows are turned off (workflows.enabled is false); turn them on to run `{id}`")]
    Disabled { id: String },
    #[error(
        "kind \"workflow\" needs `workflowId` (to start a run) or `continueRunId` (to resume one); list workflows with task_list view \"workflows\""
    )]
    MissingId,
    #[error(
        "unknown workflow `{id}`; known workflows: {}{}{}",
        known.join(", "),
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default(),
        if problems.is_empty() { String::new() } else { format!("; workflow files that could not be read: {}", problems.join(" | ")) }
    )]
    UnknownWorkflow {
        id: String,
        known: Vec<String>,
        suggestion: Option<String>,
        problems: Vec<String>,
    },
    #[error(
        "workflow `{workflow}` asks for limits.{name} = {value}, above the cap security.workflows.{name} = {cap}; a workflow can only lower the caps — lower it or raise the cap"
    )]
    LimitAboveCap {
        workflow: String,
        name: &'static str,
        value: u64,
        cap: u64,
    },
    #[error(
        "workflow `{workflow}` has {steps} worker steps (group members count), more than maxSteps = {max}; remove steps or raise security.workflows.maxSteps"
    )]
    TooManySteps {
        workflow: String,
        steps: u64,
        max: u64,
    },
    #[error(
        "the task is {chars} characters, more than maxTaskChars = {max} for workflow `{workflow}`; shorten it, attach the rest as a file, or raise security.workflows.maxTaskChars"
    )]
    TaskTooLong {
        workflow: String,
        chars: u64,
        max: u64,
    },
    #[error(
        "step `{step}` of workflow `{workflow}` asks for timeoutMs = {timeout}, above perStepTimeoutMs = {max}; lower the step's timeoutMs or raise security.workflows.perStepTimeoutMs"
    )]
    StepTimeoutAboveCap {
        workflow: String,
        step: String,
        timeout: u64,
        max: u64,
    },
    #[error("no workflow run `{id}`; list runs with task_list view \"workflows\"")]
    UnknownRun { id: String },
    #[error(
        "workflow run `{id}` already finished ({status}); start a new run with workflowId `{workflow}`"
    )]
    RunFinished {
        id: String,
        status: &'static str,
        workflow: String,
    },
    #[error(
        "workflow run `{id}` is running now as task `{job_id}` (hub {hub_id}); await that task instead of resuming"
    )]
    RunBusy {
        id: String,
        job_id: String,
        hub_id: String,
    },
    #[error("workflow run `{id}` is {status}, not running; {hint}")]
    NotRunning {
        id: String,
        status: &'static str,
        hint: String,
    },
    #[error(
        "workflow run `{id}` has a definition this version cannot read: {source}; start a new run"
    )]
    CorruptDefinition {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "run `{id}` already used {used} of budget.{dimension} (cap {cap}); resume it with a \
         `budget` whose {dimension} is above {used}"
    )]
    BudgetSpent {
        id: String,
        dimension: &'static str,
        used: f64,
        cap: f64,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

impl WorkflowError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WorkflowError::UnknownRun { .. } => ErrorKind::NotFound,
            WorkflowError::RunFinished { .. }
            | WorkflowError::RunBusy { .. }
            | WorkflowError::NotRunning { .. } => ErrorKind::Conflict,
            WorkflowError::Job(err) => err.kind(),
            WorkflowError::BudgetSpent { .. } => ErrorKind::BudgetExceeded,
            WorkflowError::Disabled { .. }
            | WorkflowError::MissingId
            | WorkflowError::UnknownWorkflow { .. }
            | WorkflowError::LimitAboveCap { .. }
            | WorkflowError::TooManySteps { .. }
            | WorkflowError::TaskTooLong { .. }
            | WorkflowError::StepTimeoutAboveCap { .. }
            | WorkflowError::CorruptDefinition { .. } => ErrorKind::BadRequest,
        }
    }
}

impl From<StoreError> for WorkflowError {
    fn from(err: StoreError) -> Self {
        WorkflowError::Job(JobError::Store(err))
    }
}

/// What a caller asks of a workflow: a new run, or the resumption of a paused one.
pub struct WorkflowRequest {
    pub workflow_id: Option<String>,
    pub continue_run_id: Option<String>,
    pub task: String,
    pub attachments: Vec<Attachment>,
    pub auto_spawn: Option<bool>,
    /// The OpenCode session that starts the run (`callerSessionId`); its job records it.
    pub caller_session_id: Option<String>,
    /// A trigger's token cap (`workflows.triggers.*.maxTokens`); lowers the definition's own.
    pub max_run_tokens: Option<u64>,
    /// Where the run's steps edit files: one worktree the steps share (`worktree`), or the
    /// checkout; `None` decides by the default rule (see `worktree_run.rs`).
    pub workspace: Option<orchestra_protocol::WorkspaceMode>,
    /// The project's worktrees; `None` runs in the checkout.
    pub worktrees: Option<crate::worktree::Worktrees>,
    /// One budget for the whole run (`budget`); on resume, a raised one.
    pub budget: Option<orchestra_protocol::TaskBudget>,
}

/// A run that was started or resumed: its workflow job and run ids.
pub struct StartedRun {
    pub job_id: String,
    pub job_label: String,
    pub workflow_id: String,
    pub run_id: String,
}

/// Starts, resumes and lists workflow runs. Cheap to clone.
#[derive(Clone)]
pub struct Workflows {
    runtime: JobRuntime,
    config: Arc<Config>,
    project_dir: PathBuf,
    /// The project's memory, for the block in each step's prompt (`None`: memory is off).
    memory: Option<HubMemory>,
}

impl Workflows {
    pub fn new(
        runtime: JobRuntime,
        config: Arc<Config>,
        project_dir: PathBuf,
        memory: Option<HubMemory>,
    ) -> Workflows {
        Workflows {
            runtime,
            config,
            project_dir,
            memory,
        }
    }

    pub fn runtime(&self) -> &JobRuntime {
        &self.runtime
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn project_dir(&self) -> &Path {
        &self.project_dir
    }

    /// Built-ins, `workflows.definitions` and the project's workflow files.
    pub fn catalog(&self) -> Catalog {
        Catalog::load(&self.config, &self.project_dir)
    }

    /// A new run (`workflowId`) or a resumed one (`continueRunId`). Returns at once; the
    /// workflow job's record tells how the run went.
    pub fn start(
        &self,
        request: WorkflowRequest,
        requested_by: Option<String>,
    ) -> Result<StartedRun, WorkflowError> {
        if let Some(run_id) = request.continue_run_id.clone() {
            let workspace = worktree_run::RunWorkspace::of(&request);
            return self.resume(&run_id, requested_by, workspace, request.budget);
        }
        let Some(workflow_id) = request.workflow_id.clone() else {
            return Err(WorkflowError::MissingId);
        };
        let config = &self.config;
        if !config.workflows.enabled {
            return Err(WorkflowError::Disabled { id: workflow_id });
        }
        let catalog = self.catalog();
        let mut definition = catalog.find(&workflow_id)?.definition.clone();
        if let Some(cap) = request.max_run_tokens {
            let own = definition.limits.max_run_tokens.unwrap_or(u64::MAX);
            definition.limits.max_run_tokens = Some(own.min(cap));
        }
        let ui = WorkflowRunUi {
            execution: ui_name(config.workflows.ui.execution),
            intervene: ui_name(config.workflows.ui.intervene),
        };
        self.begin(definition, request, ui, requested_by)
    }

    /// Checks the limits, saves a new run of `definition` and launches it.
    fn begin(
        &self,
        definition: WorkflowDefinition,
        request: WorkflowRequest,
        ui: WorkflowRunUi,
        requested_by: Option<String>,
    ) -> Result<StartedRun, WorkflowError> {
        let config = &self.config;
        let limits = limits::effective(config, &definition)?;
        limits::check_run(&definition, &limits, &request.task)?;
        let workspace = worktree_run::RunWorkspace::of(&request);

        let mut record = self.job_record(&definition, &request.task, requested_by);
        record.caller_session_id = request.caller_session_id;
        let now = now_ms();
        let run = WorkflowRun {
            run_id: uuid::Uuid::new_v4().to_string(),
            workflow_id: definition.id.clone(),
            workflow_name: definition.name.clone(),
            task: request.task.clone(),
            auto_spawn: request
                .auto_spawn
                .unwrap_or(config.tasks.default_auto_spawn && config.auto_spawn),
            limits,
            attachments: request.attachments,
            ui,
            status: WorkflowRunStatus::Running,
            current_step_index: 0,
            steps: step_results(&definition),
            carry: String::new(),
            started_at: now,
            updated_at: now,
            finished_at: None,
            active_ms: 0,
            usage: Default::default(),
            budget: request.budget.filter(|b| !b.is_empty()),
            spent: None,
            budget_stop: None,
            reason: None,
            hub_id: self.runtime.hub_id().to_owned(),
            job_id: record.id.clone(),
            job_ids: vec![record.id.clone()],
            definition: serde_json::to_value(&definition).unwrap_or_default(),
        };
        self.runtime.store().save_run(&run)?;
        self.launch(run, definition, record, workspace)
    }

    fn resume(
        &self,
        run_id: &str,
        requested_by: Option<String>,
        workspace: worktree_run::RunWorkspace,
        budget: Option<orchestra_protocol::TaskBudget>,
    ) -> Result<StartedRun, WorkflowError> {
        let store = self.runtime.store();
        store.recover_interrupted_runs(&pid_is_alive, HUB_STALE_AFTER_MS)?;
        let Some(mut run) = store.get_run(run_id)? else {
            return Err(WorkflowError::UnknownRun { id: run_id.into() });
        };
        match run.status {
            WorkflowRunStatus::Paused => {}
            WorkflowRunStatus::Running => return Err(busy(&run)),
            WorkflowRunStatus::Success | WorkflowRunStatus::Error => {
                return Err(WorkflowError::RunFinished {
                    id: run.run_id.clone(),
                    status: run.status.as_str(),
                    workflow: run.workflow_id.clone(),
                });
            }
        }
        let definition: WorkflowDefinition = serde_json::from_value(run.definition.clone())
            .map_err(|source| WorkflowError::CorruptDefinition {
                id: run.run_id.clone(),
                source,
            })?;
        // The limits of now: a cap lowered while the run was paused applies to the rest of it.
        run.limits = limits::effective(&self.config, &definition)?;
        limits::check_run(&definition, &run.limits, &run.task)?;
        run.budget = limits::raised_budget(&run, budget)?;

        let earlier = match run.job_ids.last() {
            Some(id) => store.get_job(id)?,
            None => None,
        };
        let workspace = workspace.carry_from(earlier.as_ref());
        let record = self.job_record(&definition, &run.task, requested_by);
        run.status = WorkflowRunStatus::Running;
        run.reason = None;
        run.budget_stop = None;
        run.hub_id = self.runtime.hub_id().to_owned();
        run.job_id = record.id.clone();
        run.job_ids.push(record.id.clone());
        run.updated_at = now_ms();
        if !store.save_run_if(&run, WorkflowRunStatus::Paused)? {
            // Another hub resumed it between our read and our write.
            let now = store.get_run(run_id)?.unwrap_or(run);
            return Err(busy(&now));
        }
        self.launch(run, definition, record, workspace)
    }

    fn job_record(
        &self,
        definition: &WorkflowDefinition,
        task: &str,
        requested_by: Option<String>,
    ) -> JobRecord {
        let mut record = self.runtime.new_record(
            format!("workflow:{}", definition.id),
            task.to_owned(),
            TaskKind::Workflow,
        );
        record.requested_by = requested_by;
        record
    }

    fn launch(
        &self,
        run: WorkflowRun,
        definition: WorkflowDefinition,
        mut record: JobRecord,
        workspace: worktree_run::RunWorkspace,
    ) -> Result<StartedRun, WorkflowError> {
        record.run_id = Some(run.run_id.clone());
        let handle = self.runtime.open(record.clone())?;
        let started = StartedRun {
            job_id: record.id.clone(),
            job_label: record.worker_id.clone(),
            workflow_id: run.workflow_id.clone(),
            run_id: run.run_id.clone(),
        };
        self.runtime.bus().publish(run_event(&run));
        self.runtime.spawn(
            record.id.clone(),
            driver::drive(self.clone(), run, definition, record, handle, workspace),
        );
        Ok(started)
    }

    /// A run as stored now (pausing it first if its hub died).
    pub fn get_run(&self, run_id: &str) -> Result<Option<WorkflowRun>, WorkflowError> {
        let store = self.runtime.store();
        store.recover_interrupted_runs(&pid_is_alive, HUB_STALE_AFTER_MS)?;
        Ok(store.get_run(run_id)?)
    }

    /// Pauses a running run of this hub: its workflow job is canceled with `reason`, the step
    /// that was running is stopped (its sessions aborted) and runs again on resume. Returns the
    /// run once its driver has saved it paused.
    pub async fn pause(&self, run_id: &str, reason: &str) -> Result<WorkflowRun, WorkflowError> {
        let Some(run) = self.get_run(run_id)? else {
            return Err(WorkflowError::UnknownRun { id: run_id.into() });
        };
        match run.status {
            WorkflowRunStatus::Running => {}
            WorkflowRunStatus::Paused => {
                return Err(WorkflowError::NotRunning {
                    id: run.run_id,
                    status: "paused already",
                    hint: "resume it with continueRunId".into(),
                });
            }
            WorkflowRunStatus::Success | WorkflowRunStatus::Error => {
                return Err(WorkflowError::RunFinished {
                    id: run.run_id,
                    status: run.status.as_str(),
                    workflow: run.workflow_id,
                });
            }
        }
        if !self.runtime.cancel(&run.job_id, reason) {
            // Running, but not in this hub: the hub that runs it owns it.
            return Err(busy(&run));
        }
        // The driver stops the step's workers (bounded) and saves the run paused.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        self.runtime.await_until(&run.job_id, deadline).await?;
        Ok(self.get_run(run_id)?.unwrap_or(run))
    }

    /// Ends a run for good: a running run is paused first, then the run is marked `error` with
    /// `reason` and can no longer be resumed.
    pub async fn end(&self, run_id: &str, reason: &str) -> Result<WorkflowRun, WorkflowError> {
        let Some(mut run) = self.get_run(run_id)? else {
            return Err(WorkflowError::UnknownRun { id: run_id.into() });
        };
        if run.status == WorkflowRunStatus::Running {
            run = self.pause(run_id, reason).await?;
        }
        match run.status {
            WorkflowRunStatus::Paused => {}
            WorkflowRunStatus::Running => return Err(busy(&run)),
            WorkflowRunStatus::Success | WorkflowRunStatus::Error => {
                return Err(WorkflowError::RunFinished {
                    id: run.run_id,
                    status: run.status.as_str(),
                    workflow: run.workflow_id,
                });
            }
        }
        let now = now_ms();
        run.status = WorkflowRunStatus::Error;
        run.finished_at = Some(now);
        run.updated_at = now;
        run.reason = Some(reason.to_owned());
        if !self
            .runtime
            .store()
            .save_run_if(&run, WorkflowRunStatus::Paused)?
        {
            // Resumed by someone else between our read and our write.
            let now = self.runtime.store().get_run(run_id)?.unwrap_or(run);
            return Err(busy(&now));
        }
        self.runtime.bus().publish(run_event(&run));
        Ok(run)
    }

    /// Recent runs, newest first.
    pub fn list_runs(&self, limit: u32) -> Result<Vec<WorkflowRun>, WorkflowError> {
        let store = self.runtime.store();
        store.recover_interrupted_runs(&pid_is_alive, HUB_STALE_AFTER_MS)?;
        Ok(store.list_runs(None, limit)?)
    }
}

fn busy(run: &WorkflowRun) -> WorkflowError {
    WorkflowError::RunBusy {
        id: run.run_id.clone(),
        job_id: run.job_id.clone(),
        hub_id: run.hub_id.clone(),
    }
}

/// The run-level event for a run as it is now.
fn run_event(run: &WorkflowRun) -> EventBody {
    EventBody::WorkflowRun(WorkflowRunEvent {
        run_id: run.run_id.clone(),
        job_id: run.job_id.clone(),
        workflow_id: run.workflow_id.clone(),
        status: run.status,
        current_step_index: run.current_step_index,
        reason: run.reason.clone(),
        usage: run.usage,
    })
}

/// A pending result for every worker step, group members flattened in order.
fn step_results(definition: &WorkflowDefinition) -> Vec<WorkflowStepResult> {
    let mut out = Vec::new();
    for step in &definition.steps {
        let group = (!step.parallel.is_empty()).then(|| step.id.clone());
        out.extend(step.members().into_iter().map(|m| WorkflowStepResult {
            id: m.id.clone(),
            title: m.title.clone(),
            worker_id: m.worker_id.clone(),
            group: group.clone(),
            ..WorkflowStepResult::default()
        }));
    }
    out
}

/// The config spelling of a ui setting (`auto`, `on-error`, …).
fn ui_name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
