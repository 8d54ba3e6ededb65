//! `orchestra run`: one task on one worker, with live progress.

use std::path::{Path, PathBuf};

use anyhow::Context;
use orchestra_protocol::{
    Attachment, AttachmentType, JobRecord, JobStatus, TaskKind, TaskStartParams, TaskStartResult,
    WorkspaceMode,
};

use crate::follow::{self, JobEvents};
use crate::hub_link::HubTarget;
use crate::{shutdown_signal, write_stdout};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The worker profile to run on (coder, architect, explorer, docs, vision, memory, …).
    #[arg(long, short, conflicts_with = "auto")]
    worker: Option<String>,
    /// Let Orchestra pick the worker from the task (the default when --worker is absent).
    #[arg(long)]
    auto: bool,
    /// Attach a file (repeatable; relative to the current directory, inside the project).
    #[arg(long = "file", short = 'f')]
    files: Vec<PathBuf>,
    /// Attach an image (repeatable).
    #[arg(long = "image", short = 'i')]
    images: Vec<PathBuf>,
    /// Model for this task (`provider/model`).
    #[arg(long)]
    model: Option<String>,
    /// Abort the task after this many milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Run on the built-in fake model (it echoes prompts) instead of the providers your
    /// OpenCode configuration offers.
    #[arg(long)]
    pub fake: bool,
    /// Print the final job record as JSON.
    #[arg(long)]
    json: bool,
    /// `worktree` (a git worktree of the task's own, on branch orchestra/<taskId>) or
    /// `checkout` (edit the project directly). Default: a worktree for a worker that may edit.
    #[arg(long, value_parser = ["worktree", "checkout"])]
    workspace: Option<String>,
    /// Merge the task's worktree into its base branch when the task succeeds (checked for
    /// conflicts first; a conflict changes nothing).
    #[arg(long)]
    merge: bool,
    /// What the worker should do.
    #[arg(required = true, num_args = 1..)]
    task: Vec<String>,
}

pub async fn run(args: RunArgs, target: &HubTarget) -> anyhow::Result<std::process::ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut attachments: Vec<Attachment> = args
        .files
        .iter()
        .map(|p| attachment(AttachmentType::File, &cwd.join(p)))
        .collect();
    attachments.extend(
        args.images
            .iter()
            .map(|p| attachment(AttachmentType::Image, &cwd.join(p))),
    );
    let params = TaskStartParams {
        kind: if args.worker.is_some() {
            TaskKind::Worker
        } else {
            TaskKind::Auto
        },
        task: args.task.join(" "),
        worker_id: args.worker.clone(),
        model: args.model.clone(),
        attachments,
        timeout_ms: args.timeout_ms,
        workspace: match args.workspace.as_deref() {
            Some("worktree") => Some(WorkspaceMode::Worktree),
            Some(_) => Some(WorkspaceMode::Checkout),
            None => None,
        },
        ..TaskStartParams::default()
    };
    let hub = target.connect().await?;
    let client = &hub.client;
    let events = JobEvents::mark(client).await?;
    let started: TaskStartResult = client
        .post("/api/v1/tasks", &params)
        .await
        .context("the task was refused")?;
    let worker = started.worker_id.clone().unwrap_or_default();
    eprintln!(
        "orchestra: task {} on worker `{worker}` ({})",
        started.task_id,
        started.route_reason.as_deref().unwrap_or("")
    );
    let stream = events.follow(&started.task_id).await?;
    let record = tokio::select! {
        record = follow::job(stream, &worker) => record,
        () = shutdown_signal() => {
            eprintln!("orchestra: interrupted; canceling the task");
            let canceled: Result<serde_json::Value, _> = client
                .post(
                    &format!("/api/v1/tasks/{}/cancel", started.task_id),
                    &serde_json::json!({"reason": "interrupted from the terminal"}),
                )
                .await;
            if let Err(err) = canceled {
                eprintln!("orchestra: canceling failed: {err}");
            }
            None
        }
    };
    let record = match record {
        Some(record) => record,
        None => client
            .get::<JobRecord>(&format!("/api/v1/tasks/{}", started.task_id))
            .await
            .context("reading the task's record")?,
    };
    // A failure is said on stderr in both modes, so a script reading the JSON still shows why.
    match record.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed | JobStatus::Canceled | JobStatus::Running => eprintln!(
            "orchestra: task {} {}: {}",
            record.id,
            record.status.as_str(),
            record.error.as_deref().unwrap_or("no error recorded")
        ),
    }
    if args.json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&record)?))?;
    } else {
        if record.status == JobStatus::Succeeded {
            write_stdout(&format!(
                "{}\n",
                record.response_text.as_deref().unwrap_or("")
            ))?;
        }
        eprintln!(
            "orchestra: {} in {:.1} s on {} ({} tokens)",
            record.status.as_str(),
            record.duration_ms.unwrap_or_default() as f64 / 1000.0,
            record.model.as_deref().unwrap_or("unknown model"),
            record.usage.total()
        );
    }
    let merged_as_asked = crate::run_worktree::report(client, &record, args.merge).await?;
    Ok(
        if record.status == JobStatus::Succeeded && merged_as_asked {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        },
    )
}

fn attachment(kind: AttachmentType, path: &Path) -> Attachment {
    Attachment {
        kind,
        path: Some(path.display().to_string()),
        base64: None,
        mime_type: None,
    }
}
