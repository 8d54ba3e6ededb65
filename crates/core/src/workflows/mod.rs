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
//! - [`view`]: the `workflows` and `workflow` views of `task_list`.
//! - `driver`: runs the steps, gates pauses, writes the job and the run.

pub mod builtin;
pub mod carry;
pub mod catalog;
mod driver;
pub mod limits;
pub mod view;

use orchestra_protocol::{
    JobRecord, JobStatus, TaskKind, TaskStartParams, TaskStartResult, WorkflowRun,
    WorkflowRunStatus, WorkflowRunUi, WorkflowStepResult, now_ms,
};
use orchestra_store::pid_is_alive;

use crate::config::WorkflowDefinition;
use crate::hub::STALE_AFTER_MS;
use crate::tasks::{TaskEngine, TaskError};
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
    #[error(
        "workflow run `{id}` has a definition this version cannot read: {source}; start a new run"
    )]
    CorruptDefinition {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `task_start` with `kind: "workflow"`: a new run (`workflowId`) or a resumed one
/// (`continueRunId`). Returns at once; the job's record tells how the run went.
pub fn start(
    engine: &TaskEngine,
    params: TaskStartParams,
    requested_by: Option<String>,
) -> Result<TaskStartResult, TaskError> {
    if let Some(run_id) = params.continue_run_id.clone() {
        return resume(engine, &run_id, requested_by);
    }
    let Some(workflow_id) = params.workflow_id.clone() else {
        return Err(WorkflowError::MissingId.into());
    };
    let config = engine.config();
    if !config.workflows.enabled {
        return Err(WorkflowError::Disabled { id: workflow_id }.into());
    }
    let catalog = Catalog::load(config, engine.project_dir());
    let definition = catalog.find(&workflow_id)?.definition.clone();
    let limits = limits::effective(config, &definition)?;
    limits::check_run(&definition, &limits, &params.task)?;

    let record = job_record(engine, &definition, &params.task, requested_by);
    let now = now_ms();
    let run = WorkflowRun {
        run_id: uuid::Uuid::new_v4().to_string(),
        workflow_id: definition.id.clone(),
        workflow_name: definition.name.clone(),
        task: params.task.clone(),
        auto_spawn: params
            .auto_spawn
            .unwrap_or(config.tasks.default_auto_spawn && config.auto_spawn),
        limits,
        attachments: params.attachments.clone(),
        ui: WorkflowRunUi {
            execution: ui_name(config.workflows.ui.execution),
            intervene: ui_name(config.workflows.ui.intervene),
        },
        status: WorkflowRunStatus::Running,
        current_step_index: 0,
        steps: step_results(&definition),
        carry: String::new(),
        started_at: now,
        updated_at: now,
        finished_at: None,
        active_ms: 0,
        usage: Default::default(),
        reason: None,
        hub_id: engine.hub_id().to_owned(),
        job_id: record.id.clone(),
        job_ids: vec![record.id.clone()],
        definition: serde_json::to_value(&definition).unwrap_or_default(),
    };
    engine.store().save_run(&run)?;
    launch(engine, run, definition, record)
}

fn resume(
    engine: &TaskEngine,
    run_id: &str,
    requested_by: Option<String>,
) -> Result<TaskStartResult, TaskError> {
    let store = engine.store();
    store.recover_interrupted_runs(&pid_is_alive, STALE_AFTER_MS)?;
    let Some(mut run) = store.get_run(run_id)? else {
        return Err(WorkflowError::UnknownRun { id: run_id.into() }.into());
    };
    match run.status {
        WorkflowRunStatus::Paused => {}
        WorkflowRunStatus::Running => return Err(busy(&run).into()),
        WorkflowRunStatus::Success | WorkflowRunStatus::Error => {
            return Err(WorkflowError::RunFinished {
                id: run.run_id.clone(),
                status: run.status.as_str(),
                workflow: run.workflow_id.clone(),
            }
            .into());
        }
    }
    let definition: WorkflowDefinition =
        serde_json::from_value(run.definition.clone()).map_err(|source| {
            WorkflowError::CorruptDefinition {
                id: run.run_id.clone(),
                source,
            }
        })?;
    // The limits of now: a cap lowered while the run was paused applies to the rest of it.
    run.limits = limits::effective(engine.config(), &definition)?;
    limits::check_run(&definition, &run.limits, &run.task)?;

    let record = job_record(engine, &definition, &run.task, requested_by);
    run.status = WorkflowRunStatus::Running;
    run.reason = None;
    run.hub_id = engine.hub_id().to_owned();
    run.job_id = record.id.clone();
    run.job_ids.push(record.id.clone());
    run.updated_at = now_ms();
    if !store.save_run_if(&run, WorkflowRunStatus::Paused)? {
        // Another hub resumed it between our read and our write.
        let now = store.get_run(run_id)?.unwrap_or(run);
        return Err(busy(&now).into());
    }
    launch(engine, run, definition, record)
}

fn busy(run: &WorkflowRun) -> WorkflowError {
    WorkflowError::RunBusy {
        id: run.run_id.clone(),
        job_id: run.job_id.clone(),
        hub_id: run.hub_id.clone(),
    }
}

fn job_record(
    engine: &TaskEngine,
    definition: &WorkflowDefinition,
    task: &str,
    requested_by: Option<String>,
) -> JobRecord {
    let mut record = JobRecord::start(
        uuid::Uuid::new_v4().to_string(),
        format!("workflow:{}", definition.id),
        task.to_owned(),
        TaskKind::Workflow.as_str(),
        engine.hub_id(),
    );
    record.requested_by = requested_by;
    record
}

fn launch(
    engine: &TaskEngine,
    run: WorkflowRun,
    definition: WorkflowDefinition,
    record: JobRecord,
) -> Result<TaskStartResult, TaskError> {
    let (cancel, reason) = engine.open_job(&record)?;
    let result = TaskStartResult {
        task_id: record.id.clone(),
        kind: TaskKind::Workflow,
        worker_id: Some(record.worker_id.clone()),
        workflow_id: Some(run.workflow_id.clone()),
        continue_run_id: Some(run.run_id.clone()),
        op: None,
        route_reason: None,
        status: JobStatus::Running,
        next: "task_await".into(),
    };
    tokio::spawn(driver::drive(
        engine.clone(),
        run,
        definition,
        record,
        cancel,
        reason,
    ));
    Ok(result)
}

/// A pending result for every worker step, group members flattened in order.
fn step_results(definition: &WorkflowDefinition) -> Vec<WorkflowStepResult> {
    let mut out = Vec::new();
    for step in &definition.steps {
        let group = (!step.parallel.is_empty()).then(|| step.id.clone());
        let members: Vec<_> = if step.parallel.is_empty() {
            vec![step]
        } else {
            step.parallel.iter().collect()
        };
        out.extend(members.into_iter().map(|m| WorkflowStepResult {
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

/// A run as stored now (pausing it first if its hub died).
pub fn get_run(engine: &TaskEngine, run_id: &str) -> Result<Option<WorkflowRun>, TaskError> {
    let store = engine.store();
    store.recover_interrupted_runs(&pid_is_alive, STALE_AFTER_MS)?;
    Ok(store.get_run(run_id)?)
}

/// Recent runs, newest first.
pub fn list_runs(engine: &TaskEngine, limit: u32) -> Result<Vec<WorkflowRun>, TaskError> {
    let store = engine.store();
    store.recover_interrupted_runs(&pid_is_alive, STALE_AFTER_MS)?;
    Ok(store.list_runs(None, limit)?)
}
