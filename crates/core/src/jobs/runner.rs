//! Runs one job on one fresh OpenCode session, driven by the server's events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestra_protocol::{
    AttachmentType, EventBody, JobRecord, JobStatus, ModelPolicy, PermissionAnswer,
    PermissionQuestion, PermissionReplyEvent, TokenUsage, ToolCallEvent, now_ms,
};
use tokio::sync::mpsc;

use crate::config::PermissionReply;
use crate::models::{self, ModelNeeds, Resolution};
use crate::opencode::{
    CreateSessionRequest, MessageWithParts, OpenCodeEvent, Part, PartInput, PermissionReplyKind,
    PromptRequest, SessionStatus,
};
use crate::workers::{Lease, SessionSignal, WorkerPool, agents, profile_needs};

use super::attachments::PreparedAttachment;
use super::{JobHandle, WorkerJob};

/// How much of the worker's latest output a peek shows.
const OUTPUT_TAIL_CHARS: usize = 400;
/// A safety net for events lost while the event stream reconnects; normal
/// completion is seen from events long before this fires.
const STATUS_POLL: Duration = Duration::from_secs(10);

enum Outcome {
    Done,
    Failed(String),
    Canceled(String),
}

pub(super) async fn run_job(
    pool: WorkerPool,
    job: JobHandle,
    mut record: JobRecord,
    input: WorkerJob,
) {
    let deadline = Instant::now() + input.timeout;
    let lease = tokio::select! {
        lease = pool.acquire(&input.profile_id, input.auto_spawn) => lease,
        () = job.cancelled().cancelled() => {
            let why = job.cancel_reason();
            finish(job, &mut record, JobStatus::Canceled, Some(why));
            return;
        }
    };
    let lease = match lease {
        Ok(lease) => lease,
        Err(err) => {
            finish(job, &mut record, JobStatus::Failed, Some(err.to_string()));
            return;
        }
    };
    let outcome = drive(&lease, &job, &mut record, &input, deadline).await;
    if let Some(session_id) = &record.session_id {
        lease.conn.router.unregister(session_id);
    }
    match outcome {
        Outcome::Done => finish(job, &mut record, JobStatus::Succeeded, None),
        Outcome::Failed(message) => finish(job, &mut record, JobStatus::Failed, Some(message)),
        Outcome::Canceled(message) => {
            finish(job, &mut record, JobStatus::Canceled, Some(message));
        }
    }
}

async fn drive(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    deadline: Instant,
) -> Outcome {
    let client = &lease.conn.client;
    // Chosen before the session exists: a model that cannot take the task's images, or a
    // reference that matches nothing, fails here without spending a token.
    let resolution = match choose_model(lease, input).await {
        Ok(resolution) => resolution,
        Err(message) => return Outcome::Failed(message),
    };
    record.model = Some(resolution.full_id());
    record.model_reason = Some(resolution.reason.clone());
    let title = format!("orchestra {} ({})", short_id(&record.id), lease.profile.id);
    let session = match client
        .create_session(&CreateSessionRequest {
            title: Some(title),
            permission: Some(agents::session_permission_rules(&lease.profile)),
            ..CreateSessionRequest::default()
        })
        .await
    {
        Ok(session) => session,
        Err(err) => {
            return Outcome::Failed(format!(
                "could not create a session on worker `{}`: {err}",
                lease.profile.id
            ));
        }
    };
    let mut events = lease.conn.router.register(&session.id);
    record.session_id = Some(session.id.clone());
    // One save for the model and the session: both are known now.
    job.publish(record, true);

    let request = PromptRequest {
        parts: prompt_parts(input),
        agent: lease.agent.clone(),
        model: Some(resolution.model.clone()),
        system: lease.system_prompt(),
        tools: None,
    };
    if let Err(err) = client.prompt_async(&session.id, &request).await {
        return Outcome::Failed(format!(
            "worker `{}` refused the prompt: {err}",
            lease.profile.id
        ));
    }

    let mut state = Progress::default();
    let mut poll = tokio::time::interval(STATUS_POLL);
    poll.tick().await;
    loop {
        let signal = tokio::select! {
            () = job.cancelled().cancelled() => {
                let why = job.cancel_reason();
                abort(lease, &session.id).await;
                return Outcome::Canceled(why);
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                abort(lease, &session.id).await;
                return Outcome::Failed(format!(
                    "timed out after {} ms (timeoutMs); the worker's model was stopped",
                    input.timeout.as_millis()
                ));
            }
            _ = poll.tick() => {
                if session_is_idle(lease, &session.id).await && state.seen_busy {
                    break;
                }
                continue;
            }
            signal = events.recv() => signal,
        };
        let Some(signal) = signal else {
            return Outcome::Failed("the worker's event stream closed".into());
        };
        match signal {
            SessionSignal::ServerGone(why) => {
                return Outcome::Failed(format!(
                    "{why} while running this task; the worker is being restarted, start the task again"
                ));
            }
            SessionSignal::Resubscribed => {
                if session_is_idle(lease, &session.id).await && state.seen_busy {
                    break;
                }
            }
            SessionSignal::Event(event) => {
                lease.touch();
                match on_event(lease, job, record, input, &mut state, *event).await {
                    Step::Continue => {}
                    Step::Publish => job.publish(record, false),
                    Step::Idle => break,
                    Step::Fail(message) => {
                        abort(lease, &session.id).await;
                        return Outcome::Failed(message);
                    }
                }
            }
        }
    }
    drop_events(&mut events);
    collect_result(lease, record, &session.id, state.error).await
}

/// The task's model: its own `model`, else the worker's (override or profile), resolved
/// against the server's catalog with the image needs of the profile and the attachments.
async fn choose_model(lease: &Lease, input: &WorkerJob) -> Result<Resolution, String> {
    let catalog = match &lease.catalog {
        Some(catalog) => catalog.clone(),
        None => Arc::new(lease.read_catalog().await.map_err(|err| {
            format!(
                "could not read the model catalog from worker `{}`: {err}",
                lease.profile.id
            )
        })?),
    };
    let images = input
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentType::Image)
        .count();
    let needs = ModelNeeds {
        image_input: profile_needs(&lease.profile).image_input || images > 0,
    };
    let reference = input.model.as_deref().unwrap_or(&lease.model_ref);
    let why = if images > 0 {
        format!("the task has {images} image attachment(s)")
    } else {
        format!("worker `{}` is a vision worker", lease.profile.id)
    };
    // A tag may pick an image-capable model when images need one; an explicit model may not
    // be swapped, so it fails with the reason instead.
    let resolved = match models::ModelRequest::parse(reference) {
        Ok(models::ModelRequest::Explicit(_)) => {
            models::resolve(&catalog, reference, ModelNeeds::default())
                .and_then(|found| models::check_image_input(&catalog, found, needs, &why))
        }
        Ok(models::ModelRequest::Tag(_)) | Err(_) => models::resolve(&catalog, reference, needs),
    };
    let mut resolution = resolved.map_err(|err| {
        format!(
            "worker `{}` has no model to run on: {err}",
            lease.profile.id
        )
    })?;
    if let Some(model) = &input.model {
        resolution.reason = format!("per-task model `{model}`: {}", resolution.reason);
        if input.model_policy == ModelPolicy::Sticky {
            lease.keep_model(model, &resolution);
            resolution
                .reason
                .push_str("; sticky: now the worker's model");
        }
    }
    if let Some(temperature) = lease.profile.temperature
        && !resolution.temperature
    {
        resolution.reason.push_str(&format!(
            "; temperature {temperature} not sent: OpenCode says {} takes no temperature",
            resolution.full_id()
        ));
    }
    Ok(resolution)
}

#[derive(Default)]
struct Progress {
    seen_busy: bool,
    tool_calls: HashSet<String>,
    /// The last status seen per tool call, so each change is published once.
    tool_status: HashMap<String, String>,
    error: Option<String>,
}

enum Step {
    Continue,
    Publish,
    Idle,
    Fail(String),
}

async fn on_event(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    state: &mut Progress,
    event: OpenCodeEvent,
) -> Step {
    let now = now_ms();
    match event {
        OpenCodeEvent::SessionIdle { .. } => Step::Idle,
        OpenCodeEvent::SessionStatus { status, .. } => match status {
            SessionStatus::Busy => {
                state.seen_busy = true;
                Step::Continue
            }
            SessionStatus::Idle => Step::Idle,
            SessionStatus::Retry {
                attempt, message, ..
            } => {
                state.seen_busy = true;
                record.progress.retries = attempt;
                record.progress.last_activity_at = Some(now);
                if attempt >= input.retry_limit {
                    Step::Fail(format!(
                        "the model provider keeps failing: {message} (OpenCode retried {attempt} times; \
                         the limit is tasks.providerRetryLimit = {}). Check the provider's key, quota and URL",
                        input.retry_limit
                    ))
                } else {
                    Step::Publish
                }
            }
        },
        OpenCodeEvent::SessionError { error, .. } => {
            state.error = Some(error_text(error.as_ref()));
            Step::Continue
        }
        OpenCodeEvent::MessagePartDelta { field, delta, .. } => {
            if field == "text" {
                state.seen_busy = true;
                job.emit(EventBody::JobDelta {
                    job_id: record.id.clone(),
                    text: delta.clone(),
                });
                let mut tail = record.progress.last_output.take().unwrap_or_default();
                tail.push_str(&delta);
                record.progress.last_output = Some(keep_tail(tail, OUTPUT_TAIL_CHARS));
                record.progress.last_activity_at = Some(now);
                Step::Publish
            } else {
                Step::Continue
            }
        }
        OpenCodeEvent::MessagePartUpdated { part } => match part {
            Part::Tool {
                call_id,
                tool,
                state: tool_state,
                ..
            } => {
                state.seen_busy = true;
                let status = tool_state.status.clone();
                if state.tool_status.get(&call_id) != Some(&status) {
                    job.emit(EventBody::JobTool(ToolCallEvent {
                        job_id: record.id.clone(),
                        call_id: call_id.clone(),
                        tool: tool.clone(),
                        status: status.clone(),
                        title: tool_state.title.clone().filter(|t| !t.is_empty()),
                    }));
                    state.tool_status.insert(call_id.clone(), status);
                }
                if state.tool_calls.insert(call_id) {
                    record.progress.tool_calls += 1;
                    record.progress.last_tool = Some(tool);
                    record.progress.last_activity_at = Some(now);
                    Step::Publish
                } else {
                    Step::Continue
                }
            }
            Part::Text { .. } | Part::StepFinish { .. } | Part::Other => Step::Continue,
        },
        OpenCodeEvent::PermissionAsked(request) => {
            job.emit(EventBody::PermissionAsked(PermissionQuestion {
                job_id: record.id.clone(),
                worker_id: lease.profile.id.clone(),
                request_id: request.id.clone(),
                session_id: request.session_id.clone(),
                permission: request.permission.clone(),
                patterns: request.patterns.clone(),
                asked_at: now,
                expires_at: None,
            }));
            let reply = match lease.profile.on_permission_ask {
                PermissionReply::Reject => PermissionReplyKind::Reject,
                PermissionReply::Once => PermissionReplyKind::Once,
                PermissionReply::Always => PermissionReplyKind::Always,
            };
            let word = match reply {
                PermissionReplyKind::Reject => "reject",
                PermissionReplyKind::Once => "once",
                PermissionReplyKind::Always => "always",
            };
            let message = format!(
                "Open Orchestra answered `{word}` for worker `{}` (profile onPermissionAsk)",
                lease.profile.id
            );
            if let Err(err) = lease
                .conn
                .client
                .reply_permission(&request.id, reply, Some(&message))
                .await
            {
                tracing::warn!(error = %err, "answering a permission question failed");
            }
            tracing::info!(worker = %lease.profile.id, permission = %request.permission, reply = word, "answered permission question");
            job.emit(EventBody::PermissionAnswered(PermissionReplyEvent {
                job_id: record.id.clone(),
                request_id: request.id.clone(),
                reply: word.into(),
                by: "profile".into(),
            }));
            record.progress.permissions.push(PermissionAnswer {
                permission: request.permission,
                patterns: request.patterns,
                reply: word.into(),
                at: now,
            });
            Step::Publish
        }
        OpenCodeEvent::MessageUpdated { .. }
        | OpenCodeEvent::PermissionReplied { .. }
        | OpenCodeEvent::ServerConnected
        | OpenCodeEvent::Heartbeat
        | OpenCodeEvent::Other { .. } => Step::Continue,
    }
}

async fn collect_result(
    lease: &Lease,
    record: &mut JobRecord,
    session_id: &str,
    session_error: Option<String>,
) -> Outcome {
    let messages = match lease.conn.client.messages(session_id).await {
        Ok(messages) => messages,
        Err(err) => return Outcome::Failed(format!("could not read the worker's reply: {err}")),
    };
    let summary = summarize(&messages);
    record.usage = summary.usage;
    record.model = summary.model.clone();
    if let Some(error) = summary.error.or(session_error) {
        return Outcome::Failed(format!("worker `{}` failed: {error}", lease.profile.id));
    }
    if summary.text.trim().is_empty() {
        return Outcome::Failed(format!(
            "worker `{}` returned no text (model {}); check that the model is configured and answers",
            lease.profile.id,
            summary.model.as_deref().unwrap_or("unknown")
        ));
    }
    record.response_text = Some(summary.text);
    Outcome::Done
}

pub struct ReplySummary {
    pub text: String,
    pub usage: TokenUsage,
    pub model: Option<String>,
    pub error: Option<String>,
}

/// The final answer is the text of the last assistant message; usage is summed
/// over every assistant message (a tool loop makes several).
pub fn summarize(messages: &[MessageWithParts]) -> ReplySummary {
    let mut usage = TokenUsage::default();
    let mut model = None;
    let mut text = String::new();
    let mut error = None;
    for message in messages.iter().filter(|m| m.info.role == "assistant") {
        if let Some(tokens) = &message.info.tokens {
            usage.add(&TokenUsage {
                input: tokens.input,
                output: tokens.output,
                reasoning: tokens.reasoning,
                cache_read: tokens.cache.read,
                cache_write: tokens.cache.write,
                cost: 0.0,
            });
        }
        usage.cost += message.info.cost.unwrap_or(0.0);
        if let (Some(provider), Some(model_id)) =
            (&message.info.provider_id, &message.info.model_id)
        {
            model = Some(format!("{provider}/{model_id}"));
        }
        let texts: Vec<&str> = message
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                Part::Tool { .. } | Part::StepFinish { .. } | Part::Other => None,
            })
            .collect();
        if !texts.is_empty() {
            text = texts.join("\n");
        }
        error = message.info.error.as_ref().map(|e| error_text(Some(e)));
    }
    ReplySummary {
        text,
        usage,
        model,
        error,
    }
}

fn prompt_parts(input: &WorkerJob) -> Vec<PartInput> {
    let text = match &input.from {
        Some(from) => format!("<message-source from=\"{from}\">\n{}", input.task),
        None => input.task.clone(),
    };
    let mut parts = vec![PartInput::Text { text }];
    parts.extend(input.attachments.iter().map(PreparedAttachment::to_part));
    parts
}

async fn abort(lease: &Lease, session_id: &str) {
    if let Err(err) = lease.conn.client.abort(session_id).await {
        tracing::warn!(error = %err, session = session_id, "abort failed");
    }
}

async fn session_is_idle(lease: &Lease, session_id: &str) -> bool {
    match lease.conn.client.session_status().await {
        Ok(statuses) => !statuses.contains_key(session_id),
        Err(_) => false,
    }
}

fn drop_events(events: &mut mpsc::UnboundedReceiver<SessionSignal>) {
    events.close();
}

fn finish(job: JobHandle, record: &mut JobRecord, status: JobStatus, error: Option<String>) {
    if error.is_some() {
        record.error = error;
    }
    record.finish(status, now_ms());
    job.finish(record);
}

/// OpenCode errors look like `{"name": "APIError", "data": {"message": "…"}}`.
pub fn error_text(error: Option<&serde_json::Value>) -> String {
    let Some(error) = error else {
        return "unknown error".into();
    };
    let name = error
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("Error");
    let message = error
        .pointer("/data/message")
        .or_else(|| error.get("message"))
        .and_then(|v| v.as_str());
    match message {
        Some(message) => format!("{name}: {message}"),
        None => format!("{name}: {error}"),
    }
}

fn keep_tail(text: String, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text;
    }
    text.chars().skip(count - max).collect()
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
