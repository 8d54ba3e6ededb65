//! Worktree tasks: where a task runs (`workspace`), the git worktree a task owns and what
//! happened to it (`JobRecord.worktree`), and the payload of the `worktree.*` ops.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a worker task edits files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceMode {
    /// A git worktree of its own, on branch `orchestra/<taskId>`, made from the checkout's
    /// current branch; the user's checkout is never touched.
    Worktree,
    /// The project directory itself, as before.
    Checkout,
}

impl WorkspaceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceMode::Worktree => "worktree",
            WorkspaceMode::Checkout => "checkout",
        }
    }
}

/// What became of a task's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorktreeState {
    /// The worktree and its branch exist and wait for a review.
    Open,
    /// Merged into `baseRef`; worktree and branch are gone.
    Merged,
    /// Thrown away (or the task changed nothing); worktree and branch are gone.
    Discarded,
    /// A merge was refused because it conflicts; nothing changed, the worktree stays open.
    Conflict,
}

impl WorktreeState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorktreeState::Open => "open",
            WorktreeState::Merged => "merged",
            WorktreeState::Discarded => "discarded",
            WorktreeState::Conflict => "conflict",
        }
    }

    pub fn parse(text: &str) -> Option<WorktreeState> {
        match text {
            "open" => Some(WorktreeState::Open),
            "merged" => Some(WorktreeState::Merged),
            "discarded" => Some(WorktreeState::Discarded),
            "conflict" => Some(WorktreeState::Conflict),
            _ => None,
        }
    }

    /// True while the worktree and its branch exist on disk.
    pub fn exists(self) -> bool {
        match self {
            WorktreeState::Open | WorktreeState::Conflict => true,
            WorktreeState::Merged | WorktreeState::Discarded => false,
        }
    }
}

/// The setup command a worktree ran (`worktree.setup`, from the user's own config only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeSetup {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: i64,
    /// The tail of what it printed (stdout and stderr).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// A task's git worktree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeInfo {
    /// The task that owns the worktree (a follow-up task shows its owner's worktree).
    pub task_id: String,
    pub path: String,
    /// `orchestra/<taskId>`.
    pub branch: String,
    /// The branch the worktree was made from and merges back into.
    pub base_ref: String,
    /// The commit of `baseRef` when the worktree was made.
    pub base_sha: String,
    /// The branch's commit after the worker's changes were committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// Changed files, insertions and deletions between `baseSha` and `headSha`.
    #[serde(default)]
    pub files: u32,
    #[serde(default)]
    pub insertions: u32,
    #[serde(default)]
    pub deletions: u32,
    pub state: WorktreeState,
    /// Git-ignored files copied in from the checkout (`worktree.copy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<WorktreeSetup>,
    /// Files a refused merge conflicts in (state `conflict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
}

impl WorktreeInfo {
    /// An open worktree with nothing recorded yet about its changes.
    pub fn open(task_id: &str, path: String, branch: String) -> WorktreeInfo {
        WorktreeInfo {
            task_id: task_id.to_owned(),
            path,
            branch,
            base_ref: String::new(),
            base_sha: String::new(),
            head_sha: None,
            files: 0,
            insertions: 0,
            deletions: 0,
            state: WorktreeState::Open,
            copied: Vec::new(),
            setup: None,
            conflicts: Vec::new(),
        }
    }
}

/// The `worktree` argument of `task_start`: the ops' target, or the worktree a follow-up task
/// runs in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorktreePayload {
    /// The task whose worktree this is about.
    pub task_id: String,
}

/// `orchestra.merge.conflict`: a `worktree.merge` op was refused because the task's branch
/// conflicts with its base; nothing was changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeConflict {
    /// The task whose worktree did not merge.
    pub task_id: String,
    /// The `worktree.merge` op's own task.
    pub op_task_id: String,
    /// The profile of the task whose worktree it is, which `notify` filters by.
    pub worker_id: String,
    pub branch: String,
    pub base_ref: String,
    /// The files that conflict.
    pub files: Vec<String>,
}
