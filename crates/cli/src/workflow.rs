//! `orchestra workflow list | run <id> "task" | resume <runId>`, with one line per step change.

use std::collections::HashMap;

use anyhow::Context;
use futures_util::{Stream, StreamExt};
use orchestra_client::ClientError;
use orchestra_protocol::{
    EventBody, HubEvent, JobRecord, JobStatus, ListView, TaskKind, TaskStartParams,
    TaskStartResult, WorkflowRun, WorkflowRunStatus, WorkflowStepResult, WorkflowStepStatus,
};

use crate::follow::JobEvents;
use crate::hub_link::{HubTarget, ListArgs, list};
use crate::{shutdown_signal, write_stdout};

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
    base: &HubTarget,
) -> anyhow::Result<std::process::ExitCode> {
    let (params, fake, json) = match command {
        WorkflowCommand::List { json, limit } => {
            let args = ListArgs {
                json,
                limit,
                worker: None,
                fake: false,
            };
            return list(base, ListView::Workflows, args).await;
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
    let target = HubTarget {
        fake,
        ..base.clone()
    };
    let hub = target.connect().await?;
    let client = &hub.client;
    let events = JobEvents::mark(client).await?;
    let started: TaskStartResult = client
        .post("/api/v1/tasks", &params)
        .await
        .context("the workflow was refused")?;
    let run_id = started.continue_run_id.clone().unwrap_or_default();
    eprintln!(
        "orchestra: workflow `{}`, run {run_id}, task {}",
        started.workflow_id.as_deref().unwrap_or(""),
        started.task_id
    );
    let stream = events.follow(&started.task_id).await?;
    tokio::select! {
        () = follow_steps(stream) => {}
        () = shutdown_signal() => {
            eprintln!("orchestra: interrupted; pausing the run");
            let canceled: Result<serde_json::Value, _> = client
                .post(
                    &format!("/api/v1/tasks/{}/cancel", started.task_id),
                    &serde_json::json!({"reason": "interrupted from the terminal"}),
                )
                .await;
            if let Err(err) = canceled {
                eprintln!("orchestra: canceling failed: {err}");
            }
        }
    }
    let job: JobRecord = client
        .get(&format!("/api/v1/tasks/{}", started.task_id))
        .await
        .context("reading the workflow's job record")?;
    let run: WorkflowRun = client
        .get(&format!("/api/v1/runs/{run_id}"))
        .await
        .context("reading the workflow run")?;
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
            "orchestra: run {} in {:.1} s working, {} tokens",
            run.status.as_str(),
            run.active_ms as f64 / 1000.0,
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
async fn follow_steps(events: impl Stream<Item = Result<HubEvent, ClientError>>) {
    let mut events = Box::pin(events);
    let mut seen: HashMap<String, WorkflowStepStatus> = HashMap::new();
    while let Some(Ok(event)) = events.next().await {
        match &event.body {
            EventBody::WorkflowStep(step) => {
                if seen.get(&step.step.id) == Some(&step.step.status)
                    || step.step.status == WorkflowStepStatus::Pending
                {
                    continue;
                }
                seen.insert(step.step.id.clone(), step.step.status);
                eprintln!(
                    "orchestra: [step {}] {}",
                    step.index + 1,
                    describe(&step.step)
                );
            }
            EventBody::JobFinished { .. } => return,
            _ => {}
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
            "{name} done in {:.1} s on {} ({} tokens)",
            step.duration_ms.unwrap_or_default() as f64 / 1000.0,
            step.model.as_deref().unwrap_or("unknown model"),
            step.usage.total()
        ),
        WorkflowStepStatus::Error => format!(
            "{name} failed: {}",
            step.error.as_deref().unwrap_or("no error recorded")
        ),
    }
}
