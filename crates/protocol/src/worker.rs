//! Worker snapshots, as listed by `task_list {view: "workers"}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Its server is starting for the first time (or after it was stopped).
    Starting,
    Ready,
    Busy,
    /// Its server was lost or a person asked for a restart; a new one is being started.
    Restarting,
    /// Its server failed or was lost and is not being restarted (`warning` says why); the next
    /// task tries again.
    Error,
    /// No server: not started yet, or stopped with the hub.
    Stopped,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Starting => "starting",
            WorkerStatus::Ready => "ready",
            WorkerStatus::Busy => "busy",
            WorkerStatus::Restarting => "restarting",
            WorkerStatus::Error => "error",
            WorkerStatus::Stopped => "stopped",
        }
    }
}

/// One profile's worker as the hub sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSnapshot {
    pub id: String,
    pub name: String,
    pub status: WorkerStatus,
    /// The model tag or reference from the profile (`auto:fast`, `provider/model`).
    pub model_ref: String,
    /// The `provider/model` the worker runs on, once its server's catalog was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why that model was chosen (`auto-selected from small_model`, `explicit model`, …), or
    /// why no model could be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_resolution: Option<String>,
    /// `sticky` when `worker.model.set` or a sticky task replaced the profile's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_policy: Option<crate::ModelPolicy>,
    /// The OpenCode agent this profile runs as.
    pub agent: String,
    /// `shared`, `process` or `attach`.
    pub isolation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Resident memory of the server process (its leader, not its children), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// When the current server started (unix ms): its uptime is now minus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_started_at: Option<i64>,
    /// Jobs running on this worker right now.
    pub active_jobs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<i64>,
    /// Restarts since the hub started.
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    pub purpose: String,
    pub read_only: bool,
}
