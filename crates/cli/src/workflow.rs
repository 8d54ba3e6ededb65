//! `orchestra workflow list | run <id> "task" | resume <runId>`, with one line per step change.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use orchestra_core::config::LoadedConfig;
use orchestra_core::tasks::TaskEngine;
use orchestra_protocol::{
    JobStatus, ListView, TaskAwaitParams, TaskCancelParams, TaskKind, TaskStartParams, WorkflowRun,
    WorkflowRunStatus, WorkflowStepResult, WorkflowStepStatus,
};

use crate::{ListArgs, list, shutdown_signal, start_on_new_hub, write_stdout};

#[derive(clap::Subcommand)]
pub enum WorkflowCommand {
    /// The workflows you can run and the recent runs.
    List {
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Run a workflow, printing each step as it starts and ends.
    Run {
        /// The workflow id (see `orchestra workflow list`).
        id: String,
        /// Run on the built-in fake model (it echoes prompts) instead of the providers your
        /// OpenCode configuration offers.
        #[arg(long)]
        fake: bool,
        /// Print the final run as JSON.
        #[arg(long)]
        json: bool,
        /// What the workflow should do.
        #[arg(required = true, num_args = 1..)]
        task: Vec<String>,
    },
    /// Resume a paused run (also one whose hub was stopped or killed).
    Resume {
        run_id: String,
        /// Run on the built-in fake model (it echoes prompts).
        #[arg(long)]
        fake: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    command: WorkflowCommand,
    loaded: LoadedConfig,
    project_dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let (params, fake, json) = match command {
        WorkflowCommand::List { json, limit } => {
            let args = ListArgs {
                json,
                limit,
                worker: None,
            };
            return list(loaded, project_dir, ListView::Workflows, args).await;
        }
        WorkflowCommand::Run {
            id,
            fake,
            json,
            task,
        } => (
            TaskStartParams {
                kind: TaskKind::Workflow,
                task: task.join(" "),
                workflow_id: Some(id),
                ..TaskStartParams::default()
            },
            fake,
            json,
        ),
        WorkflowCommand::Resume { run_id, fake, json } => (
            TaskStartParams {
                kind: TaskKind::Workflow,
                task: "continue".into(),
                continue_run_id: Some(run_id),
                ..TaskStartParams::default()
            },
            fake,
            json,
        ),
    };
    let (running, started) =
        start_on_new_hub(loaded, project_dir, fake, params, "orchestra workflow").await?;
    let hub = &running.hub;
    let engine = hub.engine().clone();
    let run_id = started.continue_run_id.clone().unwrap_or_default();
    eprintln!(
        "orchestra: workflow `{}`, run {run_id}, task {}",
        started.workflow_id.as_deref().unwrap_or(""),
        started.task_id
    );
    tokio::select! {
        () = follow(&engine, &started.task_id, &run_id) => {}
        () = shutdown_signal() => {
            eprintln!("orchestra: interrupted; pausing the run");
            let canceled = engine
                .cancel(&TaskCancelParams {
                    task_id: Some(started.task_id.clone()),
                    reason: Some("interrupted from the terminal".into()),
                    ..TaskCancelParams::default()
                })
                .await;
            if let Err(err) = canceled {
                eprintln!("orchestra: canceling failed: {err}");
            }
        }
    }
    hub.shutdown().await;
    let job = engine
        .store()
        .get_job(&started.task_id)?
        .context("the workflow's job record disappeared")?;
    let run = orchestra_core::workflows::get_run(&engine, &run_id)?
        .context("the workflow run disappeared")?;
    if json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&run)?))?;
    } else if let Some(text) = &job.response_text {
        write_stdout(&format!("{text}\n"))?;
    }
    match run.status {
        WorkflowRunStatus::Paused => eprintln!(
            "orchestra: run paused: {}\norchestra: resume with: orchestra workflow resume {run_id}",
            run.reason.as_deref().unwrap_or("")
        ),
        WorkflowRunStatus::Error => eprintln!(
            "orchestra: run failed: {}",
            run.reason.as_deref().unwrap_or("")
        ),
        WorkflowRunStatus::Success | WorkflowRunStatus::Running => eprintln!(
            "orchestra: run {} in {} ms working, {} tokens",
            run.status.as_str(),
            run.active_ms,
            run.usage.total()
        ),
    }
    Ok(
        if job.status == JobStatus::Succeeded && run.status == WorkflowRunStatus::Success {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        },
    )
}

/// Prints a line whenever a step changes status, until the workflow's job is final.
async fn follow(engine: &TaskEngine, task_id: &str, run_id: &str) {
    let mut seen: HashMap<String, WorkflowStepStatus> = HashMap::new();
    loop {
        let answer = engine
            .await_tasks(&TaskAwaitParams {
                task_id: Some(task_id.to_owned()),
                timeout_ms: Some(500),
                ..TaskAwaitParams::default()
            })
            .await;
        if let Ok(Some(run)) = orchestra_core::workflows::get_run(engine, run_id) {
            report_changes(&run, &mut seen);
        }
        let done = answer
            .ok()
            .and_then(|a| a.lookups().first().and_then(|l| l.record()).cloned())
            .is_none_or(|record| record.status.is_final());
        if done {
            return;
        }
    }
}

fn report_changes(run: &WorkflowRun, seen: &mut HashMap<String, WorkflowStepStatus>) {
    let total = run.steps.len();
    for (i, step) in run.steps.iter().enumerate() {
        if seen.get(&step.id) == Some(&step.status) {
            continue;
        }
        seen.insert(step.id.clone(), step.status);
        if step.status != WorkflowStepStatus::Pending {
            eprintln!("orchestra: [{}/{total}] {}", i + 1, describe(step));
        }
    }
}

fn describe(step: &WorkflowStepResult) -> String {
    let name = match &step.group {
        Some(group) => format!("{group}/{}", step.id),
        None => step.id.clone(),
    };
    match step.status {
        WorkflowStepStatus::Pending => format!("{name} pending"),
        WorkflowStepStatus::Running => format!("{name} running on {}", step.worker_id),
        WorkflowStepStatus::Success => format!(
            "{name} done in {} ms on {} ({} tokens)",
            step.duration_ms.unwrap_or_default(),
            step.model.as_deref().unwrap_or("unknown model"),
            step.usage.total()
        ),
        WorkflowStepStatus::Error => format!(
            "{name} failed: {}",
            step.error.as_deref().unwrap_or("no error recorded")
        ),
    }
}
