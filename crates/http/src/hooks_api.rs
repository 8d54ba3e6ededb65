//! The routes Orchestra's OpenCode plugin calls, one per hook (`/api/v1/hooks/*`). Each hands
//! the hook's arguments to `orchestra_core::chat::ChatHooks` and answers with the edit the
//! plugin applies to the hook's output. The plugin gives up on any call whose headers take
//! longer than 150 ms, so every route answers at once; the vision analysis sends its headers
//! at once and its answer as the body, and says in [`BODY_WAIT_HEADER`] how long to wait for it.
//!
//! | route | hook | answer |
//! |---|---|---|
//! | `POST /api/v1/hooks/chat-message` | `chat.message` | [`ChatMessageReply`]: parts to replace (an image's description, a passthrough answer) |
//! | `POST /api/v1/hooks/system` | `experimental.chat.system.transform` | [`SystemReply`]: the memory block, the running-task line |
//! | `POST /api/v1/hooks/compacting` | `experimental.session.compacting` | [`CompactingReply`]: pinned memory, running tasks |
//! | `POST /api/v1/hooks/tool-before` | `tool.execute.before` | [`ToolBeforeReply`]: arguments to add |
//! | `POST /api/v1/hooks/tool-after` | `tool.execute.after` (when asked) | `{}` |
//! | `POST /api/v1/hooks/event` | `event` (`session.status`, `session.idle`, `session.deleted`) | `{}` |
//! | `GET /api/v1/hooks/deliveries` | — | NDJSON [`Delivery`] lines for the instance's sessions, a blank line as keep-alive |

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use orchestra_protocol::hooks::{
    BODY_WAIT_HEADER, ChatMessageHook, ChatMessageReply, CompactingHook, CompactingReply, Delivery,
    PLUGIN_INSTANCE_HEADER, SessionEventHook, SystemHook, SystemReply, ToolAfterHook,
    ToolBeforeHook,
};
use serde_json::json;

use orchestra_core::chat::PassthroughTurn;

use crate::AppState;
use crate::error::{ApiFailure, parse_body};

/// A blank line this often keeps the delivery stream's connection alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The plugin instance a call comes from (one per OpenCode process and project).
fn instance(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(PLUGIN_INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100)
}

pub async fn chat_message(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let hook: ChatMessageHook = parse_body(&body, "the chat.message hook")?;
    match app.chat.passthrough_turn(&hook) {
        Some(PassthroughTurn::Left(reply)) => return Ok(Json(reply).into_response()),
        Some(PassthroughTurn::Forward(job)) => {
            let chat = app.chat.clone();
            let wait = app.chat.passthrough_wait();
            return Ok(body_later(wait, async move { chat.forward(job).await }));
        }
        None => {}
    }
    let Some(job) = app.chat.chat_message(instance(&headers), hook) else {
        return Ok(Json(ChatMessageReply::default()).into_response());
    };
    let wait = app.chat.vision_wait();
    let chat = app.chat.clone();
    Ok(body_later(wait, async move { chat.describe(job).await }))
}

/// Headers now, the answer when `reply` is ready: the plugin's 150 ms limit applies to the
/// headers only, so a hub that is down is told apart from one that is working.
fn body_later(
    wait: Duration,
    reply: impl std::future::Future<Output = ChatMessageReply> + Send + 'static,
) -> Response {
    let answer = stream::once(async move {
        let bytes = serde_json::to_vec(&reply.await).unwrap_or_else(|_| b"{}".to_vec());
        Ok::<Bytes, Infallible>(Bytes::from(bytes))
    });
    let mut response = Response::new(Body::from_stream(answer));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(BODY_WAIT_HEADER, HeaderValue::from(wait_ms(wait)));
    response
}

fn wait_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
}

pub async fn system(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let hook: SystemHook = parse_body(&body, "the system prompt hook")?;
    let Some(session_id) = hook.session_id else {
        return Ok(Json(SystemReply::default()).into_response());
    };
    let running = app.chat.system_lines(&session_id, instance(&headers));
    let query = app.chat.memory_query(&session_id).unwrap_or_default();
    let mut system: Vec<String> = app.chat.memory_block(&query).await.into_iter().collect();
    system.extend(app.chat.passthrough_line(&session_id));
    // The running-task line changes as tasks come and go: last, after what providers cache.
    system.extend(running);
    Ok(Json(SystemReply { system }).into_response())
}

pub async fn compacting(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let hook: CompactingHook = parse_body(&body, "the compaction hook")?;
    // The block for no particular task: the pinned records (and the project summary).
    let mut context: Vec<String> = app.chat.memory_block("").await.into_iter().collect();
    context.extend(app.chat.compaction_lines(&hook.session_id));
    Ok(Json(CompactingReply { context }).into_response())
}

pub async fn tool_before(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let hook: ToolBeforeHook = parse_body(&body, "the tool.execute.before hook")?;
    Ok(Json(app.chat.tool_before(instance(&headers), &hook)).into_response())
}

pub async fn tool_after(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let hook: ToolAfterHook = parse_body(&body, "the tool.execute.after hook")?;
    app.chat.tool_after(&hook);
    Ok(Json(json!({})).into_response())
}

pub async fn event(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let hook: SessionEventHook = parse_body(&body, "the event hook")?;
    app.chat.session_event(instance(&headers), &hook);
    Ok(Json(json!({})).into_response())
}

/// The plugin instance's deliveries as NDJSON, for as long as it stays connected.
pub async fn deliveries(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(instance) = instance(&headers) else {
        return ApiFailure::bad_request(format!(
            "the delivery stream needs the `{PLUGIN_INSTANCE_HEADER}` header naming the plugin instance (any id up to 100 characters, the same on every hook call)"
        ))
        .into_response();
    };
    let deliveries = app.chat.connect(instance);
    let presence = app.activity.enter_stream();
    let stop = app.stop.clone();
    let lines = stream::unfold(
        (deliveries, presence, stop),
        |(mut deliveries, presence, stop)| async move {
            let line = tokio::select! {
                () = stop.cancelled() => return None,
                delivery = deliveries.next() => ndjson(&delivery?),
                () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b"\n"),
            };
            Some((Ok::<Bytes, Infallible>(line), (deliveries, presence, stop)))
        },
    );
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn ndjson(delivery: &Delivery) -> Bytes {
    let mut line = serde_json::to_vec(delivery).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
