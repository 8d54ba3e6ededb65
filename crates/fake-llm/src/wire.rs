//! JSON shapes of OpenAI chat-completions responses, in the dialect OpenCode 1.18's
//! `@ai-sdk/openai-compatible` provider accepts.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde_json::{Value, json};

/// Identity shared by every chunk of one response.
pub(crate) struct Completion {
    pub request_index: usize,
    pub id: String,
    pub model: String,
    pub created: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

pub(crate) struct ToolCallOut {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl Completion {
    pub fn new(request_index: usize, model: &str) -> Completion {
        Completion {
            request_index,
            id: format!("chatcmpl-fake-{request_index}"),
            model: model.to_owned(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>, usage: Option<Usage>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage.to_json();
        }
        sse_data(&chunk.to_string())
    }

    pub fn role_chunk(&self) -> Bytes {
        self.chunk(json!({"role": "assistant", "content": ""}), None, None)
    }

    pub fn content_chunk(&self, text: &str) -> Bytes {
        self.chunk(json!({"content": text}), None, None)
    }

    pub fn tool_call_start_chunk(&self, index: usize, call: &ToolCallOut) -> Bytes {
        self.chunk(
            json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}]}),
            None,
            None,
        )
    }

    pub fn tool_call_arguments_chunk(&self, index: usize, fragment: &str) -> Bytes {
        self.chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            None,
            None,
        )
    }

    pub fn finish_chunk(&self, finish_reason: &str, usage: Usage) -> Bytes {
        self.chunk(json!({}), Some(finish_reason), Some(usage))
    }

    pub fn full(
        &self,
        content: &str,
        tool_calls: &[ToolCallOut],
        finish_reason: &str,
        usage: Usage,
    ) -> Value {
        let mut message = json!({"role": "assistant", "content": content});
        if !tool_calls.is_empty() {
            message["tool_calls"] = tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage.to_json(),
        })
    }
}

impl Usage {
    fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }

    /// Roughly four characters per token, never zero: enough for cost/usage plumbing tests.
    pub fn estimate(prompt_chars: usize, completion_chars: usize) -> Usage {
        let tokens = |chars: usize| (chars as u64).div_ceil(4).max(1);
        Usage {
            prompt_tokens: tokens(prompt_chars),
            completion_tokens: tokens(completion_chars),
        }
    }
}

pub(crate) fn sse_data(payload: &str) -> Bytes {
    Bytes::from(format!("data: {payload}\n\n"))
}

pub(crate) const SSE_DONE: &str = "[DONE]";

/// OpenAI-style error body: `{"error":{"message","type","code"}}`.
pub(crate) fn error_json(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("authentication_error", "invalid_api_key"),
        404 => ("invalid_request_error", "not_found"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        500..=599 => ("server_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request"),
    };
    json!({"error": {"message": message, "type": kind, "code": code}})
}

/// Word-sized pieces, so a single `Text` step still arrives as several deltas.
pub(crate) fn split_words(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

/// The JSON arguments string cut into up to three fragments on char boundaries.
pub(crate) fn split_fragments(arguments: &str) -> Vec<&str> {
    let chars = arguments.chars().count();
    if chars < 3 {
        return vec![arguments];
    }
    let boundary = |nth: usize| {
        arguments
            .char_indices()
            .nth(nth)
            .map(|(i, _)| i)
            .unwrap_or(arguments.len())
    };
    let (a, b) = (boundary(chars / 3), boundary(2 * chars / 3));
    vec![&arguments[..a], &arguments[a..b], &arguments[b..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_rejoin_to_the_original() {
        for s in ["", "{}", r#"{"a":"héllo wörld"}"#] {
            assert_eq!(split_fragments(s).concat(), s);
        }
        assert_eq!(split_fragments(r#"{"a":1}"#).len(), 3);
    }

    #[test]
    fn words_rejoin_to_the_original() {
        assert_eq!(split_words("ECHO: a b"), ["ECHO: ", "a ", "b"]);
    }
}
