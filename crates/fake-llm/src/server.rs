//! HTTP routes of the fake and the execution of a [`Script`] as an SSE stream or a JSON reply.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;

use super::directives::default_script;
use super::request::ChatRequest;
use super::wire::{
    Completion, SSE_DONE, ToolCallOut, Usage, error_json, split_fragments, split_words, sse_data,
};
use super::{Script, Shared, Step};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(not_found)
        .with_state(shared)
}

async fn list_models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<_> = shared
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "orchestra-fake-llm"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn not_found() -> Response {
    error_response(
        404,
        "fake LLM serves only GET /v1/models and POST /v1/chat/completions",
    )
}

fn error_response(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(error_json(status, message))).into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(400, &format!("request body is not JSON: {e}"));
        }
    };
    let req = ChatRequest::from_body(body);
    let index = shared.record(&req, header_pairs(&headers));
    let mut guard = ResponseGuard {
        shared: shared.clone(),
        index,
        settled: false,
    };
    // The responder runs outside any lock; a None falls back to the default rules.
    let script = shared
        .responder()
        .and_then(|respond| respond(&req))
        .unwrap_or_else(|| default_script(&req, shared.directives));
    let mut shutdown = shared.shutdown.clone();

    // An error must decide the status line, so the leading delays are served before any header.
    let mut steps: VecDeque<Step> = script.steps.into();
    while let Some(Step::Delay(d)) = steps.front() {
        let d = *d;
        steps.pop_front();
        if !sleep_unless_shutdown(d, &mut shutdown).await {
            guard.settled = true;
            return error_response(503, "fake LLM is shutting down");
        }
    }
    if let Some(Step::HttpError { status, message }) = steps.front() {
        let response = error_response(*status, message);
        guard.complete();
        return response;
    }
    let script = Script {
        steps: steps.into(),
    };
    let prompt_chars = req.messages.iter().map(|m| m.to_string().len()).sum();
    let completion = Completion::new(index, &req.model);
    if req.stream() {
        let actions = stream_actions(&completion, script, prompt_chars);
        streaming_response(actions, guard, shutdown)
    } else {
        json_response(&completion, script, prompt_chars, guard, shutdown).await
    }
}

/// Header names (lower case) and values, for tests that check what the client sent (which API
/// key, for instance). Values that are not text are kept lossily.
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Marks how the response to one recorded request ended. Dropped without being settled means the
/// client went away (hyper drops the handler future or the body stream when the connection dies).
struct ResponseGuard {
    shared: Arc<Shared>,
    index: usize,
    settled: bool,
}

impl ResponseGuard {
    fn complete(&mut self) {
        if !self.settled {
            self.settled = true;
            self.shared.mark_completed(self.index);
        }
    }

    /// The server itself ended the response early (CutStream, shutdown): neither outcome is recorded.
    fn server_ended(&mut self) {
        self.settled = true;
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.mark_disconnected(self.index);
        }
    }
}

/// False when the server began shutting down during the sleep.
async fn sleep_unless_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

enum Action {
    Sleep(Duration),
    Send(Bytes),
    Cut,
}

fn stream_actions(
    completion: &Completion,
    script: Script,
    prompt_chars: usize,
) -> VecDeque<Action> {
    let mut actions = VecDeque::from([Action::Send(completion.role_chunk())]);
    let mut completion_chars = 0;
    let mut tool_calls = 0;
    let mut usage_override = None;
    for step in script.steps {
        match step {
            Step::Delay(d) => actions.push_back(Action::Sleep(d)),
            Step::Text(text) => {
                completion_chars += text.len();
                for word in split_words(&text) {
                    actions.push_back(Action::Send(completion.content_chunk(word)));
                }
            }
            Step::TextChunks { chunks, gap } => {
                for chunk in chunks {
                    if !gap.is_zero() {
                        actions.push_back(Action::Sleep(gap));
                    }
                    completion_chars += chunk.len();
                    actions.push_back(Action::Send(completion.content_chunk(&chunk)));
                }
            }
            Step::ToolCall { name, arguments } => {
                let call = ToolCallOut {
                    id: format!("call_fake_{}_{tool_calls}", completion.request_index),
                    name,
                    arguments: arguments.to_string(),
                };
                completion_chars += call.arguments.len();
                actions.push_back(Action::Send(
                    completion.tool_call_start_chunk(tool_calls, &call),
                ));
                for fragment in split_fragments(&call.arguments) {
                    actions.push_back(Action::Send(
                        completion.tool_call_arguments_chunk(tool_calls, fragment),
                    ));
                }
                tool_calls += 1;
            }
            Step::HttpError { status, message } => {
                // Headers are gone already: OpenAI reports mid-stream failures as an error event.
                actions.push_back(Action::Send(sse_data(
                    &error_json(status, &message).to_string(),
                )));
                return actions;
            }
            Step::CutStream => {
                actions.push_back(Action::Cut);
                return actions;
            }
            Step::Usage {
                prompt_tokens,
                completion_tokens,
            } => {
                usage_override = Some(Usage {
                    prompt_tokens,
                    completion_tokens,
                });
            }
        }
    }
    let usage = usage_override.unwrap_or_else(|| Usage::estimate(prompt_chars, completion_chars));
    let finish_reason = if tool_calls > 0 { "tool_calls" } else { "stop" };
    actions.push_back(Action::Send(completion.finish_chunk(finish_reason, usage)));
    actions.push_back(Action::Send(sse_data(SSE_DONE)));
    actions
}

struct StreamState {
    actions: VecDeque<Action>,
    guard: ResponseGuard,
    shutdown: watch::Receiver<bool>,
}

const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(20);

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "fake LLM cut the stream")
}

fn streaming_response(
    actions: VecDeque<Action>,
    guard: ResponseGuard,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let state = StreamState {
        actions,
        guard,
        shutdown,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            match st.actions.pop_front() {
                None => {
                    st.guard.complete();
                    return None;
                }
                Some(Action::Sleep(d)) => {
                    if !sleep_unless_shutdown(d, &mut st.shutdown).await {
                        st.guard.server_ended();
                        st.actions.clear();
                        return Some((Err(cut_error()), st));
                    }
                }
                Some(Action::Send(bytes)) => return Some((Ok(bytes), st)),
                Some(Action::Cut) => {
                    // A pending body makes hyper flush what it buffered, so the client gets the
                    // chunks (and the status line) before the connection dies.
                    tokio::time::sleep(FLUSH_BEFORE_CUT).await;
                    st.guard.server_ended();
                    st.actions.clear();
                    return Some((Err(cut_error()), st));
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| error_response(500, &format!("fake LLM built a bad response: {e}")))
}

async fn json_response(
    completion: &Completion,
    script: Script,
    prompt_chars: usize,
    mut guard: ResponseGuard,
    mut shutdown: watch::Receiver<bool>,
) -> Response {
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    let mut usage_override = None;
    for step in script.steps {
        match step {
            Step::Delay(d) => {
                if !sleep_unless_shutdown(d, &mut shutdown).await {
                    guard.server_ended();
                    return error_response(503, "fake LLM is shutting down");
                }
            }
            Step::Text(text) => content.push_str(&text),
            Step::TextChunks { chunks, gap } => {
                for chunk in chunks {
                    if !sleep_unless_shutdown(gap, &mut shutdown).await {
                        guard.server_ended();
                        return error_response(503, "fake LLM is shutting down");
                    }
                    content.push_str(&chunk);
                }
            }
            Step::ToolCall { name, arguments } => tool_calls.push(ToolCallOut {
                id: format!(
                    "call_fake_{}_{}",
                    completion.request_index,
                    tool_calls.len()
                ),
                name,
                arguments: arguments.to_string(),
            }),
            Step::HttpError { status, message } => {
                guard.complete();
                return error_response(status, &message);
            }
            Step::CutStream => {
                guard.server_ended();
                let body = futures_util::stream::once(async { Err::<Bytes, _>(cut_error()) });
                return Response::new(Body::from_stream(body));
            }
            Step::Usage {
                prompt_tokens,
                completion_tokens,
            } => {
                usage_override = Some(Usage {
                    prompt_tokens,
                    completion_tokens,
                });
            }
        }
    }
    let completion_chars =
        content.len() + tool_calls.iter().map(|c| c.arguments.len()).sum::<usize>();
    let usage = usage_override.unwrap_or_else(|| Usage::estimate(prompt_chars, completion_chars));
    let finish_reason = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let body = completion.full(&content, &tool_calls, finish_reason, usage);
    guard.complete();
    axum::Json(body).into_response()
}
