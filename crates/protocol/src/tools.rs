//! Parameters of the five task tools. Names, argument names and enum values
//! are the original's (see the README), so prompts written for it keep working.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::TaskKind;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelPolicy {
    /// The model applies to this task only.
    #[default]
    Dynamic,
    /// The model becomes the worker's model for later tasks too.
    Sticky,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OpKind {
    #[serde(rename = "memory.put")]
    MemoryPut,
    #[serde(rename = "memory.link")]
    MemoryLink,
    #[serde(rename = "memory.done")]
    MemoryDone,
    #[serde(rename = "memory.search")]
    MemorySearch,
    #[serde(rename = "memory.get")]
    MemoryGet,
    #[serde(rename = "memory.forget")]
    MemoryForget,
    #[serde(rename = "worker.model.set")]
    WorkerModelSet,
    #[serde(rename = "worker.model.reset")]
    WorkerModelReset,
    /// The calling OpenCode chat sends every message to `worker.workerId` and gets only its
    /// answer, until the user says `back` or `exit passthrough` (the original's
    /// `setPassthrough`).
    #[serde(rename = "passthrough.set")]
    PassthroughSet,
    /// Ends the calling chat's passthrough (the original's `clearPassthrough`).
    #[serde(rename = "passthrough.clear")]
    PassthroughClear,
    #[serde(rename = "worktree.diff")]
    WorktreeDiff,
    #[serde(rename = "worktree.merge")]
    WorktreeMerge,
    #[serde(rename = "worktree.discard")]
    WorktreeDiscard,
}

impl OpKind {
    /// The memory op this is, or `None` for the worker-model ops.
    pub fn memory_op(self) -> Option<crate::memory::MemoryOp> {
        use crate::memory::MemoryOp;
        match self {
            OpKind::MemoryPut => Some(MemoryOp::Put),
            OpKind::MemoryLink => Some(MemoryOp::Link),
            OpKind::MemoryDone => Some(MemoryOp::Done),
            OpKind::MemorySearch => Some(MemoryOp::Search),
            OpKind::MemoryGet => Some(MemoryOp::Get),
            OpKind::MemoryForget => Some(MemoryOp::Forget),
            OpKind::WorkerModelSet
            | OpKind::WorkerModelReset
            | OpKind::PassthroughSet
            | OpKind::PassthroughClear
            | OpKind::WorktreeDiff
            | OpKind::WorktreeMerge
            | OpKind::WorktreeDiscard => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::MemoryPut => "memory.put",
            OpKind::MemoryLink => "memory.link",
            OpKind::MemoryDone => "memory.done",
            OpKind::MemorySearch => "memory.search",
            OpKind::MemoryGet => "memory.get",
            OpKind::MemoryForget => "memory.forget",
            OpKind::WorkerModelSet => "worker.model.set",
            OpKind::WorkerModelReset => "worker.model.reset",
            OpKind::PassthroughSet => "passthrough.set",
            OpKind::PassthroughClear => "passthrough.clear",
            OpKind::WorktreeDiff => "worktree.diff",
            OpKind::WorktreeMerge => "worktree.merge",
            OpKind::WorktreeDiscard => "worktree.discard",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentType {
    Image,
    File,
}

/// A file handed to the worker, by path (inside the project) or inline base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: AttachmentType,
    /// A path inside the project directory (absolute or relative to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Inline content; a `data:<mime>;base64,` prefix is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// MIME type; guessed from the file name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// Payload of the `memory.*` operations. The original's fields (`taskId`, `scope`, `key`,
/// `value`, `tags`, `fromKey`, `toKey`, `relation`, `summary`, `storedKeys`, `linkedKeys`,
/// `notes`) keep their meaning; `value` is the record's body. The rest are ours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPayload {
    /// The memory task this op reports to (`memory.done`), or the task that produced the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// `project` or `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `memory.put`: the natural key (a put with the same scope and key updates the record);
    /// `memory.get` / `memory.forget`: the record to act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `memory.put`: the record's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `memory.link`: key or id of the source record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    /// `memory.link`: key or id of the target record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_key: Option<String>,
    /// `memory.link`: the link type (default `relates_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// `memory.done`: what the memory task recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_keys: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// `memory.put`: decision, convention, fact (default), bug, fix, todo, summary, artifact,
    /// preference, error, observation, or your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `memory.put`: files and symbols the record is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<crate::memory::MemoryEntities>,
    /// `memory.put`: id or key of the record this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    /// `memory.put`: pin the record into every worker's memory block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    /// `memory.search`: words, identifiers, file paths or error strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `memory.search`: at most this many hits (default 10, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `memory.search` / `memory.get`: stop before the answer exceeds this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// `memory.search`: `nextCursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// `memory.search`: `index` (default), `summary` or `full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<crate::memory::MemoryDetail>,
    /// `memory.forget`: `retract` (default; hidden, kept for the audit trail) or `delete`
    /// (removed, and scrubbed from the change log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::memory::ForgetMode>,
    /// `memory.get` / `memory.forget`: the record's id (instead of `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Payload of the `worker.model.*` operations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerOpPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_policy: Option<ModelPolicy>,
    #[serde(default)]
    pub respawn: bool,
}

/// `task_start`: start work in the background and return a task id at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskStartParams {
    /// `auto` (default) picks a worker from the task; `worker` needs `workerId`;
    /// `workflow` needs `workflowId` or `continueRunId`; `op` needs `op`.
    #[serde(default)]
    pub kind: TaskKind,
    /// The prompt for the worker (for `op`, a short label; the op's name when left out).
    #[serde(default)]
    pub task: String,
    /// The worker profile id for `kind: "worker"` (e.g. `coder`, `architect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// Model for this task: a tag (`auto:fast`, `node:vision`) or `provider/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_policy: Option<ModelPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Resume a paused workflow run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerOpPayload>,
    /// `worktree` (a git worktree of the task's own) or `checkout` (the project directory).
    /// Default: `worktree` for a worker that may edit, in a git repository with a commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::WorkspaceMode>,
    /// `worktree.diff` / `worktree.merge` / `worktree.discard`: the task whose worktree to act
    /// on; on a worker task: run inside that task's existing worktree (a follow-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::WorktreePayload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Start the worker if it is not running (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_spawn: Option<bool>,
    /// How long the task may run before it is aborted (default 600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The worker this message comes from, for worker-to-worker messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Set by Orchestra's OpenCode plugin, not by the model: the OpenCode session that starts
    /// the task. Its result is delivered into that session, and while it runs the session's
    /// system prompt names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_session_id: Option<String>,
    /// Caps on tokens, cost, model steps and time; over the profile's own `budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::TaskBudget>,
    /// Repeat in the same session until a configured check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<crate::UntilCheck>,
    /// Continue a finished worker task in its own session (with `task` as the next prompt),
    /// e.g. one its budget stopped, with a raised `budget`. Its spend carries over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_task_id: Option<String>,
}

/// The immediate answer of `task_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStartResult {
    pub task_id: String,
    pub kind: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_reason: Option<String>,
    pub status: crate::JobStatus,
    /// Always `task_await`: the tool to call next.
    pub next: String,
}

/// `task_await`: wait (bounded) for one or more tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskAwaitParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_ids: Vec<String>,
    /// Wait at most this long; capped by the hub's `tasks.awaitCapMs` (at most
    /// 45 s) so a call never outlives an MCP client's request timeout. A task
    /// still running then is returned with `status: "running"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `task_peek`: current records without waiting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskPeekParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListView {
    #[default]
    Tasks,
    Workers,
    Profiles,
    Models,
    Workflows,
    /// One workflow run, named by `runId`.
    Workflow,
    Status,
    Output,
    /// Project and global memory: a ranked search (`query`; empty lists the newest records),
    /// bounded by `limit` and `budgetTokens`, paged with `cursor`.
    Memory,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    #[default]
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelScope {
    #[default]
    Configured,
    All,
}

/// `task_list`'s `scope`: `configured` or `all` for the models view, `project` or `global` for
/// the memory view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListScope {
    /// Models view: the models of configured providers (default).
    Configured,
    /// Models view: every model OpenCode knows.
    All,
    /// Memory view: this project's records only.
    Project,
    /// Memory view: global records only.
    Global,
}

impl ListScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ListScope::Configured => "configured",
            ListScope::All => "all",
            ListScope::Project => "project",
            ListScope::Global => "global",
        }
    }
}

/// `task_list`: tasks, workers, profiles, models, workflows, one workflow run, status, output or
/// memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskListParams {
    #[serde(default)]
    pub view: ListView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// Rows to return (default 20; 100 for the models view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Output view only: entries after this unix-ms time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// `configured` (default) or `all` for the models view; `project` or `global` (default:
    /// both) for the memory view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ListScope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ListFormat>,
    /// `workflow` view: the run to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `memory` view: stop before the page exceeds this many tokens (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// `memory` view: `nextCursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `task_cancel`: abort tasks; the worker's model really stops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskCancelParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The ids named by `taskId` and `taskIds` together, without duplicates.
pub fn collect_ids(task_id: &Option<String>, task_ids: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in task_id.iter().chain(task_ids.iter()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}
