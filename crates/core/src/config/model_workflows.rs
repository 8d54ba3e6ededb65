//! `workflows` in `orchestrator.json` (and the workflow files of `.opencode/workflows/`): the
//! workflows users define, the built-in `roocode-boomerang` one's overrides, and how workflows
//! run. Part of [`super::model`], kept apart for the file's length.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model_triggers::TriggersFile;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowsFile {
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<WorkflowUiFile>,
    /// User workflows. Default: [].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definitions: Option<Vec<WorkflowDefinitionFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<TriggersFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roocode_boomerang: Option<RoocodeBoomerangFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowUiFile {
    /// Default: auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<WorkflowExecution>,
    /// Default: on-error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervene: Option<WorkflowIntervene>,
}

/// Run all steps at once (`auto`) or pause after each step (`step`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowExecution {
    #[default]
    Auto,
    Step,
}

/// When an `auto` workflow pauses for the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WorkflowIntervene {
    Never,
    OnWarning,
    #[default]
    OnError,
    Always,
}

/// A workflow: in `workflows.definitions[]` of `orchestrator.json`, or one per file in
/// `.opencode/workflows/<name>.json` (schema: `schema/workflow.schema.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowDefinitionFile {
    /// URL or path of this JSON Schema, for editors (workflow files).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,39}$"))]
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Run in order; a step with `parallel` is a group whose members run at the same time.
    #[schemars(length(min = 1))]
    pub steps: Vec<WorkflowStepFile>,
    /// This workflow's limits; each may only lower its `security.workflows` cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<WorkflowLimitsFile>,
}

/// One step, or (with `parallel`) a group of steps that run at the same time on their
/// workers and are joined before the next step. A group has only `id`, `title` and
/// `parallel`; groups do not nest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowStepFile {
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"))]
    pub id: String,
    pub title: String,
    /// Profile id of the worker that runs this step. Default: coder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// Template: `{task}`, `{carry}` and `{steps.<id>}` (the output of an earlier step, or of
    /// every member of an earlier group) are replaced. Default: "Task:\n{task}".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Append this step's handoff (Summary, Artifacts, Risks, Next) to the carry that later
    /// steps see as `{carry}`. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry: Option<bool>,
    /// Default and maximum: the workflow's `perStepTimeoutMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_skills: Option<Vec<String>>,
    /// Repeat this step in its session until a check from the config's `checks` passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<orchestra_protocol::UntilCheck>,
    /// Makes this step a parallel group of these steps (at least two, no nested groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2))]
    pub parallel: Option<Vec<WorkflowStepFile>>,
}

/// A change to one step of the built-in `roocode-boomerang` workflow, matched by `id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BoomerangStepFile {
    /// One of plan, implement, review, fix.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_skills: Option<Vec<String>>,
}

/// The built-in plan → implement → review → fix workflow. Its limits can only lower the
/// `security.workflows` caps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoocodeBoomerangFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<BoomerangStepFile>>,
    /// Default: 4; never above `security.workflows.maxSteps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_steps: Option<u64>,
    /// Default: 12000; never above `security.workflows.maxTaskChars`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_task_chars: Option<u64>,
    /// Default: 24000; never above `security.workflows.maxCarryChars`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_carry_chars: Option<u64>,
    /// Default: 120000; never above `security.workflows.perStepTimeoutMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub per_step_timeout_ms: Option<u64>,
    /// Default: 3600000; never above `security.workflows.maxRunMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_run_ms: Option<u64>,
    /// Default: 2000000; never above `security.workflows.maxRunTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_run_tokens: Option<u64>,
}

impl RoocodeBoomerangFile {
    /// The six limits as the other places that set them write them. They sit beside
    /// `enabled` and `steps` in the file, so they cannot be one nested field: serde's
    /// `flatten` would lose the unknown-key errors that name the close match.
    pub fn limits(&self) -> WorkflowLimitsFile {
        WorkflowLimitsFile {
            max_steps: self.max_steps,
            max_task_chars: self.max_task_chars,
            max_carry_chars: self.max_carry_chars,
            per_step_timeout_ms: self.per_step_timeout_ms,
            max_run_ms: self.max_run_ms,
            max_run_tokens: self.max_run_tokens,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowLimitsFile {
    /// Default: 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_steps: Option<u64>,
    /// Default: 12000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_task_chars: Option<u64>,
    /// Default: 24000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_carry_chars: Option<u64>,
    /// Default: 120000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub per_step_timeout_ms: Option<u64>,
    /// Working time of one run, pauses excluded; the run stops when it is used up.
    /// Default: 3600000 (one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_run_ms: Option<u64>,
    /// Input + output + reasoning tokens of one run over all its steps; the run stops when
    /// they are used up. Default: 2000000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_run_tokens: Option<u64>,
}
