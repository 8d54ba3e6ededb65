//! Wire types of Open Orchestra.
//!
//! Everything another process can see goes through these types: the MCP tool
//! parameters and results, job records as stored and returned, worker
//! snapshots, and the event envelope. They are serde-only so that every front
//! end (MCP, CLI, control panel) renders exactly the same shapes.
//!
//! Naming follows the original system so prompts written for it keep working:
//! camelCase fields, string ids, timestamps in unix milliseconds named `*At`.
//!
//! # Layout
//! - [`job`]: job records, statuses, progress, token usage.
//! - [`memory`]: memory records, links, searches, pages, the context block.
//! - [`tools`]: parameters of the five task tools and their enums.
//! - [`worker`]: worker snapshots and states.
//! - [`event`]: the hub's event stream (`orchestra.*` events with increasing ids).
//! - [`workflow`]: workflow runs and their steps.
//! - [`budget`]: task budgets, their spend and stops, done-checks and their results.
//! - [`api`]: the hub's HTTP API shapes (health, tool replies, errors, login links).
//! - [`worktree`]: `workspace`, a task's git worktree and the `worktree.*` ops' payload.
//! - [`hooks`]: what Orchestra's OpenCode plugin sends to the hub's hook routes and gets back.

pub mod api;
pub mod budget;
pub mod event;
pub mod fallback;
pub mod hooks;
pub mod job;
pub mod memory;
pub mod notify;
pub mod tools;
pub mod worker;
pub mod workflow;
pub mod worktree;

pub use api::{
    ApiError, ConfigFileView, ConfigKeyView, ConfigView, ErrorKind, HubHealth, LogLine, LoginLink,
    LogsPage, LogsQuery, ProfileView, QuestionAnswer, QuestionReply, ToolReply, WorkflowStepView,
    WorkflowView,
};
pub use budget::{
    BudgetDimension, BudgetExceeded, BudgetScope, BudgetSpend, BudgetStop, BudgetWarning,
    CheckResult, TaskBudget, UntilCheck,
};
pub use event::{
    EVENT_VERSION, EventBody, HubEvent, JobUpdate, LogEvent, MemoryWrittenEvent,
    NotificationReason, PermissionQuestion, PermissionReplyEvent, SessionNotification,
    ToolCallEvent, WorkflowRunEvent, WorkflowStepEvent,
};
pub use fallback::ModelFallback;
pub use job::{
    AttachmentSummary, JobProgress, JobRecord, JobReport, JobStatus, PermissionAnswer,
    RouteDecision, TaskKind, TokenUsage,
};
pub use notify::{DeliveryStatus, NotifyDelivery};
pub use tools::{
    Attachment, AttachmentType, ListFormat, ListScope, ListView, MemoryPayload, ModelPolicy,
    ModelScope, OpKind, TaskAwaitParams, TaskCancelParams, TaskListParams, TaskPeekParams,
    TaskStartParams, TaskStartResult, WorkerOpPayload,
};
pub use worker::{WorkerSnapshot, WorkerStatus};
pub use workflow::{
    WorkflowRun, WorkflowRunLimits, WorkflowRunStatus, WorkflowRunUi, WorkflowStepResult,
    WorkflowStepStatus,
};
pub use worktree::{
    MergeConflict, WorkspaceMode, WorktreeInfo, WorktreePayload, WorktreeSetup, WorktreeState,
};

/// Milliseconds since the unix epoch, the unit of every `*At` field.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
