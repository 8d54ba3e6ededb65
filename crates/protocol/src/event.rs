//! The event envelope the original published as `orchestra.*` events.

use serde::{Deserialize, Serialize};

pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub version: u32,
    pub id: String,
    /// `orchestra.job.started`, `orchestra.worker.status`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: i64,
    pub data: serde_json::Value,
}
