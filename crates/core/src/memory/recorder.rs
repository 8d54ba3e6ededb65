//! Automatic records (`memory.autoRecord`): every finished worker task and workflow run leaves
//! a structured record — what was asked, how it ended, the files it touched, model, tokens and
//! cost — with no LLM call. The recorder follows the event bus (`orchestra.job.finished`), so
//! the job runtime and the workflow driver know nothing about memory.
//!
//! Left out: canceled tasks, ops, the memory worker's own tasks (their output *is* memory),
//! steps of a workflow (the run's record lists them, with the files they touched), and runs
//! that paused (they have not ended).

use std::sync::Arc;
use std::time::Duration;

use orchestra_protocol::memory::{MemoryEntities, MemoryProvenance, MemoryPut, MemoryScope};
use orchestra_protocol::{EventBody, JobRecord, JobStatus, TaskKind, WorkflowRun};
use orchestra_protocol::{WorkflowRunStatus, WorkflowStepStatus};
use orchestra_store::Store;
use tokio_util::sync::CancellationToken;

use super::{HubMemory, MEMORY_PROFILE};
use crate::events::EventBus;

/// The workflow that distils memory; its runs are not recorded again.
pub const MEMORY_WORKFLOW: &str = "memory";
/// Files listed in a record's body (all of them, up to the entity cap, go in its entities).
const FILES_IN_BODY: usize = 20;
const MAX_FILES: usize = 64;
const TITLE_CHARS: usize = 100;

/// The recorder's task; [`Recorder::stop`] lets it write the records of jobs that already
/// finished, then ends it.
pub struct Recorder {
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Follows `bus` from now on and records what finishes.
    pub fn spawn(memory: HubMemory, store: Arc<Store>, bus: &EventBus) -> Recorder {
        let stop = CancellationToken::new();
        let mut events = bus.subscribe(None);
        let bus = bus.clone();
        let stopping = stop.clone();
        let done = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.next() => event,
                    () = stopping.cancelled() => {
                        // Jobs that finished before the stop still get their records.
                        let head = bus.last_id();
                        if events.last_id() >= head {
                            return;
                        }
                        events.next().await
                    }
                };
                let Some(event) = event else { return };
                if let EventBody::JobFinished { job } = &event.body {
                    record_job(&memory, &store, job).await;
                }
            }
        });
        Recorder { stop, done }
    }

    /// Writes what is still due (at most `limit`), then stops.
    pub async fn stop(self, limit: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(limit, self.done).await.is_err() {
            tracing::warn!("the memory recorder did not finish its last records in time");
        }
    }
}

async fn record_job(memory: &HubMemory, store: &Arc<Store>, job: &JobRecord) {
    let put = if job.kind == TaskKind::Workflow {
        let store = store.clone();
        let job = job.clone();
        let max = memory.settings().max_body_chars;
        match tokio::task::spawn_blocking(move || run_record(&store, &job, max)).await {
            Ok(put) => put,
            Err(err) => {
                tracing::warn!(error = %err, "reading a finished workflow run for its memory record failed");
                None
            }
        }
    } else {
        task_record(job, memory.settings().max_body_chars)
    };
    let Some(put) = put else { return };
    if let Err(err) = memory.put_automatic(put, Some(job.id.clone())).await {
        tracing::warn!(job = %job.id, error = %err, "writing the memory record of a finished task failed");
    }
}

/// The record of a finished worker task, or `None` when it is not recorded.
pub(crate) fn task_record(job: &JobRecord, max_chars: usize) -> Option<MemoryPut> {
    let worker_task = matches!(job.kind, TaskKind::Worker | TaskKind::Auto);
    // A worker job that belongs to a run is one of its steps.
    let from_workflow = job.run_id.is_some();
    let ended = matches!(job.status, JobStatus::Succeeded | JobStatus::Failed);
    if !worker_task || from_workflow || !ended || job.worker_id == MEMORY_PROFILE {
        return None;
    }
    let files = &job.progress.files_touched;
    let outcome = outcome_line(
        job.status,
        job.error.as_deref(),
        job.response_text.as_deref(),
    );
    Some(MemoryPut {
        // Whatever `memory.scope` says: a task's text and answer belong to its project.
        scope: Some(MemoryScope::Project),
        kind: Some("task".to_owned()),
        key: Some(format!("task:{}", job.id)),
        title: Some(clip(
            &format!("{}: {}", job.worker_id, job.message),
            TITLE_CHARS,
        )),
        body: compose(&job.message, &outcome, files, &usage_line(job), max_chars),
        tags: vec![
            orchestra_memory::AUTOMATIC_TAG.to_owned(),
            job.worker_id.clone(),
            job.status.as_str().to_owned(),
        ],
        entities: MemoryEntities {
            files: files.iter().take(MAX_FILES).cloned().collect(),
            symbols: Vec::new(),
        },
        provenance: MemoryProvenance {
            task_id: Some(job.id.clone()),
            worker: Some(job.worker_id.clone()),
            model: job.model.clone(),
            producer: Some(orchestra_memory::AUTOMATIC_PRODUCER.to_owned()),
            ..MemoryProvenance::default()
        },
        ..MemoryPut::default()
    })
}

/// The record of a workflow run that ended (not paused), from the store.
fn run_record(store: &Store, job: &JobRecord, max_chars: usize) -> Option<MemoryPut> {
    let run_id = job.run_id.as_deref()?;
    let run = match store.get_run(run_id) {
        Ok(Some(run)) => run,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(run = %run_id, error = %err, "reading a workflow run for its memory record failed");
            return None;
        }
    };
    let ended = matches!(
        run.status,
        WorkflowRunStatus::Success | WorkflowRunStatus::Error
    );
    if !ended || run.workflow_id == MEMORY_WORKFLOW {
        return None;
    }
    let files = run_files(store, &run);
    let steps: Vec<String> = run
        .steps
        .iter()
        .map(|step| {
            let status = match step.status {
                WorkflowStepStatus::Success => "ok",
                WorkflowStepStatus::Error => "failed",
                WorkflowStepStatus::Pending => "not run",
                WorkflowStepStatus::Running => "interrupted",
            };
            format!("{} ({}) {status}", step.id, step.worker_id)
        })
        .collect();
    let status = match run.status {
        WorkflowRunStatus::Success => JobStatus::Succeeded,
        WorkflowRunStatus::Error | WorkflowRunStatus::Paused | WorkflowRunStatus::Running => {
            JobStatus::Failed
        }
    };
    let outcome = outcome_line(
        status,
        run.reason.as_deref().or(job.error.as_deref()),
        job.response_text.as_deref(),
    );
    let mut usage = usage_line(job);
    usage.insert_str(0, &format!("Steps: {}\n", steps.join("; ")));
    Some(MemoryPut {
        scope: Some(MemoryScope::Project),
        kind: Some("workflow".to_owned()),
        key: Some(format!("run:{}", run.run_id)),
        title: Some(clip(
            &format!("workflow {}: {}", run.workflow_id, run.task),
            TITLE_CHARS,
        )),
        body: compose(&run.task, &outcome, &files, &usage, max_chars),
        tags: vec![
            orchestra_memory::AUTOMATIC_TAG.to_owned(),
            format!("workflow:{}", run.workflow_id),
            status.as_str().to_owned(),
        ],
        entities: MemoryEntities {
            files: files.into_iter().take(MAX_FILES).collect(),
            symbols: Vec::new(),
        },
        provenance: MemoryProvenance {
            task_id: Some(job.id.clone()),
            run_id: Some(run.run_id.clone()),
            model: job.model.clone(),
            producer: Some(orchestra_memory::AUTOMATIC_PRODUCER.to_owned()),
            ..MemoryProvenance::default()
        },
        ..MemoryPut::default()
    })
}

/// Files the run's steps touched, in step order, without repeats.
fn run_files(store: &Store, run: &WorkflowRun) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for task in run.steps.iter().filter_map(|s| s.task_id.as_deref()) {
        if let Ok(Some(step)) = store.get_job(task) {
            for file in step.progress.files_touched {
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
    }
    files
}

fn outcome_line(status: JobStatus, error: Option<&str>, response: Option<&str>) -> String {
    match status {
        JobStatus::Succeeded => format!("succeeded — {}", response.unwrap_or("")),
        JobStatus::Failed | JobStatus::Canceled | JobStatus::Running => {
            format!(
                "{} — {}",
                status.as_str(),
                error.unwrap_or("no reason given")
            )
        }
    }
}

fn usage_line(job: &JobRecord) -> String {
    let usage = &job.usage;
    format!(
        "Model: {} · tokens {} in, {} out, {} reasoning · cost {:.4}",
        job.model.as_deref().unwrap_or("unknown"),
        usage.input,
        usage.output,
        usage.reasoning,
        usage.cost
    )
}

/// The body: the fixed lines whole, the ask and the outcome cut to share what is left of
/// `max_chars` (the engine refuses a longer body, and a record is never cut by it).
fn compose(asked: &str, outcome: &str, files: &[String], usage: &str, max_chars: usize) -> String {
    let mut fixed = String::new();
    if !files.is_empty() {
        let shown: Vec<&str> = files
            .iter()
            .take(FILES_IN_BODY)
            .map(String::as_str)
            .collect();
        let more = files.len().saturating_sub(FILES_IN_BODY);
        fixed.push_str(&format!("Files: {}", shown.join(", ")));
        if more > 0 {
            fixed.push_str(&format!(" (+{more} more)"));
        }
        fixed.push('\n');
    }
    fixed.push_str(usage);
    let labels = "Asked: \nOutcome: \n\n";
    let room = max_chars
        .saturating_sub(fixed.chars().count())
        .saturating_sub(labels.chars().count());
    // The ask gets up to a third; the outcome what is left.
    let asked = clip(asked, (room / 3).max(1));
    let outcome = clip(outcome, room.saturating_sub(asked.chars().count()).max(1));
    let body = format!("Asked: {asked}\nOutcome: {outcome}\n{fixed}");
    clip_lines(&body, max_chars)
}

/// One line of at most `max` characters (whitespace collapsed), `…` where it was cut.
fn clip(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The text cut to `max` characters on a character boundary (a last resort when the fixed
/// lines alone exceed the cap).
fn clip_lines(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(kind: TaskKind, status: JobStatus) -> JobRecord {
        let mut job = JobRecord::start("j1".into(), "coder".into(), "fix ".repeat(900), kind, "h");
        job.status = status;
        job.response_text = Some("done ".repeat(900));
        job.progress.files_touched = (0..30).map(|i| format!("src/f{i}.rs")).collect();
        job.model = Some("fake/fake-model".into());
        job
    }

    #[test]
    fn a_task_record_fits_the_body_cap_and_keeps_its_files() {
        let put = task_record(&job(TaskKind::Worker, JobStatus::Succeeded), 500).unwrap();
        // Whatever `memory.scope` says, a task's record stays in its project.
        assert_eq!(put.scope, Some(MemoryScope::Project));
        assert!(
            put.body.chars().count() <= 500,
            "{}",
            put.body.chars().count()
        );
        assert!(put.body.contains("src/f0.rs") && put.body.contains("(+10 more)"));
        assert!(put.body.contains("fake/fake-model"));
        assert_eq!(put.entities.files.len(), 30);
        assert_eq!(put.key.as_deref(), Some("task:j1"));
        // Even a cap smaller than the fixed lines gives a body within it.
        let tiny = task_record(&job(TaskKind::Auto, JobStatus::Failed), 40).unwrap();
        assert!(tiny.body.chars().count() <= 40);
    }

    #[test]
    fn ops_cancels_steps_and_the_memory_worker_leave_no_record() {
        assert!(task_record(&job(TaskKind::Op, JobStatus::Succeeded), 500).is_none());
        assert!(task_record(&job(TaskKind::Worker, JobStatus::Canceled), 500).is_none());
        let mut step = job(TaskKind::Worker, JobStatus::Succeeded);
        step.run_id = Some("r1".into());
        assert!(task_record(&step, 500).is_none());
        let mut memory = job(TaskKind::Worker, JobStatus::Succeeded);
        memory.worker_id = MEMORY_PROFILE.into();
        assert!(task_record(&memory, 500).is_none());
    }
}
