//! The shape of `orchestrator.json` as written by users.
//!
//! Every field is optional so that the global file, the project file and `--config` can each set
//! only what they change; [`super::resolved`] applies the defaults. Unknown keys are rejected
//! (`deny_unknown_fields`) so that a typo is reported instead of being ignored.

use std::collections::BTreeMap;

use orchestra_protocol::tools::ListFormat;

pub use super::model_triggers::{TriggerFile, TriggersFile, VisionTriggerFile};
pub use super::model_workflows::{
    BoomerangStepFile, RoocodeBoomerangFile, WorkflowDefinitionFile, WorkflowExecution,
    WorkflowIntervene, WorkflowLimitsFile, WorkflowStepFile, WorkflowUiFile, WorkflowsFile,
};
use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Open Orchestra `orchestrator.json`: global (`~/.config/opencode/orchestrator.json`) and
/// per-project (`.opencode/orchestrator.json` or `orchestrator.json`) settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrchestratorConfigFile {
    /// URL or path of this JSON Schema, for editors.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Start the workers listed in `workers` when the hub starts. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_spawn: Option<bool>,
    /// How long to wait for a worker's OpenCode server to come up, in ms. Default: 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub startup_timeout: Option<u64>,
    /// How often to check that each worker's server is alive, in ms. Default: 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub health_check_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<UiFile>,
    /// Accepted for compatibility with the original plugin; has no effect in Orchestra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<CommandsFile>,
    /// Accepted for compatibility with the original plugin; has no effect in Orchestra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<WorkflowsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryFile>,
    /// Accepted for compatibility with the original plugin; has no effect in Orchestra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<TasksFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeFile>,
    /// The project's hub (`orchestra serve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubFile>,
    /// Task worktrees (`workspace: "worktree"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<WorktreeFile>,
    /// Worker profiles: a built-in id, or an object that overrides a built-in field by field or
    /// defines a new profile. Entries accumulate across config files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<ProfileEntry>>,
    /// Like `profiles`, and also the list of workers started at launch (when `autoSpawn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<ProfileEntry>>,
    /// Named done-checks for `until: {check}` on `task_start`: commands the hub runs (`sh -c`)
    /// in the task's workspace after each attempt. Only here, never in a tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, super::checks::CheckFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<super::checks::BudgetsFile>,
    /// Where the hub sends its events (desktop, webhook, command). Only your own config
    /// (global or `--config`) may set it, never a project's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<super::notify::NotifyTargetFile>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UiFile {
    /// Default output format of the list tools. Default: markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_list_format: Option<ListFormat>,
    /// Verbose logging. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toasts: Option<bool>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_system_context: Option<bool>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_context_max_workers: Option<u64>,
    /// Deliver the result of a task started from an OpenCode session into that session when
    /// it finishes (needs the OpenCode plugin `orchestra install` adds). Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakeup_injection: Option<bool>,
    /// How long a pasted image's analysis may hold the message before the main model sees it
    /// (`workflows.triggers.visionOnImage`). Default: 300000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_timeout_ms: Option<u64>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_to_console: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleNotificationFile>,
}

/// A notification when an OpenCode session is idle and a task it started finished or needs an
/// answer: an `orchestra.notification` event and a desktop notification (`notify-send`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdleNotificationFile {
    /// Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default: "OpenCode".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The notification's first line. Default: "Session is idle".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How long the session must stay idle first. Default: 1500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The orchestrator agent that Orchestra registers in the user's OpenCode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentFile {
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default: "orchestrator".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Replaces the built-in orchestrator prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Default: primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AgentMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to_build: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeMap<String, bool>>,
    /// OpenCode permission object, passed through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    #[default]
    Primary,
    Subagent,
    All,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandsFile {
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default: "orchestrator.".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PruningFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_output_chars: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_input_chars: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TelemetryFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityFile {
    /// Caps that apply to every workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<WorkflowLimitsFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_spawn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_record: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_inject: Option<bool>,
    /// How many automatic records (`memory.autoRecord`) a project keeps; older ones are
    /// deleted in the background. Records you write, and pinned ones, are never aged out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_records: Option<MemoryAutoRecordsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<MemoryScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summaries: Option<MemorySummariesFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<MemoryTrimFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<MemoryInjectFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryAutoRecordsFile {
    /// The newest automatic records kept per project. Default: 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub max_count: Option<u64>,
    /// Automatic records older than this many days are deleted. Default: 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub max_age_days: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryScope {
    #[default]
    Project,
    Global,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemorySummariesFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_max_chars: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_max_chars: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryTrimFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_per_session: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_per_project: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_global: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_projects_global: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryInjectFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_messages: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_session_summary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_project_summary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_global: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_global_entries: Option<u64>,
}

/// The task engine behind `task_start`, `task_await` and friends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TasksFile {
    /// Default: 600000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_timeout_ms: Option<u64>,
    /// Start a worker when a task needs one that is not running. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_auto_spawn: Option<bool>,
    /// Default: dynamic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model_policy: Option<ModelPolicy>,
    /// Longest a single `task_await` call blocks, in ms. MCP clients give up after 60 s, so
    /// this is capped at 45000. Default: 45000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 45000))]
    pub await_cap_ms: Option<u64>,
    /// Default: 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_task_chars: Option<u64>,
    /// Largest single attachment, in bytes. Default: 10485760 (10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attachment_bytes: Option<u64>,
    /// Most attachments one task may carry. Default: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attachments: Option<u64>,
    /// Most bytes all attachments of one task may add up to. Default: 20971520 (20 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attachments_bytes: Option<u64>,
    /// Abort a task after OpenCode reports this many provider retries. Default: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_retry_limit: Option<u32>,
    /// How long a permission question of a profile with `onPermissionAsk: "ask"` waits for a
    /// person before it is rejected, in ms. Default: 300000 (5 min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub permission_ask_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobsFile>,
    /// Where finished tasks are stored; relative paths are taken from the project directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_path: Option<String>,
    /// No effect in Orchestra: tasks are always stored (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<TasksPersistFile>,
}

/// The task tools' `modelPolicy`; `tasks.defaultModelPolicy` uses the same values.
pub use orchestra_protocol::ModelPolicy;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobsFile {
    /// Default: 86400000 (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_age_ms: Option<u64>,
    /// Default: 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_count: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TasksPersistFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// What a new task worktree gets besides the branch's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorktreeFile {
    /// Git-ignored files of the checkout copied into each new worktree, as git pathspec globs
    /// relative to the repository's top (`.env`, `config/*.local.json`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<Vec<String>>,
    /// A program and its arguments (no shell) run in each new worktree before the worker
    /// starts (`["npm", "ci"]`); only from your own config, never a project's. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<Vec<String>>,
    /// Worktrees the hub keeps checked out ahead of time, so a task's worktree is ready in
    /// the time of a branch switch instead of a full checkout (which takes seconds on a big
    /// repository or a slow disk). Each costs the disk space of one checkout; the first is
    /// made after the project's first worktree task. 0 turns this off. Default: 1, at most 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spares: Option<u64>,
}

/// The project's hub: the long-lived `orchestra serve` process every client shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HubFile {
    /// A hub a client started in the background stops after this long with no client and no
    /// running work (its workers stop with it). Default: 600000 (10 min). A hub you start with
    /// `orchestra serve` runs until stopped unless `--idle-stop-ms` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop_ms: Option<u64>,
    /// The port on 127.0.0.1; 0 picks a free one. Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// How workers get an OpenCode server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeFile {
    /// Default: shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Base URL of a running `opencode serve` (http://…); required when isolation is attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_url: Option<String>,
    /// Name of the environment variable that holds the OpenCode server password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub attach_password_env: Option<String>,
    /// The `opencode` executable; relative paths are taken from the project directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opencode_bin: Option<String>,
    /// Default: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    /// Default: 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_backoff_ms: Option<u64>,
    /// How many finished worker sessions to keep in OpenCode's session list; older ones are
    /// deleted once their job is final. Default: 0 (delete each when its job is final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_sessions: Option<u64>,
    /// OpenCode's per-step git snapshots in the servers Orchestra starts. Default: false.
    /// Worker sessions do not use OpenCode's undo, and snapshots cost about a quarter of
    /// OpenCode's CPU per task (measured with `orchestra-bench`). No effect on `attach`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<bool>,
}

/// `shared`: one OpenCode server for all workers; `process`: one server per worker;
/// `attach`: use a server that is already running (`runtime.attachUrl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    #[default]
    Shared,
    Process,
    Attach,
}

/// Per-profile isolation override (a profile cannot attach on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileIsolation {
    Shared,
    Process,
}

impl From<ProfileIsolation> for Isolation {
    fn from(value: ProfileIsolation) -> Self {
        match value {
            ProfileIsolation::Shared => Isolation::Shared,
            ProfileIsolation::Process => Isolation::Process,
        }
    }
}

/// An OpenCode permission answer for one permission key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PermissionAction {
    Allow,
    Ask,
    Deny,
}

/// What the hub answers when OpenCode asks a permission question for a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PermissionReply {
    #[default]
    Reject,
    Once,
    Always,
    /// A person answers (the panel's inbox, `POST /api/v1/questions/{requestId}`); nobody
    /// answering within `tasks.permissionAskTimeoutMs` rejects it.
    Ask,
}

/// A `profiles`/`workers` entry: the id of a known profile, or a profile object.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ProfileEntry {
    Id(String),
    Object(Box<ProfileFile>),
}

// Hand-written so that errors inside an object entry keep their key path; serde's untagged
// enums would collapse them into "data did not match any variant".
impl<'de> Deserialize<'de> for ProfileEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ProfileEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a profile id or a profile object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProfileEntry, E> {
                Ok(ProfileEntry::Id(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ProfileEntry, E> {
                Ok(ProfileEntry::Id(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ProfileEntry, A::Error> {
                let object = ProfileFile::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ProfileEntry::Object(Box::new(object)))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// A worker profile. An object whose `id` is a built-in changes only the fields it sets; a new
/// id must set `name`, `model`, `purpose` and `whenToUse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileFile {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,39}$"))]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `provider/model`, or a tag: `node`, `node:fast`, `node:vision`, `node:docs` (`auto…` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_to_use: Option<String>,
    /// System prompt of the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The original plugin's name for `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_vision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_web: Option<bool>,
    /// OpenCode tool switches; merged key by key over the built-in's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeMap<String, bool>>,
    /// OpenCode permissions (edit, bash, webfetch, external_directory, …); merged key by key
    /// over the built-in's. `edit` covers every file-writing tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<BTreeMap<String, PermissionAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<ProfileIsolation>,
    /// `worktree` or `checkout`: where this worker's tasks edit files. Default: a worktree for
    /// a worker that may edit, in a git repository with a commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<orchestra_protocol::WorkspaceMode>,
    /// What the hub answers when OpenCode asks this worker a permission question: `reject`,
    /// `once`, `always`, or `ask` (a person answers from the panel). Default: reject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_permission_ask: Option<PermissionReply>,
    /// Caps for every task of this worker; a task's own `budget` overrides each dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<orchestra_protocol::TaskBudget>,
    /// `provider/model` ids tried in order when a turn fails with a rate limit (429), a server
    /// error (5xx), an overload or an exhausted quota; 400/401/403 never fall back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_models: Option<Vec<String>>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProfileKind>,
    /// No effect in Orchestra; deprecated alias of `kind` in the original plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<ProfileBackend>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ProfileExecution>,
    /// No effect in Orchestra: use `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_file: Option<String>,
    /// No effect in Orchestra: ports are taken from what OpenCode prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Skills (`SKILL.md` names) the worker must be able to load; a task fails before it
    /// starts when one is missing, unreadable or denied by `permission.skill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_skills: Option<Vec<String>>,
    /// No effect in Orchestra (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_repo_context: Option<bool>,
    /// No effect in Orchestra: write `provider/model` in `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    Server,
    Agent,
    Subagent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileBackend {
    Server,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileExecution {
    Foreground,
    Background,
}
