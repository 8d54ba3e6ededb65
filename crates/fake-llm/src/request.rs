//! Reading an OpenAI chat-completions request body into the facts tests and scripts care about.

use std::time::Instant;

use serde_json::Value;

/// What a responder sees of one chat-completions request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Value>,
    /// First text part of the last `role:"user"` message. OpenCode appends `<system-reminder>` text parts to user
    /// messages, so only the first part reliably holds what the test typed.
    pub last_user_text: String,
    /// Content of the last message when that message is a `role:"tool"` result, else `None`.
    pub last_tool_result: Option<String>,
    /// Number of `image_url` content parts across all messages.
    pub image_parts: usize,
    /// `tools[].function.name`, in request order.
    pub tool_names: Vec<String>,
    /// Text of all `role:"system"` messages, joined with a blank line.
    pub system_prompt: String,
    pub body: Value,
}

/// One chat-completions request as the fake received it, plus how its response ended.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Sequence number since the server started (0-based). Not reset by `clear_requests`.
    pub index: usize,
    pub received_at: Instant,
    pub model: String,
    pub stream: bool,
    pub body: Value,
    pub messages: Vec<Value>,
    pub image_parts: usize,
    /// First text part of the last user message.
    pub last_user_text: String,
    pub tool_names: Vec<String>,
    /// Set when the client hung up before the response finished.
    pub disconnected_at: Option<Instant>,
    /// Set when the response (stream or JSON) was fully handed to the client.
    pub completed_at: Option<Instant>,
    pub system_prompt: String,
    /// The HTTP headers of the request (names in lower case), e.g. `authorization`.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl ChatRequest {
    pub(crate) fn from_body(body: Value) -> ChatRequest {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let last_user_text = messages
            .iter()
            .rev()
            .find(|m| role_of(m) == "user")
            .map(first_text_part)
            .unwrap_or_default();
        let last_tool_result = messages
            .last()
            .filter(|m| role_of(m) == "tool")
            .map(|m| all_text(m.get("content")));
        let image_parts = messages.iter().map(count_image_parts).sum();
        let tool_names = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let system_prompt = messages
            .iter()
            .filter(|m| role_of(m) == "system")
            .map(|m| all_text(m.get("content")))
            .collect::<Vec<_>>()
            .join("\n\n");
        ChatRequest {
            model,
            messages,
            last_user_text,
            last_tool_result,
            image_parts,
            tool_names,
            system_prompt,
            body,
        }
    }

    pub(crate) fn stream(&self) -> bool {
        self.body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub(crate) fn record(
        &self,
        index: usize,
        received_at: Instant,
        headers: Vec<(String, String)>,
    ) -> RecordedRequest {
        RecordedRequest {
            index,
            received_at,
            model: self.model.clone(),
            stream: self.stream(),
            body: self.body.clone(),
            messages: self.messages.clone(),
            image_parts: self.image_parts,
            last_user_text: self.last_user_text.clone(),
            tool_names: self.tool_names.clone(),
            disconnected_at: None,
            completed_at: None,
            system_prompt: self.system_prompt.clone(),
            headers,
        }
    }
}

fn role_of(message: &Value) -> &str {
    message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `content` is either a plain string or an array of typed parts.
fn first_text_part(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .find(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .and_then(|p| p.get("text").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

fn all_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn count_image_parts(message: &Value) -> usize {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_first_text_part_of_last_user_message_and_counts_images() {
        let req = ChatRequest::from_body(json!({
            "model": "fake-model", "stream": true,
            "messages": [
                {"role": "system", "content": "sys one"},
                {"role": "user", "content": "old"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": [
                    {"type": "text", "text": "SLOW:3 now"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    {"type": "text", "text": "<system-reminder>plan</system-reminder>"}
                ]}
            ],
            "tools": [{"type": "function", "function": {"name": "bash"}},
                      {"type": "function", "function": {"name": "write"}}]
        }));
        assert_eq!(req.last_user_text, "SLOW:3 now");
        assert_eq!(req.image_parts, 1);
        assert_eq!(req.tool_names, ["bash", "write"]);
        assert_eq!(req.system_prompt, "sys one");
        assert_eq!(req.last_tool_result, None);
        assert!(req.stream());
    }

    #[test]
    fn tool_result_is_seen_only_when_last() {
        let req = ChatRequest::from_body(json!({"messages": [
            {"role": "user", "content": "CALL_TOOL:x {}"},
            {"role": "assistant", "content": "", "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}
        ]}));
        assert_eq!(req.last_tool_result.as_deref(), Some("done"));
        assert_eq!(req.last_user_text, "CALL_TOOL:x {}");
    }
}
