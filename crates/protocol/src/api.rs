//! Shapes of the hub's HTTP API (`/api/v1/*`) that are not task or event types: health, tool
//! replies, errors, login codes. The API's routes are listed in the `orchestra-http` crate.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/health`: which hub answers, for which project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HubHealth {
    pub hub_id: String,
    pub pid: u32,
    /// The `orchestra` version serving.
    pub version: String,
    pub project_dir: String,
    pub started_at: i64,
    /// True when the hub's workers run on the built-in fake model (`--fake`).
    pub fake: bool,
    /// Jobs running now.
    pub running: usize,
    /// Clients connected now (event streams, MCP relays).
    pub clients: usize,
    /// OpenCode processes whose Orchestra plugin is connected now (their delivery streams).
    #[serde(default)]
    pub plugins: usize,
    /// The newest event id.
    pub last_event_id: u64,
}

/// `POST /api/v1/tools/{name}`: one MCP tool call's answer, exactly as the MCP server gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolReply {
    pub text: String,
    /// The call was refused (bad arguments, unknown task, …); `text` says why and the fix.
    pub is_error: bool,
}

/// Every error the API answers with: what went wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub error: String,
    /// A machine-readable kind: `unauthorized` (the HTTP server's own) or one of
    /// [`ErrorKind`]'s names (`bad_request`, `not_found`, `memory_disabled`, …).
    pub kind: String,
}

/// What kind of failure an error is, as every front end needs to know it: each of core's errors
/// classifies itself into one of these, and a front end maps the kind (the HTTP server to a
/// status code), never the error's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input is wrong; the message says which field and the fix.
    BadRequest,
    /// The thing the caller named does not exist.
    NotFound,
    /// The thing exists but is in a state that refuses this (a finished or busy run).
    Conflict,
    /// The caller may not do this (a worker asking for more than the memory ops).
    Forbidden,
    /// OpenCode (or another process the hub drives) failed.
    Upstream,
    /// The hub is stopping and takes no new work.
    Unavailable,
    /// A fault of the hub itself (its store, a crashed engine).
    Internal,
    /// Memory is turned off for this project. A not-found of its own, because the panel tells
    /// it apart from a missing record (it hides the memory view).
    MemoryDisabled,
    /// A task's budget is spent: continuing it needs a raised `budget`.
    BudgetExceeded,
}

impl ErrorKind {
    /// The `kind` of an [`ApiError`].
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::MemoryDisabled => "memory_disabled",
            ErrorKind::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// `POST /api/v1/login`: a URL a browser can open once to get a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginLink {
    pub url: String,
    pub expires_at: i64,
}

/// `POST /api/v1/login/file`: a one-time login link written into an HTML file only the user
/// can read, for a browser to be given by path — never the link itself, which a command line
/// would show to every local user. The file goes once the link is used or has expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginFile {
    pub path: String,
    pub expires_at: i64,
}

/// `POST /api/v1/questions/{requestId}`: a person's answer to a waiting permission question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuestionAnswer {
    pub reply: QuestionReply,
}

/// What OpenCode is told: allow this once, allow it from now on (its `always` patterns), or
/// refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuestionReply {
    Once,
    Always,
    Reject,
}

/// One line of the hub's log: an `orchestra.log` event with its id and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// The event's id: pass it as `after` to read on from here.
    pub id: u64,
    /// Unix ms.
    pub at: i64,
    #[serde(flatten)]
    pub log: crate::LogEvent,
}

/// `GET /api/v1/logs`: lines oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogsPage {
    pub lines: Vec<LogLine>,
    /// The newest event id when the page was read: follow the event stream from here.
    pub last_event_id: u64,
    /// Older matching lines exist before the first one (pass its id as `before`).
    pub more: bool,
}

/// `GET /api/v1/config`: the configuration the hub runs with, read-only, and where each part
/// of it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub project_dir: String,
    /// The files read, lowest priority first (built-in defaults come before all of them).
    pub files: Vec<ConfigFileView>,
    /// Every key a file sets, with the file that decides it and the value it sets.
    pub keys: Vec<ConfigKeyView>,
    pub profiles: Vec<ProfileView>,
    /// Why `model` is missing from the profiles, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models_note: Option<String>,
    /// The provider every task is pinned to (`--fake`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_pin: Option<String>,
    pub workflows: Vec<WorkflowView>,
    /// `security.workflows`: the caps no workflow may exceed.
    pub workflow_caps: crate::WorkflowRunLimits,
    /// The other settings in force, defaults applied (`tasks`, `runtime`, `hub`, …).
    pub settings: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFileView {
    pub path: String,
    /// `global` (your own), `project` (the repository's) or `command-line` (`--config`).
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigKeyView {
    /// Dotted, with profiles by id: `tasks.defaultTimeoutMs`, `profiles.coder.model`.
    pub key: String,
    pub file: String,
    pub origin: String,
    pub value: serde_json::Value,
}

/// A profile as it runs, with the model its next task would get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    pub id: String,
    pub name: String,
    pub purpose: String,
    /// The model reference in force (an override or the profile's `model`).
    pub model_ref: String,
    /// `provider/model` the next task would run on, when a worker server could say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why that model (or why none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_reason: Option<String>,
    pub read_only: bool,
    pub supports_vision: bool,
    pub supports_web: bool,
    /// OpenCode permissions by key: `allow`, `ask` or `deny`.
    pub permission: std::collections::BTreeMap<String, String>,
    /// `reject`, `once`, `always` or `ask`.
    pub on_permission_ask: String,
    /// `shared`, `process` or `attach`.
    pub isolation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Defined by Orchestra (possibly changed by a file) rather than only by a file.
    pub builtin: bool,
}

/// A workflow that can run, with the limits a run of it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `built-in`, `config` or the workflow file's path.
    pub source: String,
    pub steps: Vec<WorkflowStepView>,
    /// The limits a run gets (the workflow's own, within the caps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::WorkflowRunLimits>,
    /// Why it could not run as configured (a limit above its cap, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepView {
    pub id: String,
    pub title: String,
    /// Empty for a parallel group.
    pub worker_id: String,
    /// A group's members, run at the same time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parallel: Vec<WorkflowStepView>,
}

/// `GET /api/v1/logs?…`: which lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsQuery {
    /// The least severe level to show: `error`, `warn`, `info` (default) or `debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Only lines of this worker (a profile id, or the server label `shared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Only lines about this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Lines containing this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// At most this many lines (default 500, at most 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Lines after this event id, oldest first (follow); without it, the newest lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Lines before this event id (older pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}
