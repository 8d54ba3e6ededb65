//! The five task tools by name: a tool name and its JSON arguments in, a [`ToolReply`] out.
//! This is the one door both front ends use — the MCP server (`orchestra-mcp`, over stdio and
//! Streamable HTTP) and the HTTP API's `POST /api/v1/tools/{name}` — so a call answers the same
//! through either.
//!
//! Bad arguments (a misspelled enum, a missing field) and refusals come back as replies with
//! `is_error` whose text names the field and the fix, which a model can act on, never as a
//! protocol error or a panic.

use orchestra_protocol::{
    JobStatus, TaskAwaitParams, TaskCancelParams, TaskListParams, TaskPeekParams, TaskStartParams,
    ToolReply,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{TaskEngine, TaskError};

/// One tool call on the engine. `client` is the caller's name, recorded as the job's
/// `requestedBy` (e.g. "opencode").
pub async fn call(
    engine: &TaskEngine,
    name: &str,
    args: Value,
    client: Option<String>,
) -> ToolReply {
    reply(dispatch(engine, name, args, client).await)
}

/// One tool call of the hub's worker endpoint (`/mcp/worker`): `task_start` with the memory
/// ops only, answered with the op's result (see [`TaskEngine::start_for_worker`]).
pub async fn call_for_worker(engine: &TaskEngine, name: &str, args: Value) -> ToolReply {
    if name != "task_start" {
        return reply(Err(format!(
            "unknown tool `{name}`; a worker has one tool here, task_start, for the memory ops"
        )));
    }
    let params: TaskStartParams = match parse(name, args) {
        Ok(params) => params,
        Err(text) => return reply(Err(text)),
    };
    match engine.start_for_worker(params).await {
        Ok(answer) => ToolReply {
            is_error: answer.status != JobStatus::Succeeded,
            text: to_json(&answer),
        },
        Err(err) => reply(Err(explain(err))),
    }
}

fn reply(outcome: Result<String, String>) -> ToolReply {
    match outcome {
        Ok(text) => ToolReply {
            text,
            is_error: false,
        },
        Err(text) => ToolReply {
            text,
            is_error: true,
        },
    }
}

async fn dispatch(
    engine: &TaskEngine,
    name: &str,
    args: Value,
    client: Option<String>,
) -> Result<String, String> {
    match name {
        "task_start" => {
            let params: TaskStartParams = parse(name, args)?;
            let result = engine.start(params, client).await.map_err(explain)?;
            Ok(to_json(&result))
        }
        "task_await" => {
            let params: TaskAwaitParams = parse(name, args)?;
            let answer = engine.await_tasks(&params).await.map_err(explain)?;
            Ok(to_json(&answer))
        }
        "task_peek" => {
            let params: TaskPeekParams = parse(name, args)?;
            let answer = engine.peek(&params).map_err(explain)?;
            Ok(to_json(&answer))
        }
        "task_list" => {
            let params: TaskListParams = parse(name, args)?;
            let listing = engine.list(&params).await.map_err(explain)?;
            Ok(listing.text)
        }
        "task_cancel" => {
            let params: TaskCancelParams = parse(name, args)?;
            let answer = engine.cancel(&params).await.map_err(explain)?;
            Ok(to_json(&answer))
        }
        other => Err(format!(
            "unknown tool `{other}`; the tools are task_start, task_await, task_peek, task_list and task_cancel"
        )),
    }
}

/// A tool's arguments read into its parameter type, naming the field that does not fit.
fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(args).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid arguments for {tool}: {inner}; see the tool's input schema")
        } else {
            format!("invalid argument `{path}` for {tool}: {inner}; see the tool's input schema")
        }
    })
}

fn explain(err: TaskError) -> String {
    err.to_string()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
