//! `workflows.triggers` in `orchestrator.json`: workflows the hub starts by itself
//! (`visionOnImage` from the OpenCode plugin's `chat.message` hook, `memoryOnTurnEnd` after a
//! finished task). Part of [`super::model`], kept apart for the file's length.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TriggersFile {
    /// Analyse images pasted into the chat with the vision workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_on_image: Option<VisionTriggerFile>,
    /// Run the memory workflow after each finished worker task (off by default; an LLM call
    /// per task, bounded by `maxTokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_on_turn_end: Option<TriggerFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TriggerFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_spawn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    /// Tokens (input + output + reasoning) one triggered run may use; the run's worker is
    /// stopped once its finished model steps used more. Default: 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
}

/// `workflows.triggers.visionOnImage`: an image pasted into an OpenCode chat is described by the
/// vision workflow, and the description replaces the image before the main model sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VisionTriggerFile {
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default: "vision".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Start the vision worker if it is not running. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_spawn: Option<bool>,
    /// true: the message waits for the description (up to `ui.visionTimeoutMs`); false: the
    /// image is replaced by a note naming the task, and the description is delivered into the
    /// session when it is ready. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    /// Tokens (input + output + reasoning) one triggered run may use. Default: 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// Leave the image alone when the session's model reads images itself. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_when_model_sees_images: Option<bool>,
}
