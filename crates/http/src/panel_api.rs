//! The API routes the control panel needs beyond the five tools (every one usable without the
//! panel too):
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/questions` | permission questions waiting for a person ([`PermissionQuestion`]) |
//! | `POST /api/v1/questions/{requestId}` | answer one: `{"reply": "once" \| "always" \| "reject"}` |
//! | `POST /api/v1/workers/{id}/restart` | restart a worker's server; its tasks fail saying so |
//! | `GET /api/v1/runs?limit=` | recent workflow runs, newest first |
//! | `POST /api/v1/runs/{id}/pause` | pause a running run (its job is canceled; the step runs again on resume) |
//! | `POST /api/v1/runs/{id}/resume` | resume a paused run (`continueRunId`) |
//! | `POST /api/v1/runs/{id}/cancel` | end a run for good |
//! | `GET /api/v1/tasks/{id}/events?after=&limit=` | a task's events so far (deltas, tool calls, questions) |
//! | `GET /api/v1/logs?level=&worker=&job=&text=&limit=&after=&before=` | the hub's log ([`LogsPage`]) |
//! | `GET /api/v1/config` | the configuration in force and where it came from ([`ConfigView`]) |

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use orchestra_protocol::{
    ConfigView, HubEvent, LogsPage, LogsQuery, PermissionQuestion, QuestionAnswer, WorkerSnapshot,
    WorkflowRun,
};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::caller;
use crate::error::{ApiFailure, parse_body};

/// Most runs one listing returns.
const MAX_RUNS: u32 = 200;

pub async fn questions(State(app): State<AppState>) -> Json<Vec<PermissionQuestion>> {
    Json(app.engine.pending_questions())
}

pub async fn answer_question(
    State(app): State<AppState>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let answer: QuestionAnswer = parse_body(&body, "the answer to a question")?;
    let question = app
        .engine
        .answer_question(&request_id, answer.reply)
        .await?;
    Ok(Json(json!({"question": question, "reply": answer.reply})).into_response())
}

pub async fn restart_worker(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkerSnapshot>, ApiFailure> {
    Ok(Json(app.engine.restart_worker(&id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<u32>,
}

pub async fn runs(
    State(app): State<AppState>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<WorkflowRun>>, ApiFailure> {
    let Query(query) = query.map_err(|err| bad_query(&err, "?limit=<runs>"))?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_RUNS);
    let runs = app
        .engine
        .workflows()
        .list_runs(limit)
        .map_err(orchestra_core::tasks::TaskError::from)?;
    Ok(Json(runs))
}

pub async fn pause_run(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowRun>, ApiFailure> {
    Ok(Json(app.engine.pause_run(&id).await?))
}

pub async fn resume_run(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let started = app.engine.resume_run(&id, caller(&headers)).await?;
    Ok(Json(started).into_response())
}

pub async fn cancel_run(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowRun>, ApiFailure> {
    Ok(Json(app.engine.end_run(&id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskEventsQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

pub async fn task_events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TaskEventsQuery>, QueryRejection>,
) -> Result<Json<Vec<HubEvent>>, ApiFailure> {
    let Query(query) = query.map_err(|err| bad_query(&err, "?after=<event id>&limit=<events>"))?;
    Ok(Json(
        app.engine
            .job_events(&id, query.after.unwrap_or(0), query.limit)
            .await?,
    ))
}

pub async fn logs(
    State(app): State<AppState>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Json<LogsPage>, ApiFailure> {
    let Query(query) = query.map_err(|err| {
        bad_query(
            &err,
            "?level=error|warn|info|debug&worker=<id>&job=<task id>&text=<words>&limit=<lines>&after=<event id>&before=<event id>",
        )
    })?;
    Ok(Json(app.engine.logs(&query).await?))
}

pub async fn config(State(app): State<AppState>) -> Json<ConfigView> {
    Json(app.engine.config_view().await)
}

fn bad_query(err: &QueryRejection, shape: &str) -> ApiFailure {
    ApiFailure::bad_request(format!("bad query: {}; use {shape}", err.body_text()))
}
