//! The memory API under `/api/v1/memory`, for the panel and `orchestra memory`.
//!
//! # Contract
//! Every route needs the hub's token like the rest of the API, and answers JSON (export:
//! JSONL). Every error is an [`ApiError`](orchestra_protocol::ApiError) `{error, kind}`:
//! `bad_request` (400: a malformed body or field, a bad cursor), `not_found` (404: no such
//! record), `memory_disabled` (404: `memory.enabled` is false in the project's config — the
//! message names that key), `internal` (500). Types are in `orchestra_protocol::memory`.
//!
//! | route | body / query | answer |
//! |---|---|---|
//! | `POST /api/v1/memory/search` | [`MemorySearchParams`] (`query`, `scopes`, `kinds`, `tags`, `includeSuperseded`, `includeRetracted`, `limit` ≤ 100, `budgetTokens`, `cursor`, `detail`: `index`\|`summary`\|`full`) | [`MemoryPage`] of [`MemoryHit`]: `items`, `nextCursor` (absent on the last page), `tokens`, `needsBudgetTokens` (the next record alone is bigger than the budget), `skipped` |
//! | `GET /api/v1/memory/records/{id}` | `{id}`: a record id or key (percent-encoded); `?scope=project\|global&budgetTokens=N` | [`MemoryRecordDetail`]: `record`, `links` (from and to it), `task` (the job that wrote it, from its provenance), `needsBudgetTokens` |
//! | `POST /api/v1/memory/records` | [`MemoryPut`] (`scope`, `kind`, `key`, `title`, `body`, `tags`, `entities`, `provenance`, `supersedes`, `pinned`); the producer defaults to `user` | [`MemoryPutResult`]: `record`, `outcome` (`created`\|`updated`\|`unchanged`), `superseded` |
//! | `POST /api/v1/memory/records/{id}/supersede` | a [`MemoryPut`] without `supersedes`: the new record | [`MemoryPutResult`]; the record `{id}` is now `superseded` |
//! | `POST /api/v1/memory/records/{id}/forget` | [`ForgetRequest`] `{"mode": "retract"\|"delete", "scope"?}` | [`ForgetOutcome`] `{id, mode, changed}` |
//! | `GET /api/v1/memory/context?task=…&budgetTokens=N` | the task text a worker would get | [`MemoryContext`] `{text, hash, tokens, recordIds}`: the block, byte for byte |
//! | `GET /api/v1/memory/export` | — | `application/x-ndjson`: one `{"type": "record", …}` or `{"type": "link", …}` a line, streamed |
//! | `POST /api/v1/memory/import` | JSONL as exported (streamed; no size limit) | [`ImportOutcome`] |
//!
//! Writes announce themselves on the event stream as `orchestra.memory.written`
//! `{recordId, scope, kind, key, title, outcome, superseded, taskId}`.

use std::io::BufReader;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::TryStreamExt;
use orchestra_core::memory::{HubMemory, HubMemoryError};
use orchestra_protocol::memory::{
    ForgetOutcome, ForgetRequest, ImportOutcome, MemoryContext, MemoryHit, MemoryPage,
    MemoryProvenance, MemoryPut, MemoryPutResult, MemoryRecordDetail, MemoryScope,
    MemorySearchParams, MemoryTaskRef,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiFailure, parse_body};

/// Export chunks in flight between the engine's thread and the response.
const EXPORT_CHUNKS: usize = 16;
const TASK_MESSAGE_CHARS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/search", post(search))
        .route("/records", post(put))
        .route("/records/{id}", get(show))
        .route("/records/{id}/supersede", post(supersede))
        .route("/records/{id}/forget", post(forget))
        .route("/context", get(context))
        .route("/export", get(export))
        .route("/import", post(import).layer(DefaultBodyLimit::disable()))
}

impl From<HubMemoryError> for ApiFailure {
    fn from(err: HubMemoryError) -> Self {
        ApiFailure::classified(err.kind(), err.to_string())
    }
}

fn bad_query(rejection: QueryRejection) -> ApiFailure {
    ApiFailure::bad_request(format!(
        "the query string is not valid: {}",
        rejection.body_text()
    ))
}

fn memory(app: &AppState) -> Result<HubMemory, ApiFailure> {
    Ok(app.engine.memory()?.clone())
}

fn scope_param(text: Option<&str>) -> Result<Option<MemoryScope>, ApiFailure> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => MemoryScope::parse(text).map(Some).ok_or_else(|| {
            ApiFailure::bad_request(format!("`scope` is `{text}`; use `project` or `global`"))
        }),
    }
}

async fn search(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let params: MemorySearchParams = parse_body(&body, "memory search")?;
    let page: MemoryPage<MemoryHit> = memory(&app)?.search(params).await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ShowQuery {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    budget_tokens: Option<u32>,
}

async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Response, ApiFailure> {
    let Query(query) = query.map_err(bad_query)?;
    let scope = scope_param(query.scope.as_deref())?;
    let found = memory(&app)?.get(id, scope, query.budget_tokens).await?;
    let task = found
        .record
        .as_ref()
        .and_then(|r| r.provenance.task_id.clone())
        .and_then(|task_id| app.engine.runtime().peek(&task_id).ok().flatten())
        .map(|job| MemoryTaskRef {
            id: job.id,
            worker_id: job.worker_id,
            kind: job.kind,
            status: job.status,
            message: job.message.chars().take(TASK_MESSAGE_CHARS).collect(),
            model: job.model,
            started_at: job.started_at,
            finished_at: job.finished_at,
        });
    Ok(Json(MemoryRecordDetail {
        record: found.record,
        links: found.links,
        task,
        needs_budget_tokens: found.needs_budget_tokens,
    })
    .into_response())
}

/// A put from a person (the panel, the CLI) says so unless it names its producer.
fn from_user(mut put: MemoryPut) -> MemoryPut {
    if put.provenance.producer.is_none() {
        put.provenance = MemoryProvenance {
            producer: Some("user".to_owned()),
            ..put.provenance
        };
    }
    put
}

async fn put(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let put: MemoryPut = parse_body(&body, "memory put")?;
    let result: MemoryPutResult = memory(&app)?.put(from_user(put), None).await?;
    Ok(Json(result).into_response())
}

async fn supersede(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let mut put: MemoryPut = parse_body(&body, "memory supersede")?;
    if put.supersedes.as_deref().is_some_and(|named| named != id) {
        return Err(ApiFailure::bad_request(format!(
            "`supersedes` is `{}` but the route names `{id}`; leave `supersedes` out of the body",
            put.supersedes.as_deref().unwrap_or_default()
        )));
    }
    put.supersedes = Some(id);
    let result = memory(&app)?.put(from_user(put), None).await?;
    Ok(Json(result).into_response())
}

async fn forget(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let request: ForgetRequest = parse_body(&body, "memory forget")?;
    let result = memory(&app)?
        .forget(id, request.scope, request.mode, None)
        .await?;
    Ok(Json(ForgetOutcome {
        id: result.id,
        mode: result.mode,
        changed: result.changed,
    })
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContextQuery {
    #[serde(default)]
    task: String,
    #[serde(default)]
    budget_tokens: Option<u32>,
}

async fn context(
    State(app): State<AppState>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Result<Response, ApiFailure> {
    let Query(query) = query.map_err(bad_query)?;
    let block: MemoryContext = memory(&app)?
        .context(query.task, query.budget_tokens)
        .await?;
    Ok(Json(block).into_response())
}

/// Bytes written on the engine's thread, sent to the response as chunks.
struct ChannelWriter {
    buffer: Vec<u8>,
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client stopped reading the export"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

async fn export(State(app): State<AppState>) -> Result<Response, ApiFailure> {
    let memory = memory(&app)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(EXPORT_CHUNKS);
    let failed = sender.clone();
    // Owned by the response: the task ends when the export does, or when the client goes
    // (the stream, and with it the receiver, is dropped and the next send fails).
    tokio::spawn(async move {
        let writer = ChannelWriter {
            buffer: Vec::new(),
            sender,
        };
        match memory.export(Box::new(writer)).await {
            Ok(report) => tracing::info!(
                records = report.records,
                links = report.links,
                "memory exported"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "the memory export stopped");
                // The status line is gone; cutting the stream with an error tells the client
                // the export is incomplete instead of ending it as if it were whole.
                let _ = failed
                    .send(Err(std::io::Error::other(err.to_string())))
                    .await;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn import(State(app): State<AppState>, body: Body) -> Result<Response, ApiFailure> {
    let memory = memory(&app)?;
    let stream = body
        .into_data_stream()
        .map_err(|err| std::io::Error::other(err.to_string()));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let report = memory.import(Box::new(BufReader::new(reader))).await?;
    Ok(Json(ImportOutcome {
        records: report.records,
        existing: report.existing,
        links: report.links,
        rejected_count: report.rejected_count,
        rejected: report.rejected,
    })
    .into_response())
}
