//! Job records: one per `task_start`, kept in the store and returned by
//! `task_await`, `task_peek` and `task_list`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What `task_start` runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Pick a worker profile from the task text and attachments.
    #[default]
    Auto,
    /// Run on the worker named by `workerId`.
    Worker,
    /// Run the workflow named by `workflowId`.
    Workflow,
    /// Run the operation named by `op`.
    Op,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Auto => "auto",
            TaskKind::Worker => "worker",
            TaskKind::Workflow => "workflow",
            TaskKind::Op => "op",
        }
    }
}

/// Where a job stands. Only `Running` is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        match self {
            JobStatus::Running => false,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        match text {
            "running" => Some(JobStatus::Running),
            "succeeded" => Some(JobStatus::Succeeded),
            "failed" => Some(JobStatus::Failed),
            "canceled" => Some(JobStatus::Canceled),
            _ => None,
        }
    }
}

/// The original's structured report, kept for compatibility.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Live progress of a running job, updated from the worker's event stream so
/// a caller can peek without interrupting the worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    /// Last time anything arrived from the worker for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<i64>,
    /// Tool calls the worker has started so far.
    #[serde(default)]
    pub tool_calls: u32,
    /// Name of the most recent tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool: Option<String>,
    /// Tail of the text the worker has produced so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_output: Option<String>,
    /// Provider retries OpenCode reported (429, 5xx, refused connection).
    #[serde(default)]
    pub retries: u32,
    /// Permission questions the hub answered on the worker's behalf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<PermissionAnswer>,
    /// Files the worker's edit and write tool calls changed (relative to the project when
    /// inside it), in the order first touched; read from the session when the turn ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_touched: Vec<String>,
}

/// One permission question from OpenCode and what the hub replied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionAnswer {
    pub permission: String,
    pub patterns: Vec<String>,
    /// `once`, `always` or `reject`, as sent to OpenCode.
    pub reply: String,
    pub at: i64,
    /// Who answered: `profile` (its `onPermissionAsk`), `person` (the panel or the API), or
    /// `timeout` (nobody answered within `tasks.permissionAskTimeoutMs`).
    #[serde(default = "answered_by_profile")]
    pub by: String,
}

/// Records written before `by` existed were all answered by the profile's rule.
fn answered_by_profile() -> String {
    "profile".to_owned()
}

/// A file or image a task carried: what it was, never its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentSummary {
    /// `image` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file's name (or `inline` for base64 content).
    pub name: String,
    pub mime_type: String,
    pub bytes: u64,
}

/// Tokens and cost summed over every assistant message of the job's session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// In the provider's currency unit, as OpenCode reports it.
    pub cost: f64,
}

impl TokenUsage {
    pub fn add(&mut self, other: &TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.reasoning += other.reasoning;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        self.cost += other.cost;
    }

    pub fn total(&self) -> u64 {
        self.input + self.output + self.reasoning + self.cache_read + self.cache_write
    }
}

/// Why a job went to the worker it went to (auto-routing and model choice).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteDecision {
    pub profile: String,
    pub reason: String,
}

/// A job as stored and returned to callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub id: String,
    /// The worker (profile id), or `workflow:<id>` / `op:<op>` labels.
    pub worker_id: String,
    /// The task text as given.
    pub message: String,
    /// What the task carried besides its text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentSummary>,
    /// The worker's OpenCode session for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The caller's agent or client name, when known; for a workflow step, a readable label
    /// (which workflow), never parsed: [`JobRecord::run_id`] names the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The workflow run this job belongs to: the run it drives (`kind: workflow`) or the run
    /// whose step it is (a worker job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The OpenCode session that started the job (`callerSessionId` of `task_start`, set by
    /// Orchestra's OpenCode plugin): the result is delivered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_session_id: Option<String>,
    pub status: JobStatus,
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<JobReport>,
    /// What the job runs: `worker`, `auto`, `op` or `workflow` on the wire.
    pub kind: TaskKind,
    /// Set for `kind: auto`: which profile was chosen and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteDecision>,
    /// The resolved `provider/model` the worker ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why that model was chosen (tag resolution, fuzzy match, per-task override, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_reason: Option<String>,
    /// Each switch to a profile's `fallbackModels` entry, in order; `model` is the one that
    /// answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<crate::fallback::ModelFallback>,
    #[serde(default)]
    pub progress: JobProgress,
    #[serde(default)]
    pub usage: TokenUsage,
    /// The git worktree the task ran in (`workspace: "worktree"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::WorktreeInfo>,
    /// The task's budget (its own over its profile's), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::TaskBudget>,
    /// What this task and the tasks it continues spent, counted against `budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<crate::BudgetSpend>,
    /// Set when a budget stopped the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<crate::BudgetStop>,
    /// The finished task whose session this one continues (`continueTaskId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues_task_id: Option<String>,
    /// The done-check of `until`, and each of its results in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<crate::UntilCheck>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::CheckResult>,
    /// The hub process that owns the job; another hub never touches it
    /// while that hub is alive.
    #[serde(default)]
    pub hub_id: String,
    /// Why the memory block was left out of this task's prompt (memory still opening, its
    /// index locked or failing); absent when it was added or there was nothing to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_note: Option<String>,
}

impl JobRecord {
    /// A new running job.
    pub fn start(
        id: String,
        worker_id: String,
        message: String,
        kind: TaskKind,
        hub_id: &str,
    ) -> Self {
        JobRecord {
            id,
            worker_id,
            message,
            attachments: Vec::new(),
            session_id: None,
            requested_by: None,
            run_id: None,
            caller_session_id: None,
            status: JobStatus::Running,
            started_at: crate::now_ms(),
            finished_at: None,
            duration_ms: None,
            response_text: None,
            error: None,
            report: None,
            kind,
            route: None,
            model: None,
            model_reason: None,
            fallbacks: Vec::new(),
            progress: JobProgress::default(),
            usage: TokenUsage::default(),
            worktree: None,
            budget: None,
            spent: None,
            budget_stop: None,
            continues_task_id: None,
            until: None,
            checks: Vec::new(),
            hub_id: hub_id.to_owned(),
            memory_note: None,
        }
    }

    /// Moves the job to a final status, stamping the finish time.
    pub fn finish(&mut self, status: JobStatus, at: i64) {
        self.status = status;
        self.finished_at = Some(at);
        self.duration_ms = Some((at - self.started_at).max(0));
    }
}
