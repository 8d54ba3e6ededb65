//! Workflow runs: the persisted state of one run of a multi-step workflow,
//! shown by `task_list` (`view: "workflow"`, `runId`) and in the report of
//! the job that ran it. Names follow the original's `WorkflowRunState`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Attachment, TokenUsage};

/// Where a run stands. `running` and `paused` can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowRunStatus {
    Running,
    /// Waiting for `task_start({kind: "workflow", continueRunId})`.
    Paused,
    Success,
    Error,
}

impl WorkflowRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowRunStatus::Running => "running",
            WorkflowRunStatus::Paused => "paused",
            WorkflowRunStatus::Success => "success",
            WorkflowRunStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<WorkflowRunStatus> {
        match text {
            "running" => Some(WorkflowRunStatus::Running),
            "paused" => Some(WorkflowRunStatus::Paused),
            "success" => Some(WorkflowRunStatus::Success),
            "error" => Some(WorkflowRunStatus::Error),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        match self {
            WorkflowRunStatus::Running | WorkflowRunStatus::Paused => false,
            WorkflowRunStatus::Success | WorkflowRunStatus::Error => true,
        }
    }
}

/// Where one step stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStepStatus {
    #[default]
    Pending,
    Running,
    Success,
    Error,
}

impl WorkflowStepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStepStatus::Pending => "pending",
            WorkflowStepStatus::Running => "running",
            WorkflowStepStatus::Success => "success",
            WorkflowStepStatus::Error => "error",
        }
    }
}

/// The result of one worker step. Steps of a parallel group carry the
/// group's id in `group`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepResult {
    pub id: String,
    pub title: String,
    pub worker_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: WorkflowStepStatus,
    /// The worker job that ran (or runs) this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Something worth a look that did not fail the step (e.g. carry trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: TokenUsage,
    /// Characters of the carry after this step succeeded: the handoff later steps receive as
    /// `{carry}` (unset until then, or when the step carries nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry_chars: Option<u64>,
    /// How many times the step was started (a retried or interrupted step runs again).
    #[serde(default)]
    pub attempts: u32,
}

/// The six workflow limits, decided: the `security.workflows` caps, the built-in boomerang's
/// own limits, and the limits a run was checked against and runs under. The config file's
/// form, where each may be left out, is `config::model::WorkflowLimitsFile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunLimits {
    pub max_steps: u64,
    pub max_task_chars: u64,
    pub max_carry_chars: u64,
    pub per_step_timeout_ms: u64,
    /// Working time of the whole run (pauses excluded).
    pub max_run_ms: u64,
    /// Input + output + reasoning tokens of the whole run.
    pub max_run_tokens: u64,
}

/// The `security.workflows` caps when the config sets none.
impl Default for WorkflowRunLimits {
    fn default() -> Self {
        WorkflowRunLimits {
            max_steps: 4,
            max_task_chars: 12_000,
            max_carry_chars: 24_000,
            per_step_timeout_ms: 120_000,
            max_run_ms: 3_600_000,
            max_run_tokens: 2_000_000,
        }
    }
}

impl WorkflowRunLimits {
    /// Each limit lowered to its cap where it is above it.
    pub fn capped_by(&self, caps: &WorkflowRunLimits) -> WorkflowRunLimits {
        WorkflowRunLimits {
            max_steps: self.max_steps.min(caps.max_steps),
            max_task_chars: self.max_task_chars.min(caps.max_task_chars),
            max_carry_chars: self.max_carry_chars.min(caps.max_carry_chars),
            per_step_timeout_ms: self.per_step_timeout_ms.min(caps.per_step_timeout_ms),
            max_run_ms: self.max_run_ms.min(caps.max_run_ms),
            max_run_tokens: self.max_run_tokens.min(caps.max_run_tokens),
        }
    }
}

/// `execution` and `intervene` of `workflows.ui`, as the run uses them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunUi {
    /// `auto` or `step`.
    pub execution: String,
    /// `never`, `on-warning`, `on-error` or `always`.
    pub intervene: String,
}

/// One run of a workflow, saved in the store at every step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRun {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_name: String,
    pub task: String,
    pub auto_spawn: bool,
    pub limits: WorkflowRunLimits,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    pub ui: WorkflowRunUi,
    pub status: WorkflowRunStatus,
    /// Index into the definition's top-level steps (a parallel group is one entry)
    /// of the next step to run; on an error pause, the failed one.
    pub current_step_index: usize,
    /// One entry per worker step, in definition order (group members flattened).
    pub steps: Vec<WorkflowStepResult>,
    /// The condensed handoff passed to later steps as `{carry}`.
    #[serde(default)]
    pub carry: String,
    pub started_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Working time so far, pauses excluded; the `maxRunMs` budget counts this.
    #[serde(default)]
    pub active_ms: u64,
    #[serde(default)]
    pub usage: TokenUsage,
    /// One budget for all the run's steps (`budget` on `task_start`); at a cap the run pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::TaskBudget>,
    /// What the run's steps spent against `budget`, saved at every step boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<crate::BudgetSpend>,
    /// The cap of `budget` that paused the run (until it resumes with a raised one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<crate::BudgetStop>,
    /// Why the run paused or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The hub that runs (or last ran) it.
    pub hub_id: String,
    /// The job of the current (or last) `task_start` of this run.
    pub job_id: String,
    /// Every job that ran a part of this run, oldest first.
    #[serde(default)]
    pub job_ids: Vec<String>,
    /// The definition the run started with, so a config change cannot alter
    /// a paused run.
    pub definition: serde_json::Value,
}
