//! `workflows.triggers.memoryOnTurnEnd`: after a worker task of a non-memory profile
//! succeeds, distil it into memory with the `memory` workflow (or the one the trigger names).
//!
//! Off by default (`memory.autoRecord` already keeps a record of every task without an LLM
//! call). As in the original (§5.6, §6.3 of the reference), a triggered run reports to a
//! *memory task*: the trigger opens that job, puts its id in the run's task text, and the
//! memory worker completes it with `memory.done`; a run that ends without it settles the task
//! as the run ended. The turn's text is stripped of code blocks, redacted and cut to
//! `memory.maxChars`; the run may spend at most `maxTokens` (its `maxRunTokens`, which also
//! stops a step that would spend past it) and never pauses (`intervene: never`).
//!
//! Not triggered by: workflow steps (a run is not a turn), ops, the memory profile's own
//! tasks, failed or canceled tasks.

use std::time::Duration;

use orchestra_protocol::{EventBody, JobRecord, JobStatus, TaskKind, WorkflowRunUi};
use tokio_util::sync::CancellationToken;

use super::{WorkflowRequest, Workflows, ui_name};
use crate::config::WorkflowIntervene;
use crate::memory::{HubMemory, MEMORY_PROFILE, MemoryTaskOutcome};

/// Who a triggered run's jobs say asked for them.
pub const TRIGGER_REQUESTER: &str = "trigger:memoryOnTurnEnd";

/// The trigger's task; [`Triggers::stop`] ends it (no new runs start after that).
pub struct Triggers {
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Triggers {
    /// Starts following finished jobs when `memoryOnTurnEnd` is on (and memory is).
    pub fn spawn(flows: &Workflows) -> Option<Triggers> {
        let trigger = &flows.config.workflows.triggers.memory_on_turn_end;
        let memory = flows.memory.clone()?;
        if !trigger.enabled || !flows.config.workflows.enabled {
            return None;
        }
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let flows = flows.clone();
        let mut events = flows.runtime.bus().subscribe(None);
        let done = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.next() => event,
                    () = stopping.cancelled() => return,
                };
                let Some(event) = event else { return };
                if let EventBody::JobFinished { job } = &event.body
                    && is_turn(job)
                {
                    start_memory_run(&flows, &memory, job);
                }
            }
        });
        Some(Triggers { stop, done })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(2), self.done)
            .await
            .is_err()
        {
            tracing::warn!("the memoryOnTurnEnd trigger did not stop in time");
        }
    }
}

/// A finished worker task that a memory run should distil.
fn is_turn(job: &JobRecord) -> bool {
    let worker_task = matches!(job.kind, TaskKind::Worker | TaskKind::Auto);
    // A worker job that belongs to a run is one of its steps.
    let from_workflow = job.run_id.is_some();
    worker_task
        && !from_workflow
        && job.status == JobStatus::Succeeded
        && job.worker_id != MEMORY_PROFILE
}

/// Opens the memory task and starts its run; a watcher settles the task when the run ends.
fn start_memory_run(flows: &Workflows, memory: &HubMemory, turn: &JobRecord) {
    let trigger = &flows.config.workflows.triggers.memory_on_turn_end;
    let definition = match flows.catalog().find(&trigger.workflow_id) {
        Ok(entry) => {
            let mut definition = entry.definition.clone();
            let own = definition.limits.max_run_tokens.unwrap_or(u64::MAX);
            definition.limits.max_run_tokens = Some(own.min(trigger.max_tokens));
            definition
        }
        Err(err) => {
            tracing::warn!(error = %err, "memoryOnTurnEnd: the workflow cannot run");
            return;
        }
    };
    let opened = memory.open_task(
        &flows.runtime,
        format!("memory of task {} ({})", turn.id, turn.worker_id),
        Some(TRIGGER_REQUESTER.to_owned()),
    );
    let (task_id, canceled) = match opened {
        Ok(Some(opened)) => opened,
        Ok(None) => {
            tracing::warn!(
                task = %turn.id,
                "memoryOnTurnEnd: 200 memory tasks are still waiting for memory.done; this task is not distilled"
            );
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "memoryOnTurnEnd: the memory task could not be recorded");
            return;
        }
    };
    let request = WorkflowRequest {
        workflow_id: Some(definition.id.clone()),
        continue_run_id: None,
        task: turn_payload(&task_id, turn, memory.settings().max_body_chars),
        attachments: Vec::new(),
        auto_spawn: Some(trigger.auto_spawn),
        caller_session_id: None,
        // Already lowered in the definition above.
        max_run_tokens: None,
        // The memory worker writes records, not files.
        workspace: Some(orchestra_protocol::WorkspaceMode::Checkout),
        worktrees: None,
        budget: None,
    };
    // A failed memory run ends; it never waits paused for a person.
    let ui = WorkflowRunUi {
        execution: ui_name(flows.config.workflows.ui.execution),
        intervene: ui_name(WorkflowIntervene::Never),
    };
    let started = flows.begin(definition, request, ui, Some(TRIGGER_REQUESTER.to_owned()));
    let runtime = flows.runtime.clone();
    let memory = memory.clone();
    let watched = task_id.clone();
    runtime.clone().spawn(task_id.clone(), async move {
        let run = match started {
            Ok(started) => {
                let waited = tokio::select! {
                    record = runtime.wait_final(&started.job_id) => record,
                    () = canceled.cancelled() => {
                        runtime.cancel(&started.job_id, "its memory task was canceled");
                        runtime.wait_final(&started.job_id).await
                    }
                };
                match waited {
                    Ok(record) => record,
                    Err(err) => failed_run(&watched, err.to_string()),
                }
            }
            Err(err) => failed_run(&watched, err.to_string()),
        };
        memory.settle_task(&watched, &MemoryTaskOutcome { run: &run });
    });
}

/// A stand-in record for a run that could not start or be read.
fn failed_run(task_id: &str, error: String) -> JobRecord {
    let mut record = JobRecord::start(
        task_id.to_owned(),
        format!("workflow:{}", super::builtin::MEMORY_ID),
        String::new(),
        TaskKind::Workflow,
        "",
    );
    record.status = JobStatus::Failed;
    record.error = Some(format!("the memory run could not run: {error}"));
    record
}

/// The run's task text: the memory task to report to, then the turn — stripped of code
/// blocks, redacted, whitespace collapsed, each part cut so the turn fits `max_chars`.
fn turn_payload(task_id: &str, turn: &JobRecord, max_chars: usize) -> String {
    let clean = |text: &str| {
        let (text, _) = orchestra_memory::redact(&strip_code_blocks(text));
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let asked = clean(&turn.message);
    let answer = clean(turn.response_text.as_deref().unwrap_or(""));
    let files = turn.progress.files_touched.join(", ");
    let room = max_chars.saturating_sub(files.chars().count());
    let asked = cut(&asked, (room / 3).max(1));
    let answer = cut(&answer, room.saturating_sub(asked.chars().count()).max(1));
    let mut text = format!(
        "memory task: {task_id}\n\
         When you have recorded what is worth keeping, call memory.done with \
         {{\"taskId\": \"{task_id}\", \"summary\": …, \"storedKeys\": […], \"linkedKeys\": […]}}.\n\n\
         Turn: task {} on worker `{}`{}\n\
         Asked: {asked}\n\
         Answer: {answer}\n",
        turn.id,
        turn.worker_id,
        turn.model
            .as_deref()
            .map(|m| format!(", model {m}"))
            .unwrap_or_default(),
    );
    if !files.is_empty() {
        text.push_str(&format!("Files touched: {files}\n"));
    }
    text
}

/// Text outside fenced code blocks (a fence left open drops the rest, as the original did).
fn strip_code_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            if inside {
                out.push_str("[code]\n");
            }
            continue;
        }
        if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn turn() -> JobRecord {
        let mut job = JobRecord::start(
            "t1".into(),
            "coder".into(),
            "fix the pool ".repeat(400),
            TaskKind::Worker,
            "h",
        );
        job.status = JobStatus::Succeeded;
        job.response_text = Some(format!(
            "done\n```rust\nlet key = \"x\";\n```\ntoken: sk-abcdefghijklmnopqrstuvwxyz0123 {}",
            "more ".repeat(500)
        ));
        job
    }

    #[test]
    fn the_payload_names_the_task_and_keeps_the_turn_within_the_cap() {
        let text = turn_payload("m1", &turn(), 600);
        assert!(text.starts_with("memory task: m1\n"), "{text}");
        assert!(text.contains("\"taskId\": \"m1\""));
        assert!(
            !text.contains("let key"),
            "code blocks are left out: {text}"
        );
        assert!(!text.contains("sk-abcdef"), "secrets are redacted: {text}");
        let turn_part = text.split("Asked: ").nth(1).unwrap();
        assert!(turn_part.chars().count() <= 600 + 20, "{}", turn_part.len());
    }

    #[test]
    fn only_successful_tasks_of_other_profiles_are_turns() {
        let mut job = turn();
        assert!(is_turn(&job));
        job.worker_id = MEMORY_PROFILE.into();
        assert!(!is_turn(&job));
        let mut step = turn();
        step.run_id = Some("r".into());
        assert!(!is_turn(&step));
        let mut failed = turn();
        failed.status = JobStatus::Failed;
        assert!(!is_turn(&failed));
        let mut op = turn();
        op.kind = TaskKind::Op;
        assert!(!is_turn(&op));
    }
}
