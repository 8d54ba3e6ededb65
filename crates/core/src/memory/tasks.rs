//! Pending memory tasks, as in the original (§6.3 of the reference): a `memoryOnTurnEnd`
//! trigger opens a *memory task* job, runs the `memory` workflow with the task's id in its
//! text, and the memory worker reports with `memory.done {taskId, summary, storedKeys, …}`,
//! which completes that job. A run that ends without `memory.done` settles it by how the run
//! went, so no memory task stays `running`.

use std::collections::HashMap;

use orchestra_protocol::{JobRecord, JobReport, JobStatus, now_ms};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{HubMemory, HubMemoryError, MemoryDone};
use crate::jobs::{JobError, JobHandle, JobRuntime};

/// Memory tasks waiting for `memory.done` at most (the original's cap); a trigger finding
/// this many skips the turn, with a log line.
pub(super) const MAX_PENDING: usize = 200;

/// The job label of a memory task.
pub const MEMORY_TASK_LABEL: &str = "memory.task";

#[derive(Default)]
pub(super) struct Pending {
    tasks: HashMap<String, (JobHandle, JobRecord)>,
}

/// How the workflow run behind a memory task ended.
pub struct MemoryTaskOutcome<'a> {
    /// The workflow job's final record.
    pub run: &'a JobRecord,
}

impl HubMemory {
    /// Opens a memory task job and holds it until `memory.done` or [`HubMemory::settle_task`].
    /// Returns its id and its cancel token (canceled by `task_cancel` on it), or `None` when
    /// [`MAX_PENDING`] tasks are already waiting.
    pub fn open_task(
        &self,
        runtime: &JobRuntime,
        message: String,
        requested_by: Option<String>,
    ) -> Result<Option<(String, CancellationToken)>, JobError> {
        if self.pending().tasks.len() >= MAX_PENDING {
            return Ok(None);
        }
        let mut record = runtime.new_record(
            MEMORY_TASK_LABEL.to_owned(),
            message,
            orchestra_protocol::TaskKind::Op,
        );
        record.requested_by = requested_by;
        let id = record.id.clone();
        let handle = runtime.open(record.clone())?;
        let cancel = handle.cancelled().clone();
        self.pending().tasks.insert(id.clone(), (handle, record));
        Ok(Some((id, cancel)))
    }

    /// `memory.done`: completes the pending memory task it names with its summary and report.
    pub fn complete_task(&self, done: &MemoryDone) -> Result<JobRecord, HubMemoryError> {
        let Some((handle, mut record)) = self.pending().tasks.remove(&done.task_id) else {
            return Err(HubMemoryError::NoPendingTask {
                task_id: done.task_id.clone(),
            });
        };
        let stored = done.stored_keys.len();
        let linked = done.linked_keys.len();
        record.response_text = Some(done.summary.clone().unwrap_or_else(|| {
            format!("memory task done: {stored} record(s) stored, {linked} link(s)")
        }));
        record.report = Some(JobReport {
            summary: done.summary.clone(),
            details: Some(
                json!({"storedKeys": done.stored_keys, "linkedKeys": done.linked_keys}).to_string(),
            ),
            issues: Vec::new(),
            notes: done.notes.clone(),
        });
        record.finish(JobStatus::Succeeded, now_ms());
        handle.finish(&record);
        Ok(record)
    }

    /// The run behind a memory task ended: a task still pending (no `memory.done`) ends as
    /// the run did, or `canceled` when the task itself was canceled.
    pub fn settle_task(&self, task_id: &str, outcome: &MemoryTaskOutcome<'_>) {
        let Some((handle, mut record)) = self.pending().tasks.remove(task_id) else {
            return;
        };
        let run = outcome.run;
        if handle.cancelled().is_cancelled() {
            record.error = Some(handle.cancel_reason());
            record.finish(JobStatus::Canceled, now_ms());
        } else {
            record.response_text.clone_from(&run.response_text);
            record.error.clone_from(&run.error);
            record.usage = run.usage;
            record.model.clone_from(&run.model);
            record.report = Some(JobReport {
                summary: None,
                details: Some(json!({"workflowTaskId": run.id}).to_string()),
                issues: Vec::new(),
                notes: Some(
                    "the memory run ended without calling memory.done; its records (if any) are stored"
                        .to_owned(),
                ),
            });
            let status = match run.status {
                JobStatus::Running | JobStatus::Failed => JobStatus::Failed,
                JobStatus::Succeeded => JobStatus::Succeeded,
                JobStatus::Canceled => JobStatus::Canceled,
            };
            if status == JobStatus::Failed && record.error.is_none() {
                record.error = Some(format!(
                    "the memory workflow (task {}) ended {}",
                    run.id,
                    run.status.as_str()
                ));
            }
            record.finish(status, now_ms());
        }
        handle.finish(&record);
    }

    /// Memory tasks waiting for `memory.done`.
    pub fn pending_tasks(&self) -> usize {
        self.pending().tasks.len()
    }
}
