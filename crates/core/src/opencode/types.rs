//! Typed shapes of OpenCode 1.18.33's V1 routes, as measured against the real server
//! (fixtures in `crates/core/tests/fixtures/opencode/`).
//!
//! Responses are decoded tolerantly: every field has a default and unknown fields are ignored,
//! so a newer OpenCode adding fields does not break the hub. Request bodies are exact.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /global/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub healthy: bool,
    pub version: String,
}

/// `GET /config/providers`: `{"providers":[…],"default":{"fake":"fake-model"}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProvidersResponse {
    pub providers: Vec<ProviderInfo>,
    /// Default model id per provider id.
    pub default: HashMap<String, String>,
}

/// `GET /provider`: every provider OpenCode knows (its models.dev snapshot plus config);
/// `connected` names the ones it can call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProviderListResponse {
    pub all: Vec<ProviderInfo>,
    pub default: HashMap<String, String>,
    pub connected: Vec<String>,
}

/// One provider. Its `options` and `key` (which hold the API key) are deliberately not decoded,
/// so they cannot end up in logs through `Debug`; only whether a key is present is kept.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    /// `config`, `env`, `api`, `custom`, …
    pub source: Option<String>,
    pub env: Vec<String>,
    /// A `key` is present (an env variable or a key stored with `opencode auth login`).
    #[serde(rename = "key", deserialize_with = "present")]
    pub has_key: bool,
    pub models: BTreeMap<String, ModelInfo>,
}

/// `true` for any value, without keeping it.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A boolean that OpenCode may send as `null`, read as `false`.
fn null_is_false<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Option::<bool>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ModelInfo {
    pub id: String,
    #[serde(rename = "providerID")]
    pub provider_id: String,
    pub name: String,
    pub family: String,
    pub capabilities: ModelCapabilities,
    pub limit: ModelLimit,
    pub cost: ModelCost,
    /// `active`, `beta`, `deprecated`, … (OpenCode 1.18 drops deprecated models from the
    /// providers it lists, so only `/provider`'s catalog-wide `all` shows them.)
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ModelCapabilities {
    pub temperature: bool,
    pub reasoning: bool,
    pub attachment: bool,
    pub toolcall: bool,
    pub input: Modalities,
    pub output: Modalities,
    pub interleaved: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Modalities {
    pub text: bool,
    pub audio: bool,
    pub image: bool,
    pub video: bool,
    pub pdf: bool,
}

/// Price per million tokens, in the provider's currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ModelCost {
    pub input: f64,
    pub output: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ModelLimit {
    pub context: u64,
    pub output: u64,
}

/// `GET /agent` entries (build, plan, general, explore, and hidden ones like title/summary).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    pub name: String,
    pub description: Option<String>,
    /// `primary`, `subagent` or `all`.
    pub mode: String,
    #[serde(deserialize_with = "null_is_false")]
    pub native: bool,
    /// Agents from config (Orchestra's profiles among them) say `"hidden": null`.
    #[serde(deserialize_with = "null_is_false")]
    pub hidden: bool,
    pub permission: Vec<PermissionRule>,
    pub prompt: Option<String>,
    pub model: Option<Value>,
    pub options: Value,
}

/// `GET /skill` entries: a skill an agent can load with the `skill` tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SkillInfo {
    pub name: String,
    pub description: String,
    /// The `SKILL.md` path, or `<built-in>`.
    pub location: String,
}

/// One permission rule, as used in agent and session rulesets. Later rules win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRule {
    /// `*`, `bash`, `edit`, `read`, `external_directory`, `doom_loop`, …
    pub permission: String,
    pub pattern: String,
    pub action: PermissionAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionAction {
    Allow,
    Deny,
    Ask,
}

/// Body of `POST /session`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateSessionRequest {
    /// Give a title: without one OpenCode makes an extra model call to generate it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Vec<PermissionRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(rename = "parentID", skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

/// A session as returned by `POST /session` and `GET /session/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionInfo {
    pub id: String,
    pub slug: String,
    #[serde(rename = "projectID")]
    pub project_id: String,
    pub directory: String,
    #[serde(rename = "parentID")]
    pub parent_id: Option<String>,
    pub title: String,
    pub version: String,
    pub cost: Option<f64>,
    pub tokens: Option<Tokens>,
    pub permission: Vec<PermissionRule>,
    pub time: Option<Times>,
}

/// `time` objects: `{created, updated?, completed?}` in ms since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Times {
    pub created: Option<i64>,
    pub updated: Option<i64>,
    pub completed: Option<i64>,
}

/// Body of `POST /session/{id}/message` and `/prompt_async`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptRequest {
    pub parts: Vec<PartInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// Appended to the agent's system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `{"bash": false}` removes a tool from this turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeMap<String, bool>>,
}

impl PromptRequest {
    /// A prompt made of one text part, everything else defaulted.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parts: vec![PartInput::Text { text: text.into() }],
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PartInput {
    Text {
        text: String,
    },
    /// `url` is a `data:` URL or `file://` URL.
    File {
        mime: String,
        filename: String,
        url: String,
    },
}

/// `{"providerID":"fake","modelID":"fake-model"}`; parsed from `"fake/fake-model"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelRef {
    #[serde(rename = "providerID")]
    pub provider_id: String,
    #[serde(rename = "modelID")]
    pub model_id: String,
}

impl FromStr for ModelRef {
    type Err = String;

    /// Splits at the first `/`: model ids may contain more slashes (`openrouter/x/y`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((provider, model)) if !provider.is_empty() && !model.is_empty() => Ok(Self {
                provider_id: provider.to_owned(),
                model_id: model.to_owned(),
            }),
            _ => Err(format!(
                "invalid model `{s}`: expected `provider/model`, for example `anthropic/claude-sonnet-4-5`"
            )),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider_id, self.model_id)
    }
}

/// One message with its parts (`POST /session/{id}/message` returns one, `GET …/message` a list).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageWithParts {
    pub info: MessageInfo,
    pub parts: Vec<Part>,
}

impl MessageWithParts {
    /// The concatenated text parts, which is what a user would read as the reply.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text { text, .. } = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// User and assistant message metadata. Assistant messages carry model, tokens, cost, finish
/// and error; user messages carry `model` as a [`ModelRef`] instead.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageInfo {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: String,
    #[serde(rename = "parentID")]
    pub parent_id: Option<String>,
    pub agent: Option<String>,
    pub mode: Option<String>,
    #[serde(rename = "modelID")]
    pub model_id: Option<String>,
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
    /// On user messages: the model the turn was requested with.
    pub model: Option<ModelRef>,
    pub tokens: Option<Tokens>,
    pub cost: Option<f64>,
    /// `{"name":"MessageAbortedError","data":{"message":"Aborted"}}`, `APIError`, …
    pub error: Option<Value>,
    /// `stop`, `tool-calls`, `length`, …; absent on aborted or failed messages.
    pub finish: Option<String>,
    pub time: Times,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Tokens {
    /// Present on messages and parts, absent on sessions.
    pub total: Option<u64>,
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache: CacheTokens,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CacheTokens {
    pub read: u64,
    pub write: u64,
}

/// The parts the hub acts on; every other part type (`step-start`, `reasoning`, `file`,
/// `patch`, `agent`, `subtask`, …) decodes as [`Part::Other`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum Part {
    #[serde(rename = "text")]
    Text {
        #[serde(default)]
        id: String,
        #[serde(default, rename = "sessionID")]
        session_id: String,
        #[serde(default, rename = "messageID")]
        message_id: String,
        #[serde(default)]
        text: String,
    },
    #[serde(rename = "tool")]
    Tool {
        #[serde(default)]
        id: String,
        #[serde(default, rename = "sessionID")]
        session_id: String,
        #[serde(default, rename = "messageID")]
        message_id: String,
        #[serde(default, rename = "callID")]
        call_id: String,
        #[serde(default)]
        tool: String,
        #[serde(default)]
        state: ToolState,
    },
    #[serde(rename = "step-finish")]
    StepFinish {
        #[serde(default)]
        id: String,
        #[serde(default, rename = "sessionID")]
        session_id: String,
        #[serde(default, rename = "messageID")]
        message_id: String,
        /// `stop`, `tool-calls`, …
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        tokens: Option<Tokens>,
        #[serde(default)]
        cost: Option<f64>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolState {
    /// `pending`, `running`, `completed` or `error`.
    pub status: String,
    pub input: Option<Value>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub title: Option<String>,
}

/// `GET /session/status` values and `session.status` events. Idle sessions are usually
/// simply absent from the map.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionStatus {
    Idle,
    Busy,
    /// The provider failed with a retryable error (5xx, 429, connection refused); OpenCode
    /// retries forever with backoff, so the hub has to decide when to abort.
    Retry {
        #[serde(default)]
        attempt: u32,
        #[serde(default)]
        message: String,
        /// When the next attempt happens, ms since the epoch.
        #[serde(default)]
        next: Option<i64>,
    },
}

/// `permission.asked` payload and `GET /permission` entries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PermissionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// `external_directory`, `bash`, `edit`, `doom_loop`, …
    pub permission: String,
    pub patterns: Vec<String>,
    pub metadata: Value,
    /// Patterns that an `always` reply would allow from now on.
    pub always: Vec<String>,
    /// `{"messageID","callID"}` of the tool call waiting for the answer.
    pub tool: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionReplyKind {
    Once,
    Always,
    Reject,
}
