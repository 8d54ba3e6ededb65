//! `orchestra quickstart`: the first task, on any machine. It tries the providers the user's
//! OpenCode offers; when none is configured or none can be reached (no key, no internet), it says
//! so in one line with the fix, and runs the task on the built-in echo model, labelled as such,
//! so that the first run always ends in a finished task.

use std::time::{Duration, Instant};

use orchestra_client::HubClient;
use orchestra_protocol::{
    JobRecord, JobStatus, ListFormat, ListScope, ListView, TaskKind, TaskListParams,
    TaskStartParams, TaskStartResult,
};

use crate::hub_link::HubTarget;
use crate::write_stdout;

/// What to do when no provider is configured or none answers.
pub const NO_PROVIDER_FIX: &str = "`opencode auth login` (or `opencode providers`) to add a provider key, or add a provider \
     to opencode.json; `orchestra run --fake …` works meanwhile on the built-in echo model";

#[derive(clap::Args)]
pub struct QuickstartArgs {
    /// How long the real try may take before it counts as "no provider answers".
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// The first task (default: a one-sentence hello).
    task: Vec<String>,
}

const DEFAULT_TASK: &str = "Say hello from an Open Orchestra worker in one short sentence.";

pub async fn run(
    args: QuickstartArgs,
    target: &HubTarget,
) -> anyhow::Result<std::process::ExitCode> {
    let task = if args.task.is_empty() {
        DEFAULT_TASK.to_owned()
    } else {
        args.task.join(" ")
    };
    let real = HubTarget {
        fake: false,
        ..target.clone()
    };
    let why_not = match real.connect().await {
        Err(err) => format!("the hub could not start: {err:#}"),
        Ok(hub) => match usable_model_count(&hub.client).await {
            Some(0) => "OpenCode offers no model provider here".to_owned(),
            _ => {
                eprintln!("orchestra: first task on worker `coder`, on your OpenCode providers");
                match task_to_end(&hub.client, &task, Duration::from_secs(args.timeout_secs)).await
                {
                    Ok(record) if record.status == JobStatus::Succeeded => {
                        write_stdout(&format!("{}\n", record.response_text.unwrap_or_default()))?;
                        eprintln!(
                            "orchestra: done in {:.1} s on {}",
                            record.duration_ms.unwrap_or_default() as f64 / 1000.0,
                            record.model.as_deref().unwrap_or("unknown model")
                        );
                        return Ok(std::process::ExitCode::SUCCESS);
                    }
                    Ok(record) => format!(
                        "{} did not answer ({})",
                        record.model.as_deref().unwrap_or("the model"),
                        record
                            .error
                            .as_deref()
                            .and_then(|e| e.lines().next())
                            .unwrap_or("no error recorded")
                    ),
                    Err(err) => format!("the task did not run: {err}"),
                }
            }
        },
    };
    eprintln!(
        "orchestra: no model provider could be used: {why_not}. Fix: {NO_PROVIDER_FIX}; \
         `orchestra doctor` checks the whole setup."
    );
    // The hub that tried runs on the user's providers; the echo model needs its own.
    crate::hub_link::stop(&real).await?;
    let fake = HubTarget {
        fake: true,
        ..target.clone()
    };
    let hub = fake.connect().await?;
    eprintln!(
        "orchestra: so this first task runs on the built-in echo model (--fake): it repeats the task, it does not think"
    );
    let record = task_to_end(&hub.client, &task, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    match record.status {
        JobStatus::Succeeded => {
            write_stdout(&format!(
                "[built-in echo model] {}\n",
                record.response_text.unwrap_or_default()
            ))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        JobStatus::Failed | JobStatus::Canceled | JobStatus::Running => {
            eprintln!(
                "orchestra: even the echo model's task failed: {}; `orchestra doctor` says why",
                record.error.as_deref().unwrap_or("no error recorded")
            );
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

/// How many models OpenCode offers as usable; `None` when the listing could not be read.
async fn usable_model_count(client: &HubClient) -> Option<u64> {
    let listing = client
        .list(&TaskListParams {
            view: ListView::Models,
            scope: Some(ListScope::Configured),
            format: Some(ListFormat::Json),
            limit: Some(1),
            ..TaskListParams::default()
        })
        .await
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&listing.text).ok()?;
    value["total"].as_u64()
}

/// Runs `task` on the coder worker and waits for its record (at most `limit`, then the task is
/// aborted by its own timeout). `Err` when the hub refused it or stopped answering.
pub async fn task_to_end(
    client: &HubClient,
    task: &str,
    limit: Duration,
) -> Result<JobRecord, String> {
    let params = TaskStartParams {
        kind: TaskKind::Worker,
        worker_id: Some("coder".into()),
        task: task.to_owned(),
        timeout_ms: Some(limit.as_millis() as u64),
        ..TaskStartParams::default()
    };
    let started: TaskStartResult = client
        .post("/api/v1/tasks", &params)
        .await
        .map_err(|err| format!("the task was refused: {err}"))?;
    let began = Instant::now();
    loop {
        let record = client
            .get::<JobRecord>(&format!("/api/v1/tasks/{}", started.task_id))
            .await
            .map_err(|err| format!("reading the task: {err}"))?;
        // The task's own timeout ends it; the margin covers a worker that starts slowly.
        if record.status != JobStatus::Running || began.elapsed() > limit + Duration::from_secs(30)
        {
            return Ok(record);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
