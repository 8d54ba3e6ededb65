//! The JSON API under `/api/v1`: everything the five tools and the CLI's listings do.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/health` | which hub, which project, how busy ([`HubHealth`]) |
//! | `POST /api/v1/tools/{name}` | one MCP tool call with the tool's arguments as the body ([`ToolReply`]) |
//! | `POST /api/v1/tasks` | `task_start` ([`TaskStartParams`]) |
//! | `POST /api/v1/tasks/await` | `task_await`, bounded by `tasks.awaitCapMs` |
//! | `GET /api/v1/tasks/{id}` | `task_peek` of one task |
//! | `POST /api/v1/tasks/{id}/cancel` | `task_cancel` (`{"reason": …}`) |
//! | `POST /api/v1/list` | any `task_list` view ([`TaskListParams`]) as `{format, json, text}` |
//! | `GET /api/v1/workers` | the workers now |
//! | `GET /api/v1/runs/{id}` | one workflow run |
//! | `/api/v1/memory/*` | memory: search, records, context, export, import (see `memory_api.rs`) |
//! | `GET /api/v1/events` | the event stream (SSE, `Last-Event-ID` replay; `?job=` filters; `?presence=true` sends none) |
//! | `POST /api/v1/login` | a one-time login link for a browser ([`LoginLink`]) |
//! | `POST /api/v1/shutdown` | stop the hub |
//! | `/api/v1/hooks/*` | the OpenCode plugin's hooks (`hooks_api.rs` lists them) |
//!
//! The routes people use through the panel (questions, worker restart, run controls, a task's
//! events, logs, config) are listed in `panel_api.rs`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use orchestra_core::tasks::tools;
use orchestra_protocol::{
    HubHealth, LoginLink, TaskAwaitParams, TaskCancelParams, TaskListParams, TaskPeekParams,
    TaskStartParams, WorkerSnapshot, now_ms,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiFailure, parse_body};
use crate::secrets::LOGIN_LINK_TTL;

/// The MCP client (or other caller) a request comes from, recorded as `requestedBy`.
pub(crate) fn caller(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-orchestra-client")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(80).collect())
}

pub async fn health(State(app): State<AppState>) -> Json<HubHealth> {
    let engine = &app.engine;
    Json(HubHealth {
        hub_id: engine.hub_id().to_owned(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        project_dir: engine.project_dir().display().to_string(),
        started_at: app.started_at,
        fake: app.fake,
        running: engine.running_count(),
        clients: app.activity.clients(),
        plugins: app.chat.connected_plugins(),
        last_event_id: engine.bus().last_id(),
    })
}

pub async fn tool(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let args: Value = match parse_body(&body, &format!("tool `{name}`")) {
        Ok(args) => args,
        Err(failure) => return failure.into_response(),
    };
    Json(tools::call(&app.engine, &name, args, caller(&headers)).await).into_response()
}

pub async fn start_task(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let params: TaskStartParams = parse_body(&body, "task_start")?;
    let started = app
        .engine
        .start(params, caller(&headers))
        .await
        .map_err(ApiFailure::of_verb)?;
    Ok(Json(started).into_response())
}

pub async fn await_tasks(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let params: TaskAwaitParams = parse_body(&body, "task_await")?;
    let answer = app
        .engine
        .await_tasks(&params)
        .await
        .map_err(ApiFailure::of_verb)?;
    Ok(Json(answer).into_response())
}

pub async fn peek_task(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    let answer = app.engine.peek(&TaskPeekParams {
        task_id: Some(id.clone()),
        ..TaskPeekParams::default()
    })?;
    match answer.lookups().first().and_then(|l| l.record()) {
        Some(record) => Ok(Json(record.clone()).into_response()),
        None => Err(ApiFailure::not_found(format!(
            "no task with id `{id}`; list tasks with POST /api/v1/list {{\"view\": \"tasks\"}}"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn cancel_task(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let body: CancelBody = parse_body(&body, "cancel")?;
    let answer = app
        .engine
        .cancel(&TaskCancelParams {
            task_id: Some(id),
            reason: body.reason,
            ..TaskCancelParams::default()
        })
        .await
        .map_err(ApiFailure::of_verb)?;
    Ok(Json(answer).into_response())
}

pub async fn list(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let params: TaskListParams = parse_body(&body, "task_list")?;
    let listing = app
        .engine
        .list(&params)
        .await
        .map_err(ApiFailure::of_verb)?;
    Ok(Json(json!({
        "format": listing.format,
        "json": listing.json,
        "text": listing.text,
    }))
    .into_response())
}

pub async fn workers(State(app): State<AppState>) -> Json<Vec<WorkerSnapshot>> {
    Json(app.engine.pool().snapshots())
}

pub async fn run(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    match app
        .engine
        .workflows()
        .get_run(&id)
        .map_err(orchestra_core::tasks::TaskError::from)?
    {
        Some(run) => Ok(Json(run).into_response()),
        None => Err(ApiFailure::not_found(format!(
            "no workflow run `{id}`; list runs with POST /api/v1/list {{\"view\": \"workflows\"}}"
        ))),
    }
}

pub async fn login(State(app): State<AppState>) -> Json<LoginLink> {
    let code = app.access.new_login_code();
    let ttl = i64::try_from(LOGIN_LINK_TTL.as_millis()).unwrap_or(i64::MAX);
    Json(LoginLink {
        url: format!("{}/login?code={code}", app.base_url),
        expires_at: now_ms().saturating_add(ttl),
    })
}

pub async fn shutdown(State(app): State<AppState>) -> Json<Value> {
    tracing::info!("shutdown asked through the API");
    app.stop.cancel();
    Json(json!({"ok": true, "message": "the hub is stopping"}))
}

pub async fn no_route() -> ApiFailure {
    ApiFailure::not_found(
        "no such route; the hub's API is under /api/v1 (health, tools/{name}, tasks, list, workers, runs, questions, logs, config, memory/…, events, login, shutdown, hooks/*), MCP is at /mcp and the panel at /",
    )
}
