//! The MCP face of Open Orchestra: the five task tools, over stdio (`orchestra mcp`, which
//! relays to the project's hub) and over Streamable HTTP (served by the hub itself).
//!
//! Tools are listed here and dispatched by name through core's `tasks::tools` (the door the
//! HTTP API's `/api/v1/tools/{name}` uses too) rather than through rmcp's `#[tool]` macros, so
//! that bad arguments (a misspelled enum, a missing field) come back as tool results with
//! `isError: true` naming the field and the fix, which a model can act on, instead of JSON-RPC
//! protocol errors. Input schemas are generated from the protocol crate's types.
//!
//! Invariant: nothing here writes to stdout except the rmcp transport.

use std::sync::Arc;
use std::time::Duration;

use orchestra_core::tasks::{TaskEngine, tools};
use orchestra_protocol::{
    TaskAwaitParams, TaskCancelParams, TaskListParams, TaskPeekParams, TaskStartParams, ToolReply,
};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const SERVER_NAME: &str = "orchestra";

/// A comment line on an idle Streamable HTTP event stream this often, so proxies and clients
/// do not take a quiet session for a dead one.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

const INSTRUCTIONS: &str = "Open Orchestra runs tasks on specialised OpenCode workers (coder, architect, \
explorer, docs, vision, memory). Call task_start to begin work (it returns a taskId at once), then \
task_await to collect the result; task_await waits at most about 45 s and returns the record still \
`running` when the task needs longer, so call it again. task_peek shows progress without waiting, \
task_cancel stops the worker's model, task_list shows tasks, workers, profiles and models.";

const WORKER_INSTRUCTIONS: &str = "The project's memory, for the memory worker: call task_start \
with kind \"op\" and a memory op (memory.search, memory.get, memory.put, memory.link, \
memory.forget, memory.done); the answer is the op's result.";

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the MCP transport failed: {0}")]
    Transport(#[from] std::io::Error),
    #[error("the MCP session with the client ended with an error: {0}")]
    Session(String),
}

/// Where tool calls go: the hub's engine in this process, or the project's hub over HTTP
/// (the stdio relay), or nowhere with a reason.
pub trait ToolBackend: Send + Sync + 'static {
    /// Runs one tool call. `client` is the MCP client's name (recorded as `requestedBy`).
    fn call(
        &self,
        name: String,
        args: Value,
        client: Option<String>,
    ) -> futures_util::future::BoxFuture<'static, ToolReply>;
}

/// The tools answered by a task engine in this process.
#[derive(Clone)]
pub struct EngineTools(pub Arc<TaskEngine>);

impl ToolBackend for EngineTools {
    fn call(
        &self,
        name: String,
        args: Value,
        client: Option<String>,
    ) -> futures_util::future::BoxFuture<'static, ToolReply> {
        let engine = self.0.clone();
        Box::pin(async move { tools::call(&engine, &name, args, client).await })
    }
}

/// The tools of the hub's worker endpoint (`/mcp/worker`): `task_start` with the memory ops
/// only, answered with the op's result (see [`TaskEngine::start_for_worker`]). Only the memory
/// worker's agent is given these tools.
#[derive(Clone)]
pub struct WorkerTools(pub Arc<TaskEngine>);

impl ToolBackend for WorkerTools {
    fn call(
        &self,
        name: String,
        args: Value,
        _client: Option<String>,
    ) -> futures_util::future::BoxFuture<'static, ToolReply> {
        let engine = self.0.clone();
        Box::pin(async move { tools::call_for_worker(&engine, &name, args).await })
    }
}

/// Every call fails with one reason: the hub could not start (a malformed config, say). The
/// server still comes up so the model reads why on every call, instead of OpenCode only
/// reporting that the MCP server failed.
pub struct Unavailable(pub String);

impl ToolBackend for Unavailable {
    fn call(
        &self,
        _name: String,
        _args: Value,
        _client: Option<String>,
    ) -> futures_util::future::BoxFuture<'static, ToolReply> {
        let text = format!("Open Orchestra could not start: {}", self.0);
        Box::pin(async move {
            ToolReply {
                text,
                is_error: true,
            }
        })
    }
}

/// The MCP server: the five tools, dispatched to a backend.
#[derive(Clone)]
pub struct OrchestraMcp {
    backend: Arc<dyn ToolBackend>,
    tools: Arc<Vec<Tool>>,
    instructions: &'static str,
}

impl OrchestraMcp {
    pub fn new(backend: Arc<dyn ToolBackend>) -> OrchestraMcp {
        OrchestraMcp {
            backend,
            tools: Arc::new(tool_list()),
            instructions: INSTRUCTIONS,
        }
    }

    /// The worker endpoint's server: one tool, `task_start`, for the memory ops.
    pub fn worker(engine: Arc<TaskEngine>) -> OrchestraMcp {
        OrchestraMcp {
            backend: Arc::new(WorkerTools(engine)),
            tools: Arc::new(vec![Tool::new(
                "task_start",
                "Run a memory op on the project's memory and get its result: kind \"op\", op \
                 memory.search | memory.get | memory.put | memory.link | memory.forget | memory.done, \
                 with its arguments in `memory` (key, value, kind, title, tags, entities, supersedes, \
                 fromKey, toKey, relation, query, taskId, summary, storedKeys, linkedKeys). Nothing \
                 else runs here.",
                schema_for_type::<TaskStartParams>(),
            )]),
            instructions: WORKER_INSTRUCTIONS,
        }
    }

    /// The hub's `/mcp` endpoint over Streamable HTTP: the five tools on its engine, a server
    /// per session, until `stop`.
    pub fn http_tools(engine: Arc<TaskEngine>, stop: CancellationToken) -> axum::Router {
        streamable_http(
            move || OrchestraMcp::new(Arc::new(EngineTools(engine.clone()))),
            stop,
        )
    }

    /// The hub's `/mcp/worker` endpoint over Streamable HTTP: the memory ops, until `stop`.
    pub fn http_worker(engine: Arc<TaskEngine>, stop: CancellationToken) -> axum::Router {
        streamable_http(move || OrchestraMcp::worker(engine.clone()), stop)
    }

    /// Serves MCP on stdin/stdout until the client disconnects.
    pub async fn serve_stdio(self) -> Result<(), McpError> {
        let service = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| McpError::Session(e.to_string()))?;
        service
            .waiting()
            .await
            .map_err(|e| McpError::Session(e.to_string()))?;
        Ok(())
    }
}

fn tool_list() -> Vec<Tool> {
    vec![
        Tool::new(
            "task_start",
            "Start a background task on a worker (kind \"worker\" with workerId, or \"auto\" to pick one \
             from the task). Returns a taskId at once; collect the result with task_await.",
            schema_for_type::<TaskStartParams>(),
        ),
        Tool::new(
            "task_await",
            "Wait for one task (taskId) or several (taskIds) and return their records. Waits at most \
             timeoutMs, capped at about 45 s; a task still running is returned with status \"running\": \
             call task_await again.",
            schema_for_type::<TaskAwaitParams>(),
        ),
        Tool::new(
            "task_peek",
            "Return the current record of one or more tasks without waiting: status, progress (tool \
             calls, latest output), tokens and cost.",
            schema_for_type::<TaskPeekParams>(),
        ),
        Tool::new(
            "task_list",
            "List tasks, workers, profiles, models, workflows, status or output (view), as markdown or json.",
            schema_for_type::<TaskListParams>(),
        ),
        Tool::new(
            "task_cancel",
            "Cancel tasks: the worker's OpenCode session is aborted, so its model really stops.",
            schema_for_type::<TaskCancelParams>(),
        ),
    ]
}

/// An endpoint serving `server()` per session over Streamable HTTP, as a router that answers
/// every path below where it is nested.
fn streamable_http(
    server: impl Fn() -> OrchestraMcp + Send + Sync + 'static,
    stop: CancellationToken,
) -> axum::Router {
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = stop;
    config.sse_keep_alive = Some(SSE_KEEP_ALIVE);
    let service = StreamableHttpService::new(
        move || Ok(server()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().fallback_service(service)
}

/// Why a `tools/call` that rmcp could not read is malformed: a JSON-RPC error that names the
/// offending field, instead of rmcp's bare "method not found".
fn malformed_call(params: Option<&Value>) -> String {
    let kind = orchestra_core::config::json_kind;
    let tools = "task_start, task_await, task_peek, task_list or task_cancel";
    let Some(params) = params else {
        return format!("tools/call needs params {{name, arguments}}; name one of {tools}");
    };
    let Some(object) = params.as_object() else {
        return format!(
            "tools/call params must be an object {{name, arguments}}, got {}",
            kind(params)
        );
    };
    match object.get("name") {
        None => return format!("tools/call params have no `name`; name one of {tools}"),
        Some(Value::String(_)) => {}
        Some(other) => {
            return format!(
                "tools/call `name` must be a string ({tools}), got {}",
                kind(other)
            );
        }
    }
    match object.get("arguments") {
        Some(arguments) if !arguments.is_object() && !arguments.is_null() => format!(
            "tools/call `arguments` must be an object of the tool's arguments, got {}",
            kind(arguments)
        ),
        _ => "tools/call params could not be read; send {\"name\": <tool>, \"arguments\": {…}}"
            .to_owned(),
    }
}

impl ServerHandler for OrchestraMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        // rmcp hands over requests it could not parse as one of its own; for `tools/call` that
        // means malformed params.
        if request.method == "tools/call" {
            return Err(ErrorData::invalid_params(
                malformed_call(request.params.as_ref()),
                None,
            ));
        }
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("unknown method `{}`", request.method),
            None,
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        // Recorded as the job's `requestedBy`, e.g. "opencode".
        let client = context
            .peer
            .peer_info()
            .map(|info| info.client_info.name.clone());
        let reply = self
            .backend
            .call(request.name.to_string(), args, client)
            .await;
        let result = if reply.is_error {
            tracing::info!(tool = %request.name, message = %reply.text, "tool call refused");
            CallToolResult::error(vec![ContentBlock::text(reply.text)])
        } else {
            CallToolResult::success(vec![ContentBlock::text(reply.text)])
        };
        Ok(result.into())
    }
}
