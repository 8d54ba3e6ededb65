//! Budgets and done-checks of a task: what a caller asks for (`budget`, `until` on
//! `task_start`) and what the hub records about them on the job (spend, the budget that
//! stopped it, every check's result).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Caps on what one task may spend. Each dimension is optional; a task stops (failed, its
/// partial output kept) at the first one it reaches. `maxTokens` counts every token the
/// provider reports: input, output, reasoning, cache read and cache write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskBudget {
    /// Tokens of every kind together (input, output, reasoning, cache read, cache write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// Cost as OpenCode reports it for the model (its catalog's prices), in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Model steps (one request to the model each; a tool loop makes several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
    /// Wall-clock time the worker's model may run, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_ms: Option<u64>,
}

impl TaskBudget {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.max_cost_usd.is_none()
            && self.max_turns.is_none()
            && self.max_ms.is_none()
    }

    /// Each dimension of `self`, else of `fallback` (a task's own budget over its profile's).
    pub fn or(self, fallback: TaskBudget) -> TaskBudget {
        TaskBudget {
            max_tokens: self.max_tokens.or(fallback.max_tokens),
            max_cost_usd: self.max_cost_usd.or(fallback.max_cost_usd),
            max_turns: self.max_turns.or(fallback.max_turns),
            max_ms: self.max_ms.or(fallback.max_ms),
        }
    }

    /// The cap of one dimension, as a number.
    pub fn cap(&self, dimension: BudgetDimension) -> Option<f64> {
        match dimension {
            BudgetDimension::MaxTokens => self.max_tokens.map(|v| v as f64),
            BudgetDimension::MaxCostUsd => self.max_cost_usd,
            BudgetDimension::MaxTurns => self.max_turns.map(f64::from),
            BudgetDimension::MaxMs => self.max_ms.map(|v| v as f64),
        }
    }
}

/// One dimension of a [`TaskBudget`], named as its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetDimension {
    #[serde(rename = "maxTokens")]
    MaxTokens,
    #[serde(rename = "maxCostUsd")]
    MaxCostUsd,
    #[serde(rename = "maxTurns")]
    MaxTurns,
    #[serde(rename = "maxMs")]
    MaxMs,
}

impl BudgetDimension {
    pub const ALL: [BudgetDimension; 4] = [
        BudgetDimension::MaxTokens,
        BudgetDimension::MaxCostUsd,
        BudgetDimension::MaxTurns,
        BudgetDimension::MaxMs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetDimension::MaxTokens => "maxTokens",
            BudgetDimension::MaxCostUsd => "maxCostUsd",
            BudgetDimension::MaxTurns => "maxTurns",
            BudgetDimension::MaxMs => "maxMs",
        }
    }
}

/// What a task (with the tasks it continues) has spent, in the budget's dimensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSpend {
    pub tokens: u64,
    pub cost_usd: f64,
    pub turns: u32,
    pub ms: u64,
}

impl BudgetSpend {
    /// `tokens` is every kind together (`TokenUsage::total`), `cost_usd` its cost.
    pub fn of(tokens: u64, cost_usd: f64, turns: u32, ms: u64) -> BudgetSpend {
        BudgetSpend {
            tokens,
            cost_usd,
            turns,
            ms,
        }
    }

    pub fn plus(self, other: BudgetSpend) -> BudgetSpend {
        BudgetSpend {
            tokens: self.tokens + other.tokens,
            cost_usd: self.cost_usd + other.cost_usd,
            turns: self.turns + other.turns,
            ms: self.ms + other.ms,
        }
    }

    pub fn used(&self, dimension: BudgetDimension) -> f64 {
        match dimension {
            BudgetDimension::MaxTokens => self.tokens as f64,
            BudgetDimension::MaxCostUsd => self.cost_usd,
            BudgetDimension::MaxTurns => f64::from(self.turns),
            BudgetDimension::MaxMs => self.ms as f64,
        }
    }
}

/// The budget dimension that stopped a task, what it had used and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStop {
    pub dimension: BudgetDimension,
    pub used: f64,
    pub cap: f64,
}

/// `orchestra.budget.warning`: a task has used 80 % of one budget dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetWarning {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub dimension: BudgetDimension,
    pub used: f64,
    pub cap: f64,
}

/// Whose budget an `orchestra.budget.exceeded` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// A task's own budget (`budget` on `task_start` or its profile): the task ended failed.
    Task,
    /// A workflow run's pool: its steps were stopped and the run paused.
    Run,
}

/// `orchestra.budget.exceeded`: a task or a workflow run reached a cap of its budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetExceeded {
    /// The task that was stopped; for a run, the run's workflow task.
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The task's profile (`workflow:<id>` for a run), which `notify` filters by.
    pub worker_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    pub scope: BudgetScope,
    pub dimension: BudgetDimension,
    pub used: f64,
    pub cap: f64,
}

/// `until` on `task_start`: repeat the task in the same worker session until the named check
/// (from the config's `checks`) passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UntilCheck {
    /// A check named in the config's `checks` (never a command).
    pub check: String,
    /// Attempts at most, the first included (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub max_iterations: Option<u32>,
}

/// The result of one run of a done-check after an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The attempt it followed, from 1.
    pub iteration: u32,
    pub check: String,
    pub passed: bool,
    /// The command's exit code; none when it was killed (timeout, cancel) or by a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    /// Its output (stdout then stderr), trimmed and capped.
    pub output: String,
    pub duration_ms: u64,
    pub at: i64,
}
