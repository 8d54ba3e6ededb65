//! The hub's one event stream: every change the core makes, as a typed event with a
//! monotonically increasing id. The CLI's live progress, `task_await`, the HTTP SSE stream and
//! the control panel all render these same events.
//!
//! On the wire an event keeps the original's envelope — `{version, id, type, timestamp, data}`
//! with `orchestra.*` types — but `id` is a number that only grows, so a client that reconnects
//! with `Last-Event-ID` gets exactly the events it missed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    JobProgress, JobRecord, TokenUsage, WorkerSnapshot, WorkflowRunStatus, WorkflowStepResult,
};

pub const EVENT_VERSION: u32 = 1;

/// One event as stored, replayed and streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HubEvent {
    pub version: u32,
    /// Unique and increasing within a project's store; never reused.
    pub id: u64,
    /// Unix milliseconds.
    pub timestamp: i64,
    #[serde(flatten)]
    pub body: EventBody,
}

impl HubEvent {
    /// The job an event is about, if any: what per-task filters and the store index use.
    pub fn job_id(&self) -> Option<&str> {
        self.body.job_id()
    }
}

/// What happened. The `type` of each variant is its `orchestra.*` name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum EventBody {
    /// A job was accepted and recorded; `job` is its first record.
    #[serde(rename = "orchestra.job.started")]
    JobStarted { job: Box<JobRecord> },
    /// A running job's progress changed (session, model, tool calls, retries, usage).
    #[serde(rename = "orchestra.job.updated")]
    JobUpdated(JobUpdate),
    /// Text the worker's model streamed for a job.
    #[serde(rename = "orchestra.job.delta")]
    JobDelta {
        #[serde(rename = "jobId")]
        job_id: String,
        text: String,
    },
    /// A tool call of the worker started, finished or failed.
    #[serde(rename = "orchestra.job.tool")]
    JobTool(ToolCallEvent),
    /// OpenCode asked a permission question for a job's session.
    #[serde(rename = "orchestra.permission.asked")]
    PermissionAsked(PermissionQuestion),
    /// A permission question was answered (by a profile rule, a person or a timeout).
    #[serde(rename = "orchestra.permission.answered")]
    PermissionAnswered(PermissionReplyEvent),
    /// A job reached a final status; `job` is its final record.
    #[serde(rename = "orchestra.job.finished")]
    JobFinished { job: Box<JobRecord> },
    /// A worker's state changed.
    #[serde(rename = "orchestra.worker.status")]
    WorkerStatus { worker: Box<WorkerSnapshot> },
    /// A workflow step (or group member) started or finished.
    #[serde(rename = "orchestra.workflow.step")]
    WorkflowStep(WorkflowStepEvent),
    /// A workflow run started, paused, resumed or ended.
    #[serde(rename = "orchestra.workflow.run")]
    WorkflowRun(WorkflowRunEvent),
    /// A memory record was written (put, update, supersede, retract, delete).
    #[serde(rename = "orchestra.memory.written")]
    MemoryWritten(MemoryWrittenEvent),
    /// A line of the hub's log that a person may want to see.
    #[serde(rename = "orchestra.log")]
    Log(LogEvent),
    /// An OpenCode session is idle and a task it started finished or needs an answer
    /// (`notifications.idle`).
    #[serde(rename = "orchestra.notification")]
    Notification(SessionNotification),
    /// A task has used 80 % of one dimension of its budget.
    #[serde(rename = "orchestra.budget.warning")]
    BudgetWarning(crate::BudgetWarning),
    /// A task or a workflow run reached a cap of its budget.
    #[serde(rename = "orchestra.budget.exceeded")]
    BudgetExceeded(crate::BudgetExceeded),
    /// A `worktree.merge` was refused: the branch conflicts with its base.
    #[serde(rename = "orchestra.merge.conflict")]
    MergeConflict(crate::MergeConflict),
}

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::JobStarted { .. } => "orchestra.job.started",
            EventBody::JobUpdated(_) => "orchestra.job.updated",
            EventBody::JobDelta { .. } => "orchestra.job.delta",
            EventBody::JobTool(_) => "orchestra.job.tool",
            EventBody::PermissionAsked(_) => "orchestra.permission.asked",
            EventBody::PermissionAnswered(_) => "orchestra.permission.answered",
            EventBody::JobFinished { .. } => "orchestra.job.finished",
            EventBody::WorkerStatus { .. } => "orchestra.worker.status",
            EventBody::WorkflowStep(_) => "orchestra.workflow.step",
            EventBody::WorkflowRun(_) => "orchestra.workflow.run",
            EventBody::MemoryWritten(_) => "orchestra.memory.written",
            EventBody::Log(_) => "orchestra.log",
            EventBody::Notification(_) => "orchestra.notification",
            EventBody::BudgetWarning(_) => "orchestra.budget.warning",
            EventBody::BudgetExceeded(_) => "orchestra.budget.exceeded",
            EventBody::MergeConflict(_) => "orchestra.merge.conflict",
        }
    }

    pub fn job_id(&self) -> Option<&str> {
        match self {
            EventBody::JobStarted { job } | EventBody::JobFinished { job } => Some(&job.id),
            EventBody::JobUpdated(update) => Some(&update.job_id),
            EventBody::JobDelta { job_id, .. } => Some(job_id),
            EventBody::JobTool(tool) => Some(&tool.job_id),
            EventBody::PermissionAsked(question) => Some(&question.job_id),
            EventBody::PermissionAnswered(reply) => Some(&reply.job_id),
            EventBody::WorkflowStep(step) => Some(&step.job_id),
            EventBody::WorkflowRun(run) => Some(&run.job_id),
            EventBody::Log(log) => log.job_id.as_deref(),
            EventBody::Notification(note) => note.job_ids.first().map(String::as_str),
            EventBody::MemoryWritten(written) => written.task_id.as_deref(),
            EventBody::BudgetWarning(warning) => Some(&warning.job_id),
            EventBody::BudgetExceeded(exceeded) => Some(&exceeded.task_id),
            EventBody::MergeConflict(conflict) => Some(&conflict.task_id),
            EventBody::WorkerStatus { .. } => None,
        }
    }
}

/// The part of a running job's record that changes while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobUpdate {
    pub job_id: String,
    pub worker_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_reason: Option<String>,
    pub progress: JobProgress,
    pub usage: TokenUsage,
}

impl JobUpdate {
    pub fn of(job: &JobRecord) -> JobUpdate {
        JobUpdate {
            job_id: job.id.clone(),
            worker_id: job.worker_id.clone(),
            session_id: job.session_id.clone(),
            model: job.model.clone(),
            model_reason: job.model_reason.clone(),
            progress: job.progress.clone(),
            usage: job.usage,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallEvent {
    pub job_id: String,
    pub call_id: String,
    pub tool: String,
    /// `pending`, `running`, `completed` or `error`, as OpenCode reports it.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A permission question waiting for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionQuestion {
    pub job_id: String,
    pub worker_id: String,
    /// OpenCode's id for the question; the answer is sent for it.
    pub request_id: String,
    pub session_id: String,
    pub permission: String,
    pub patterns: Vec<String>,
    pub asked_at: i64,
    /// When the hub answers `reject` on its own if nobody has answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionReplyEvent {
    pub job_id: String,
    pub request_id: String,
    /// `once`, `always` or `reject`.
    pub reply: String,
    /// `profile` (the profile's onPermissionAsk), `person`, `timeout`, or `ended` (the task
    /// ended before anyone answered; OpenCode drops the question with the session's turn).
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepEvent {
    pub run_id: String,
    /// The workflow job the run belongs to.
    pub job_id: String,
    pub workflow_id: String,
    pub index: usize,
    pub step: WorkflowStepResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunEvent {
    pub run_id: String,
    pub job_id: String,
    pub workflow_id: String,
    pub status: WorkflowRunStatus,
    pub current_step_index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub usage: TokenUsage,
}

/// A memory record was written: which one, and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryWrittenEvent {
    pub record_id: String,
    pub scope: crate::memory::MemoryScope,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    /// `created`, `updated`, `retracted` or `deleted`.
    pub outcome: String,
    /// Records this one replaced (now `superseded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<String>,
    /// The task that wrote it (an op's job, or the task an automatic record is about).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    /// `error`, `warn`, `info` or `debug`.
    pub level: String,
    pub message: String,
    /// Where the line comes from: the Rust module (`orchestra_core::workers`), or `opencode`
    /// for a line a worker's OpenCode server printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
}

/// Why a session's idle notification fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationReason {
    /// Tasks the session started finished (their results were delivered into it).
    Finished,
    /// A task the session started waits for an answer to a permission question.
    Input,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionNotification {
    /// The OpenCode session (of the main agent) that is idle.
    pub session_id: String,
    pub reason: NotificationReason,
    /// `notifications.idle.title`.
    pub title: String,
    /// `notifications.idle.message`, then what happened.
    pub message: String,
    pub job_ids: Vec<String>,
}

impl LogEvent {
    /// A line at `level` about no task or worker in particular.
    pub fn new(level: &str, message: impl Into<String>) -> LogEvent {
        LogEvent {
            level: level.to_owned(),
            message: message.into(),
            target: None,
            job_id: None,
            worker_id: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_keeps_the_originals_shape() {
        let event = HubEvent {
            version: EVENT_VERSION,
            id: 7,
            timestamp: 1,
            body: EventBody::JobDelta {
                job_id: "j1".into(),
                text: "hi".into(),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "id": 7, "timestamp": 1,
                "type": "orchestra.job.delta", "data": {"jobId": "j1", "text": "hi"}})
        );
        let back: HubEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.body.type_name(), "orchestra.job.delta");
    }
}
