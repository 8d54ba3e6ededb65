//! How a task moved from a failing model to the next of its profile's `fallbackModels`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One switch of model inside a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelFallback {
    /// The `provider/model` that failed.
    pub from: String,
    /// The `provider/model` the turn was sent to next.
    pub to: String,
    /// The failure, as the provider (through OpenCode) reported it.
    pub reason: String,
    pub at: i64,
}
