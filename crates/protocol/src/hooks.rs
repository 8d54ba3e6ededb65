//! What Orchestra's OpenCode plugin sends to the hub's `/api/v1/hooks/*` routes and what it gets
//! back. The plugin forwards OpenCode's hook arguments (`sessionID`, `callID`, … in OpenCode's
//! own spelling) and applies the answer to the hook's output without deciding anything itself.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The header that names the plugin instance (one per OpenCode process and project) a hook
/// call comes from; deliveries for a session go to the instance that last reported on it.
pub const PLUGIN_INSTANCE_HEADER: &str = "x-orchestra-plugin";

/// A hook answer whose body comes later (the vision analysis): how many milliseconds past the
/// response headers the plugin should wait for the body.
pub const BODY_WAIT_HEADER: &str = "x-orchestra-wait-ms";

/// A `provider/model` pair as OpenCode names it in hook inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    #[serde(rename = "providerID")]
    pub provider_id: String,
    #[serde(rename = "modelID")]
    pub model_id: String,
}

/// `POST /api/v1/hooks/chat-message`: OpenCode's `chat.message` hook, before the user's message
/// is stored and the model sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatMessageHook {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// The model named in the request, when the client named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// The message's model as OpenCode resolved it (`output.message.model`).
    #[serde(
        default,
        rename = "messageModel",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_model: Option<ModelRef>,
    /// The message's parts (`output.parts`): text, and files with `data:` URLs.
    #[serde(default)]
    pub parts: Vec<Value>,
}

/// One part of the message to replace (`output.parts[index] = part`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartReplacement {
    pub index: usize,
    pub part: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageReply {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<PartReplacement>,
}

/// `POST /api/v1/hooks/system`: `experimental.chat.system.transform`, before each model request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SystemHook {
    /// Absent when OpenCode builds a prompt outside a session (agent generation).
    #[serde(default, rename = "sessionID", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Lines appended to `output.system`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemReply {
    #[serde(default)]
    pub system: Vec<String>,
}

/// `POST /api/v1/hooks/compacting`: `experimental.session.compacting`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CompactingHook {
    #[serde(rename = "sessionID")]
    pub session_id: String,
}

/// Lines appended to `output.context`, which the summary keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompactingReply {
    #[serde(default)]
    pub context: Vec<String>,
}

/// `POST /api/v1/hooks/tool-before`: `tool.execute.before`, without the arguments (they can be
/// whole files; the hub does not need them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolBeforeHook {
    pub tool: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(default, rename = "callID")]
    pub call_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolBeforeReply {
    /// Merged into the tool's arguments (`Object.assign(output.args, args)`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub args: Map<String, Value>,
    /// Send this call's output to `tool-after` when it is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after: bool,
}

/// `POST /api/v1/hooks/tool-after`: the output of a call `tool-before` asked about.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolAfterHook {
    pub tool: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What the tool returned; for an MCP tool `{content: [{type: "text", text}], …}`.
    #[serde(default)]
    pub output: Value,
}

/// `POST /api/v1/hooks/event`: an OpenCode bus event the plugin forwards (`session.status`,
/// `session.idle`, `session.deleted`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionEventHook {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub properties: Value,
}

/// One line of `GET /api/v1/hooks/deliveries` (NDJSON): text the plugin adds to a session as a
/// user message without a reply (`client.session.prompt({noReply: true})`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub text: String,
    /// The tasks whose results the text carries.
    #[serde(default, rename = "taskIds")]
    pub task_ids: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hook_bodies_use_opencodes_spelling() {
        let hook: ChatMessageHook = serde_json::from_value(serde_json::json!({
            "sessionID": "ses_1",
            "messageModel": {"providerID": "fake", "modelID": "fake-text"},
            "parts": [{"type": "text", "text": "hi"}],
        }))
        .unwrap();
        assert_eq!(hook.session_id, "ses_1");
        assert_eq!(hook.message_model.unwrap().model_id, "fake-text");
        let reply = ToolBeforeReply {
            args: Map::new(),
            after: false,
        };
        assert_eq!(serde_json::to_value(reply).unwrap(), serde_json::json!({}));
    }
}
