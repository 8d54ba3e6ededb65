//! `orchestra run`: one task on one worker, with live progress.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use orchestra_core::config::LoadedConfig;
use orchestra_protocol::{
    Attachment, AttachmentType, JobRecord, JobStatus, TaskAwaitParams, TaskKind, TaskStartParams,
};

use crate::{shutdown_signal, start_on_new_hub, write_stdout};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The worker profile to run on (coder, architect, explorer, docs, vision, memory, …).
    #[arg(long, short, conflicts_with = "auto")]
    worker: Option<String>,
    /// Let Orchestra pick the worker from the task (the default when --worker is absent).
    #[arg(long)]
    auto: bool,
    /// Attach a file (repeatable); paths must be inside the project.
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
    fake: bool,
    /// Print the final job record as JSON.
    #[arg(long)]
    json: bool,
    /// What the worker should do.
    #[arg(required = true, num_args = 1..)]
    task: Vec<String>,
}

pub async fn run(
    args: RunArgs,
    loaded: LoadedConfig,
    project_dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let interactive = std::io::stderr().is_terminal();
    let mut attachments: Vec<Attachment> = args
        .files
        .iter()
        .map(|p| attachment(AttachmentType::File, p))
        .collect();
    attachments.extend(
        args.images
            .iter()
            .map(|p| attachment(AttachmentType::Image, p)),
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
        ..TaskStartParams::default()
    };
    let (running, started) =
        start_on_new_hub(loaded, project_dir, args.fake, params, "orchestra run").await?;
    let hub = &running.hub;
    let engine = hub.engine().clone();
    let worker = started.worker_id.clone().unwrap_or_default();
    eprintln!(
        "orchestra: task {} on worker `{worker}` ({})",
        started.task_id,
        started.route_reason.as_deref().unwrap_or("")
    );
    let progress = Progress::new(interactive);
    let record = tokio::select! {
        record = follow(&engine, &started.task_id, &progress) => record,
        () = shutdown_signal() => {
            progress.line("interrupted; canceling the task");
            None
        }
    };
    progress.finish();
    hub.shutdown().await;
    let record = match record {
        Some(record) => record,
        None => engine
            .store()
            .get_job(&started.task_id)?
            .context("the job record disappeared")?,
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
            "orchestra: {} in {} ms on {} ({} tokens)",
            record.status.as_str(),
            record.duration_ms.unwrap_or_default(),
            record.model.as_deref().unwrap_or("unknown model"),
            record.usage.total()
        );
    }
    Ok(if record.status == JobStatus::Succeeded {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn attachment(kind: AttachmentType, path: &Path) -> Attachment {
    Attachment {
        kind,
        path: Some(path.display().to_string()),
        base64: None,
        mime_type: None,
    }
}

async fn follow(
    engine: &orchestra_core::tasks::TaskEngine,
    id: &str,
    progress: &Progress,
) -> Option<JobRecord> {
    let mut last_state = None;
    let mut last_shown = std::time::Instant::now();
    loop {
        let answer = engine
            .await_tasks(&TaskAwaitParams {
                task_id: Some(id.to_owned()),
                timeout_ms: Some(500),
                ..TaskAwaitParams::default()
            })
            .await
            .ok()?;
        let record = answer.lookups().first().and_then(|l| l.record()).cloned()?;
        if record.status.is_final() {
            return Some(record);
        }
        let state = (
            record.progress.tool_calls,
            record.progress.last_output.clone(),
        );
        // A spinner redraws the clock every time; plain lines appear only when
        // the worker did something, or every few seconds as a heartbeat.
        let changed = last_state.as_ref() != Some(&state);
        if !progress.is_live() && !changed && last_shown.elapsed() < PLAIN_HEARTBEAT {
            continue;
        }
        let elapsed_ms = orchestra_protocol::now_ms() - record.started_at;
        let output = state
            .1
            .as_deref()
            .map(|o| format!(" · {}", tail(&o.replace('\n', " "), 60)))
            .unwrap_or_default();
        progress.update(&format!(
            "{} · {:.1}s · {} tool call(s){output}",
            record.worker_id,
            elapsed_ms as f64 / 1000.0,
            state.0,
        ));
        last_state = Some(state);
        last_shown = std::time::Instant::now();
    }
}

/// How often a plain (non-terminal) progress line repeats when nothing changed.
const PLAIN_HEARTBEAT: Duration = Duration::from_secs(5);

/// The last `max` characters of `text`.
fn tail(text: &str, max: usize) -> &str {
    let count = text.chars().count();
    match text.char_indices().nth(count.saturating_sub(max)) {
        Some((at, _)) if count > max => &text[at..],
        _ => text,
    }
}

/// A spinner on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(interactive: bool) -> Progress {
        let bar = interactive.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    fn update(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_owned()),
            None => eprintln!("orchestra: {line}"),
        }
    }

    fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("orchestra: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
