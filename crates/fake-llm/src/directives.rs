//! The fake's default behaviour: an echo, or with [`Directives::On`] a reply chosen from
//! directives typed in the prompt.
//!
//! Checked in this order:
//! 1. system prompt starts with `You are a title generator` → `Fake title`;
//! 2. last message is `role:"tool"` → `TOOL_RESULT_SEEN: <tool content>`;
//! 3. only with [`Directives::On`], the earliest directive in the first text part of the last
//!    user message:
//!    * `CALL_TOOL:<name> <json args>` → one tool call (`{}` when no JSON follows);
//!    * `SLOW:<n>` → n chunks `chunk1 ` … `chunkn `, each after a 1 s pause;
//!    * `SLOWMS:<ms>:<n>` → the same with `ms` milliseconds pauses;
//!    * `DELAYMS:<ms>` → wait, then the echo of the text with the directive token removed;
//!    * `FAIL:<code>` → HTTP `<code>` with message `fake failure <code>`;
//!    * `CUT:<n>` → n chunks `chunk1 ` … then the connection is dropped (no finish chunk, no `[DONE]`);
//! 4. otherwise `ECHO: <text, first 200 chars>` plus ` IMAGES=<n>` when image parts are present.
//!
//! A directive token only counts at a word start (`XSLOW:3` is plain text). A malformed directive
//! (`SLOW:abc`) is treated as plain text and echoed.

use std::time::Duration;

use serde_json::Value;

use super::request::ChatRequest;
use super::{Directives, Script, Step};

const TITLE_GENERATOR_PREFIX: &str = "You are a title generator";
const ECHO_LIMIT_CHARS: usize = 200;
const DIRECTIVES: [&str; 6] = [
    "CALL_TOOL:",
    "SLOWMS:",
    "SLOW:",
    "DELAYMS:",
    "FAIL:",
    "CUT:",
];

pub(crate) fn default_script(req: &ChatRequest, directives: Directives) -> Script {
    if req
        .system_prompt
        .trim_start()
        .starts_with(TITLE_GENERATOR_PREFIX)
    {
        return Script::text("Fake title");
    }
    if let Some(result) = &req.last_tool_result {
        return Script::text(format!("TOOL_RESULT_SEEN: {result}"));
    }
    let text = req.last_user_text.as_str();
    let scripted = match directives {
        Directives::On => find_directive(text)
            .and_then(|(start, token)| directive_script(req, text, start, token)),
        Directives::Off => None,
    };
    scripted.unwrap_or_else(|| Script::text(echo(text, req.image_parts)))
}

/// Earliest directive token at a word start: (byte offset, token).
fn find_directive(text: &str) -> Option<(usize, &'static str)> {
    DIRECTIVES
        .iter()
        .filter_map(|token| {
            text.match_indices(token)
                .map(|(at, _)| at)
                .find(|&at| at_word_start(text, at))
                .map(|at| (at, *token))
        })
        .min_by_key(|(at, _)| *at)
}

fn at_word_start(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

fn directive_script(req: &ChatRequest, text: &str, start: usize, token: &str) -> Option<Script> {
    let after = &text[start + token.len()..];
    let word_end = after.find(char::is_whitespace).unwrap_or(after.len());
    let word = &after[..word_end];
    match token {
        "CALL_TOOL:" => {
            if word.is_empty() {
                return None;
            }
            let rest = after[word_end..].trim_start();
            let arguments = if rest.is_empty() {
                Value::Object(Default::default())
            } else {
                match serde_json::Deserializer::from_str(rest)
                    .into_iter::<Value>()
                    .next()
                {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        return Some(Script::text(format!(
                            "FAKE_LLM_BAD_DIRECTIVE: CALL_TOOL arguments are not JSON ({e})"
                        )));
                    }
                    None => Value::Object(Default::default()),
                }
            };
            Some(Script {
                steps: vec![Step::ToolCall {
                    name: word.to_owned(),
                    arguments,
                }],
            })
        }
        "SLOW:" => {
            let n = word.parse().ok()?;
            Some(numbered_chunks(n, Duration::from_secs(1)))
        }
        "SLOWMS:" => {
            let (ms, n) = word.split_once(':')?;
            Some(numbered_chunks(
                n.parse().ok()?,
                Duration::from_millis(ms.parse().ok()?),
            ))
        }
        "DELAYMS:" => {
            let ms: u64 = word.parse().ok()?;
            let without = format!("{}{}", &text[..start], &after[word_end..]);
            let without = without.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(Script {
                steps: vec![
                    Step::Delay(Duration::from_millis(ms)),
                    Step::Text(echo(&without, req.image_parts)),
                ],
            })
        }
        "FAIL:" => {
            let status: u16 = word.parse().ok()?;
            if !(100..=999).contains(&status) {
                return None;
            }
            Some(Script {
                steps: vec![Step::HttpError {
                    status,
                    message: format!("fake failure {status}"),
                }],
            })
        }
        "CUT:" => {
            let n: usize = word.parse().ok()?;
            let mut script = numbered_chunks(n, Duration::ZERO);
            script.steps.push(Step::CutStream);
            Some(script)
        }
        _ => None,
    }
}

fn numbered_chunks(n: usize, gap: Duration) -> Script {
    Script {
        steps: vec![Step::TextChunks {
            chunks: (1..=n).map(|i| format!("chunk{i} ")).collect(),
            gap,
        }],
    }
}

fn echo(text: &str, image_parts: usize) -> String {
    let truncated: String = text.chars().take(ECHO_LIMIT_CHARS).collect();
    if image_parts > 0 {
        format!("ECHO: {truncated} IMAGES={image_parts}")
    } else {
        format!("ECHO: {truncated}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script_for(text: &str) -> Vec<Step> {
        let req = ChatRequest::from_body(json!({"messages": [{"role": "user", "content": text}]}));
        default_script(&req, Directives::On).steps
    }

    #[test]
    fn with_directives_off_every_directive_is_echoed() {
        for text in [
            r#"CALL_TOOL:bash {"command":"rm -rf ~"}"#,
            "SLOW:3",
            "SLOWMS:10:2",
            "DELAYMS:50 hi",
            "FAIL:500",
            "CUT:1",
        ] {
            let req =
                ChatRequest::from_body(json!({"messages": [{"role": "user", "content": text}]}));
            assert_eq!(
                default_script(&req, Directives::Off).steps,
                [Step::Text(format!("ECHO: {text}"))],
                "{text}"
            );
        }
    }

    #[test]
    fn echo_is_default_and_truncated() {
        assert_eq!(script_for("hello"), [Step::Text("ECHO: hello".into())]);
        let long = "x".repeat(500);
        assert_eq!(
            script_for(&long),
            [Step::Text(format!("ECHO: {}", "x".repeat(200)))]
        );
    }

    #[test]
    fn earliest_directive_wins_and_rest_is_ignored() {
        assert_eq!(
            script_for("please FAIL:429 then SLOW:3"),
            [Step::HttpError {
                status: 429,
                message: "fake failure 429".into()
            }]
        );
        assert_eq!(
            script_for("SLOWMS:10:2 trailing words"),
            [Step::TextChunks {
                chunks: vec!["chunk1 ".into(), "chunk2 ".into()],
                gap: Duration::from_millis(10)
            }]
        );
    }

    #[test]
    fn directives_need_a_word_start_and_valid_numbers() {
        assert_eq!(script_for("XSLOW:3"), [Step::Text("ECHO: XSLOW:3".into())]);
        assert_eq!(
            script_for("SLOW:abc"),
            [Step::Text("ECHO: SLOW:abc".into())]
        );
    }

    #[test]
    fn call_tool_parses_first_json_value() {
        assert_eq!(
            script_for(r#"CALL_TOOL:write {"filePath":"/a","content":"hi"} extra"#),
            [Step::ToolCall {
                name: "write".into(),
                arguments: json!({"filePath": "/a", "content": "hi"})
            }]
        );
        assert_eq!(
            script_for("CALL_TOOL:todoread"),
            [Step::ToolCall {
                name: "todoread".into(),
                arguments: json!({})
            }]
        );
    }

    #[test]
    fn delayms_echoes_text_without_the_directive() {
        assert_eq!(
            script_for("say DELAYMS:50 hi there"),
            [
                Step::Delay(Duration::from_millis(50)),
                Step::Text("ECHO: say hi there".into())
            ]
        );
    }

    #[test]
    fn cut_sends_chunks_then_cuts() {
        assert_eq!(
            script_for("CUT:1"),
            [
                Step::TextChunks {
                    chunks: vec!["chunk1 ".into()],
                    gap: Duration::ZERO
                },
                Step::CutStream
            ]
        );
    }

    #[test]
    fn title_and_tool_results_take_precedence() {
        let title = ChatRequest::from_body(json!({"messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "SLOW:30"}]}));
        assert_eq!(
            default_script(&title, Directives::On).steps,
            [Step::Text("Fake title".into())]
        );
        let tool = ChatRequest::from_body(json!({"messages": [
            {"role": "user", "content": "FAIL:500"},
            {"role": "tool", "tool_call_id": "c", "content": "ok"}]}));
        assert_eq!(
            default_script(&tool, Directives::Off).steps,
            [Step::Text("TOOL_RESULT_SEEN: ok".into())]
        );
    }
}
