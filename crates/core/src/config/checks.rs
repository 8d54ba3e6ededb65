//! `checks`: named commands that decide when a task's work is done (`until: {check}`); and
//! `budgets`, the project's per-day caps.
//!
//! A command is taken only from a config file, the user's or the project's, and reaches the
//! hub by name: a tool call names a check, it never carries a command.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long a check may run when its `timeoutMs` is not set.
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 120_000;

/// One named check as written in `orchestrator.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckFile {
    /// Run as `sh -c <command>` in the task's workspace; exit code 0 means done.
    #[schemars(length(min = 1))]
    pub command: String,
    /// Killed (with everything it started) after this long, in ms. Default: 120000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// A resolved check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub command: String,
    pub timeout_ms: u64,
}

pub(super) fn resolve(files: &BTreeMap<String, CheckFile>) -> BTreeMap<String, Check> {
    files
        .iter()
        .map(|(name, file)| {
            let check = Check {
                command: file.command.clone(),
                timeout_ms: file.timeout_ms.unwrap_or(DEFAULT_CHECK_TIMEOUT_MS).max(1),
            };
            (name.clone(), check)
        })
        .collect()
}

/// `budgets`: caps over all of a project's work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetsFile {
    /// What the project's worker tasks may spend per day (UTC); a new task is refused once it
    /// is spent, and each task's own budget is lowered to what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<DailyBudget>,
}

/// The per-day caps: tokens of every kind, cost in US dollars, model steps, and the time
/// finished tasks ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DailyBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Model steps of all the day's worker tasks together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
    /// Milliseconds the day's worker tasks ran, together (a running task counts once it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_ms: Option<u64>,
}

impl DailyBudget {
    /// The same caps, as a budget's dimensions.
    pub fn caps(&self) -> orchestra_protocol::TaskBudget {
        orchestra_protocol::TaskBudget {
            max_tokens: self.max_tokens,
            max_cost_usd: self.max_cost_usd,
            max_turns: self.max_turns,
            max_ms: self.max_ms,
        }
    }
}
