//! The hub's HTTP server: one listener on 127.0.0.1 serving the JSON API (`/api/v1`, the routes are
//! listed in `api.rs`; memory's in `memory_api.rs`; the panel's in `panel_api.rs`), the event
//! stream over SSE (`/api/v1/events`), MCP over Streamable HTTP (`/mcp`) for clients that connect
//! by URL, the worker MCP endpoint (`/mcp/worker`: the memory ops only, for the memory worker,
//! with a token of its own), and the control panel (`/`, `/assets/…`).
//!
//! The listener is bound first ([`HubServer::bind`]) so the hub knows its own URL — which its
//! worker servers are given for `/mcp/worker` — before it starts; then [`Bound::serve`].
//!
//! Every route goes through `auth::guard`: the hub's own `Host`, no foreign `Origin`, and
//! the token (bearer) or a browser session from a one-time login link (its cookie and its key). The server holds no
//! logic of its own: every answer comes from the task facade and the event bus of
//! `orchestra-core`.
//!
//! # Layout
//! - `auth`: token, login links, sessions, the request guard.
//! - `api`: JSON routes of the five tools and the listings.
//! - `memory_api`: the memory routes (their contract is at the top of the file).
//! - `hooks_api`: the routes Orchestra's OpenCode plugin calls, one per chat hook.
//! - `panel_api`: JSON routes for people: the inbox, worker restart, run controls, logs, config.
//! - `sse`: the event stream.
//! - `panel`: the control panel's page and assets, embedded in the binary.
//! - `page`: `/login`, login files, logout.
//! - `sessions`: browser sessions (cookie + header key, expiry, cap).
//! - `login_file`: the private HTML file `orchestra panel` opens instead of a link.
//! - `activity`: who is connected, for the idle stop; `mcp_sessions`: the open MCP-over-HTTP
//!   sessions it counts.
//! - `error`: JSON errors.

mod activity;
mod api;
mod auth;
mod error;
mod hooks_api;
mod login_file;
mod mcp_sessions;
mod memory_api;
mod notify_api;
mod page;
mod panel;
mod panel_api;
mod secrets;
mod sessions;
mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use orchestra_core::chat::ChatHooks;
use orchestra_core::hub::Hub;
use orchestra_core::tasks::TaskEngine;
use orchestra_core::workers::WorkerMcp;
use orchestra_protocol::now_ms;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use activity::Activity;
use auth::Access;
pub use sessions::{MAX_SESSIONS, SESSION_IDLE, SESSION_LIFETIME, SessionPolicy};

/// The worker MCP endpoint: `task_start` with the memory ops only.
pub const WORKER_MCP_PATH: &str = "/mcp/worker";

/// Request bodies up to this size: a task with base64 attachments (10 MiB each by default).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How often the idle stop looks at the hub.
const IDLE_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("could not listen on {addr}: {source}; is the port in use? choose another with --port")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Builds one MCP endpoint over Streamable HTTP on the hub's engine, as a router this server
/// nests at the endpoint's path behind its guard; `stop` ends the endpoint's sessions when the
/// server closes.
pub type McpEndpoint = Arc<dyn Fn(Arc<TaskEngine>, CancellationToken) -> Router + Send + Sync>;

/// The MCP endpoints this server carries. The binary that wires the hub hands them in
/// (`orchestra-mcp` makes them), so this crate and the MCP crate are peers over core's tool
/// door (`tasks::tools`) and neither depends on the other.
#[derive(Clone)]
pub struct McpServers {
    /// `/mcp`: the five task tools.
    pub tools: McpEndpoint,
    /// `/mcp/worker` ([`WORKER_MCP_PATH`]): the memory ops, for the memory worker.
    pub worker: McpEndpoint,
}

pub struct ServeOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Stop after this long with no client and no running job (`None`: never).
    pub idle_stop: Option<Duration>,
    /// The hub runs on the built-in fake model (shown in health).
    pub fake: bool,
    /// The hub's token; every request must carry it.
    pub token: String,
    pub mcp: McpServers,
    /// How long browser sessions live and how many there may be.
    pub sessions: SessionPolicy,
    /// The private folder login files are written in (the project's state folder); without
    /// one, `POST /api/v1/login/file` is refused.
    pub login_dir: Option<PathBuf>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    engine: Arc<TaskEngine>,
    /// What the OpenCode plugin's hooks do (`hooks_api`).
    chat: Arc<ChatHooks>,
    access: Arc<Access>,
    activity: Arc<Activity>,
    /// Canceled to stop the hub (API `shutdown`, idle stop); the owner of the server decides
    /// what stopping means.
    stop: CancellationToken,
    base_url: String,
    login_dir: Option<PathBuf>,
    started_at: i64,
    fake: bool,
}

/// The bytes a first visit to the panel downloads (every embedded file).
pub fn panel_weight() -> usize {
    panel::total_bytes()
}

/// A new random token for a hub (244 bits from the OS).
pub fn new_token() -> String {
    secrets::secret()
}

/// A running HTTP server for one hub.
pub struct HubServer {
    addr: SocketAddr,
    stop: CancellationToken,
    /// The server itself (`served`) and the idle stop; both end on `stop`, and `close` waits
    /// for them.
    tasks: TaskTracker,
    served: tokio::task::JoinHandle<()>,
}

/// A listener bound on 127.0.0.1, not serving yet: its URL and the worker endpoint's access are
/// known, so the hub can give them to its worker servers before it starts.
pub struct Bound {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    worker_token: String,
}

impl Bound {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// The worker MCP endpoint and its token (good for that endpoint only).
    pub fn worker_mcp(&self) -> WorkerMcp {
        WorkerMcp {
            url: format!("{}{WORKER_MCP_PATH}", self.url()),
            token: self.worker_token.clone(),
        }
    }

    /// Serves `hub` (its engine and chat hooks) until [`HubServer::close`]. Connections that
    /// came in since the bind wait in the listen queue and are served now.
    pub fn serve(self, hub: &Hub, options: ServeOptions) -> HubServer {
        let Bound {
            listener,
            addr,
            worker_token,
        } = self;
        let stop = CancellationToken::new();
        let state = AppState {
            chat: Arc::clone(hub.chat()),
            engine: Arc::clone(hub.engine()),
            access: Arc::new(Access::new(
                options.token,
                worker_token,
                addr.port(),
                options.sessions,
            )),
            activity: Activity::new(),
            stop: stop.clone(),
            base_url: format!("http://127.0.0.1:{}", addr.port()),
            login_dir: options.login_dir,
            started_at: now_ms(),
            fake: options.fake,
        };
        let tasks = TaskTracker::new();
        if let Some(idle) = options.idle_stop {
            tasks.spawn(idle_stop(state.clone(), idle));
        }
        let app = router(state, options.mcp, stop.child_token());
        let shutdown = stop.clone();
        let served = tasks.spawn(async move {
            // `into_make_service` hands each connection a clone of this router (one `Arc`).
            // Served as a plain `Router`, axum rebuilds the whole route table for every
            // connection instead: about 70 KB a connection, 4.4 MB of the hub's heap with the
            // 63 keep-alive connections of one busy relay (heaptrack, 1,000-task soak). The
            // routes are already turned into services by `with_state`, so requests cost the
            // same either way.
            let serving = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move { shutdown.cancelled().await });
            if let Err(err) = serving.await {
                tracing::error!(error = %err, "the hub's HTTP server failed");
            }
        });
        tasks.close();
        tracing::info!(%addr, "hub serving");
        HubServer {
            addr,
            stop,
            tasks,
            served,
        }
    }
}

impl HubServer {
    /// Binds 127.0.0.1 (`port` 0 picks a free one).
    pub async fn bind(port: u16) -> Result<Bound, HttpError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { addr, source })?;
        Ok(Bound {
            listener,
            addr,
            worker_token: secrets::secret(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves when something asked the hub to stop (the API's shutdown, the idle stop).
    pub async fn stop_requested(&self) {
        self.stop.cancelled().await;
    }

    /// Stops accepting requests, ends the event streams, and waits for the server to finish.
    pub async fn close(self) {
        self.stop.cancel();
        if let Err(err) = self.served.await {
            tracing::warn!(error = %err, "the hub's HTTP server task ended badly");
        }
        self.tasks.wait().await;
    }
}

fn router(state: AppState, servers: McpServers, mcp_stop: CancellationToken) -> Router {
    let worker_mcp = (servers.worker)(state.engine.clone(), mcp_stop.clone());
    let mcp = (servers.tools)(state.engine.clone(), mcp_stop).layer(
        axum::middleware::from_fn_with_state(state.activity.mcp_sessions(), mcp_sessions::track),
    );
    let v1 = Router::new()
        .route("/health", get(api::health))
        .route("/tools/{name}", post(api::tool))
        .route("/tasks", post(api::start_task))
        .route("/tasks/await", post(api::await_tasks))
        .route("/tasks/{id}", get(api::peek_task))
        .route("/tasks/{id}/cancel", post(api::cancel_task))
        .route("/list", post(api::list))
        .route("/workers", get(api::workers))
        .route("/runs", get(panel_api::runs))
        .route("/runs/{id}", get(api::run))
        .route("/runs/{id}/pause", post(panel_api::pause_run))
        .route("/runs/{id}/resume", post(panel_api::resume_run))
        .route("/runs/{id}/cancel", post(panel_api::cancel_run))
        .route("/tasks/{id}/events", get(panel_api::task_events))
        .route("/workers/{id}/restart", post(panel_api::restart_worker))
        .route("/questions", get(panel_api::questions))
        .route("/questions/{request_id}", post(panel_api::answer_question))
        .route("/logs", get(panel_api::logs))
        .route("/config", get(panel_api::config))
        .route("/notify/deliveries", get(notify_api::deliveries))
        .nest("/memory", memory_api::routes())
        .route("/events", get(sse::events))
        .route("/login", post(api::login))
        .route("/login/file", post(page::login_file))
        .route("/logout", post(page::logout))
        .route("/shutdown", post(api::shutdown))
        .route("/hooks/chat-message", post(hooks_api::chat_message))
        .route("/hooks/system", post(hooks_api::system))
        .route("/hooks/compacting", post(hooks_api::compacting))
        .route("/hooks/tool-before", post(hooks_api::tool_before))
        .route("/hooks/tool-after", post(hooks_api::tool_after))
        .route("/hooks/event", post(hooks_api::event))
        .route("/hooks/deliveries", get(hooks_api::deliveries))
        .fallback(api::no_route);
    Router::new()
        .route("/", get(panel::index))
        .route("/assets/{*path}", get(panel::asset))
        .route("/login", get(page::login))
        .nest("/api/v1", v1)
        .nest_service(WORKER_MCP_PATH, worker_mcp)
        .nest_service("/mcp", mcp)
        .fallback(api::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// Asks the hub to stop once nobody has used it for `idle` and no job runs.
async fn idle_stop(state: AppState, idle: Duration) {
    let mut tick = tokio::time::interval(IDLE_CHECK.min(idle));
    loop {
        tokio::select! {
            () = state.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let quiet = state.activity.idle_for().is_some_and(|d| d >= idle);
        if quiet && state.engine.running_count() == 0 {
            tracing::info!(
                idle_ms = idle.as_millis(),
                "no clients and no work: the hub stops"
            );
            state.stop.cancel();
            return;
        }
    }
}
