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
    /// A machine-readable kind: `unauthorized`, `forbidden`, `bad_request`, `not_found`,
    /// `conflict`, `internal`.
    pub kind: String,
}

/// `POST /api/v1/login`: a URL a browser can open once to get a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginLink {
    pub url: String,
    pub expires_at: i64,
}
