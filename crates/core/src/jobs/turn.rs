//! What happens inside one worker turn: the session's events turned into progress and hub
//! events, permission questions answered, and — after the event stream was cut — the turn
//! reconciled from OpenCode's own state (status, messages, pending questions), so a task whose
//! turn ended during the gap finishes with its real answer at once instead of timing out.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use orchestra_protocol::{
    BudgetSpend, EventBody, JobRecord, PermissionAnswer, PermissionQuestion, PermissionReplyEvent,
    TokenUsage, ToolCallEvent, now_ms,
};

use crate::config::PermissionReply;
use crate::opencode::{
    MessageWithParts, OpenCodeEvent, Part, PermissionReplyKind, PermissionRequest, SessionStatus,
};
use crate::workers::Lease;

use super::budget::{BudgetGuard, stop_task};
use super::questions::{AnswerSender, reply_word};
use super::shared_budget::pool_stop_text;
use super::{JobHandle, WorkerJob};

/// How much of the worker's latest output a peek shows.
const OUTPUT_TAIL_CHARS: usize = 400;
/// Text deltas are published at most this often per job, joined: a model streams a token or a
/// word at a time, and an event per token had the hub store, encode and send tens to
/// thousands of events per task. Viewers still see the text move twenty times a second.
const TEXT_EVERY: Duration = Duration::from_millis(50);

/// What the runner knows about the turn so far.
pub(super) struct Progress {
    pub seen_busy: bool,
    tool_calls: HashSet<String>,
    /// The last status seen per tool call, so each change is published once.
    tool_status: HashMap<String, String>,
    pub error: Option<String>,
    /// Permission questions already answered or sent to the inbox (the live event and a
    /// reconcile may both see one).
    answered: HashSet<String>,
    /// Where the inbox delivers a person's (or the timeout's) answer for this job.
    answers: AnswerSender,
    /// How long a question waits for a person (`tasks.permissionAskTimeoutMs`).
    ask_timeout: Duration,
    /// Model steps finished so far and what they used (for the job's token budget).
    finished_steps: HashSet<String>,
    steps_usage: TokenUsage,
    /// The task's own budget (`budget` on `task_start` or the profile), checked after each step.
    pub budget: Option<BudgetGuard>,
    /// After a follow-up prompt in the same session, an idle counts only once the session was
    /// busy again (the previous turn's idle events may still be queued).
    pub need_busy: bool,
    /// Text deltas held back (see [`TEXT_EVERY`]), and when they are due.
    pending_text: String,
    pub text_due: Option<std::time::Instant>,
}

impl Progress {
    pub fn new(
        answers: AnswerSender,
        ask_timeout: Duration,
        budget: Option<BudgetGuard>,
    ) -> Progress {
        Progress {
            budget,
            need_busy: false,
            seen_busy: false,
            tool_calls: HashSet::new(),
            tool_status: HashMap::new(),
            error: None,
            answered: HashSet::new(),
            answers,
            ask_timeout,
            finished_steps: HashSet::new(),
            steps_usage: TokenUsage::default(),
            pending_text: String::new(),
            text_due: None,
        }
    }
}

impl Progress {
    /// Before a follow-up prompt in the same session (the next attempt of an `until` loop).
    pub fn begin_follow_up(&mut self) {
        self.seen_busy = false;
        self.need_busy = true;
        self.error = None;
    }

    fn turns(&self) -> u32 {
        u32::try_from(self.finished_steps.len()).unwrap_or(u32::MAX)
    }
}

/// Publishes the text deltas held back, as one event, if there are any. Called when
/// they are due and before anything else about the job is published, so the stream's order is
/// the session's.
pub(super) fn flush_text(job: &JobHandle, record: &JobRecord, state: &mut Progress) {
    state.text_due = None;
    if !state.pending_text.is_empty() {
        job.emit(EventBody::JobDelta {
            job_id: record.id.clone(),
            text: std::mem::take(&mut state.pending_text),
        });
    }
}

/// The `maxMs` timer fired: a warning, or the stop at the cap.
pub(super) fn budget_timer(job: &JobHandle, record: &mut JobRecord, state: &mut Progress) -> Step {
    let turns = state.turns();
    let Some(guard) = &mut state.budget else {
        return Step::Continue;
    };
    let spent = guard.spend(&state.steps_usage, turns);
    record.spent = Some(spent);
    match guard.check(job, record, &spent) {
        Some(stop) => Step::Fail(stop_task(job, record, stop)),
        None => Step::Publish,
    }
}

/// What the runner does after an event.
pub(super) enum Step {
    Continue,
    Publish,
    Idle,
    Fail(String),
    /// The provider failed in a way another model may not (`fallback::error_falls_back`):
    /// from OpenCode's `retry` status (with its attempt) or a session error.
    ProviderFailed {
        message: String,
        retry_attempt: Option<u32>,
    },
}

pub(super) async fn on_event(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    state: &mut Progress,
    event: OpenCodeEvent,
) -> Step {
    let now = now_ms();
    if !matches!(event, OpenCodeEvent::MessagePartDelta { .. }) {
        flush_text(job, record, state);
    }
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
                // OpenCode retries only what may pass (a rate limit, a 5xx, an unreachable
                // provider): the runner decides between a fallback model and waiting.
                Step::ProviderFailed {
                    message,
                    retry_attempt: Some(attempt),
                }
            }
        },
        OpenCodeEvent::SessionError { error, .. } => {
            let message = error_text(error.as_ref());
            if super::fallback::error_falls_back(error.as_ref()) {
                Step::ProviderFailed {
                    message,
                    retry_attempt: None,
                }
            } else {
                state.error = Some(message);
                Step::Continue
            }
        }
        OpenCodeEvent::MessagePartDelta { field, delta, .. } => {
            if field == "text" {
                state.seen_busy = true;
                state.pending_text.push_str(&delta);
                state
                    .text_due
                    .get_or_insert_with(|| std::time::Instant::now() + TEXT_EVERY);
                let mut tail = record.progress.last_output.take().unwrap_or_default();
                tail.push_str(&delta);
                record.progress.last_output = Some(keep_tail(tail, OUTPUT_TAIL_CHARS));
                record.progress.last_activity_at = Some(now);
                // Published with the text, when it is due.
                Step::Continue
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
            Part::StepFinish {
                id,
                tokens,
                cost,
                reason,
                ..
            } => {
                let last = reason.as_deref() == Some("stop");
                spend(job, record, input, state, id, tokens, cost, last)
            }
            Part::Text { .. } | Part::Other => Step::Continue,
        },
        OpenCodeEvent::PermissionAsked(request) => {
            answer_permission(lease, job, record, state, request).await
        }
        OpenCodeEvent::PermissionReplied {
            request_id, reply, ..
        } => {
            // Answered outside the hub (OpenCode's own UI): it leaves the inbox.
            job.runtime()
                .questions()
                .answered_elsewhere(&request_id, &reply);
            Step::Continue
        }
        OpenCodeEvent::MessageUpdated { .. }
        | OpenCodeEvent::ServerConnected
        | OpenCodeEvent::Heartbeat
        | OpenCodeEvent::Other { .. } => Step::Continue,
    }
}

/// Counts a finished model step against the job's budgets; over one, the turn fails with what
/// it used recorded (so a workflow sees its run's budget spent). A step that ended the turn
/// (`last`) spends nothing more, so it is recorded but stops nothing.
#[allow(clippy::too_many_arguments)]
fn spend(
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    state: &mut Progress,
    step_id: String,
    tokens: Option<crate::opencode::Tokens>,
    cost: Option<f64>,
    last: bool,
) -> Step {
    if !state.finished_steps.insert(step_id) {
        return Step::Continue;
    }
    if let Some(tokens) = tokens {
        state.steps_usage.add(&TokenUsage {
            input: tokens.input,
            output: tokens.output,
            reasoning: tokens.reasoning,
            cache_read: tokens.cache.read,
            cache_write: tokens.cache.write,
            cost: cost.unwrap_or(0.0),
        });
    }
    let turns = state.turns();
    if let Some(guard) = &mut state.budget {
        let spent = guard.spend(&state.steps_usage, turns);
        record.spent = Some(spent);
        record.usage = state.steps_usage;
        if let Some(stop) = guard.check(job, record, &spent)
            && !last
        {
            return Step::Fail(stop_task(job, record, stop));
        }
    }
    if let Some(pool) = &input.shared_budget {
        let own = BudgetSpend::of(state.steps_usage.total(), state.steps_usage.cost, turns, 0);
        if let Some(stop) = pool.report(job, record, own)
            && !last
        {
            record.budget_stop = Some(stop);
            return Step::Fail(pool_stop_text(&stop));
        }
    }
    let Some(budget) = &input.token_budget else {
        return Step::Publish;
    };
    let used = state.steps_usage.input + state.steps_usage.output + state.steps_usage.reasoning;
    if used <= budget.tokens {
        return Step::Publish;
    }
    record.usage = state.steps_usage;
    Step::Fail(format!(
        "stopped: the task used {used} tokens, more than its budget of {} ({}); the worker's model was stopped",
        budget.tokens, budget.setting
    ))
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

/// Answers one permission question by the profile's `onPermissionAsk`, once; with `ask` the
/// question goes to the inbox and waits for a person (or the timeout) instead.
async fn answer_permission(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    state: &mut Progress,
    request: PermissionRequest,
) -> Step {
    if !state.answered.insert(request.id.clone()) {
        return Step::Continue;
    }
    let now = now_ms();
    let mut question = PermissionQuestion {
        job_id: record.id.clone(),
        worker_id: lease.profile.id.clone(),
        request_id: request.id.clone(),
        session_id: request.session_id.clone(),
        permission: request.permission.clone(),
        patterns: request.patterns.clone(),
        asked_at: now,
        expires_at: None,
    };
    let reply = match lease.profile.on_permission_ask {
        PermissionReply::Reject => PermissionReplyKind::Reject,
        PermissionReply::Once => PermissionReplyKind::Once,
        PermissionReply::Always => PermissionReplyKind::Always,
        PermissionReply::Ask => {
            let wait = i64::try_from(state.ask_timeout.as_millis()).unwrap_or(i64::MAX);
            question.expires_at = Some(now.saturating_add(wait));
            job.emit(EventBody::PermissionAsked(question.clone()));
            tracing::info!(job = %record.id, worker = %lease.profile.id, permission = %request.permission, "a permission question waits for a person");
            job.runtime().questions().ask(
                question,
                lease.client.clone(),
                state.answers.clone(),
                state.ask_timeout,
            );
            return Step::Continue;
        }
    };
    job.emit(EventBody::PermissionAsked(question));
    let word = reply_word(reply);
    let message = format!(
        "Open Orchestra answered `{word}` for worker `{}` (profile onPermissionAsk)",
        lease.profile.id
    );
    if let Err(err) = lease
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
        by: "profile".into(),
    });
    Step::Publish
}

/// After the event stream came back (or on the slow safety poll): what did the session do
/// while we could not hear it? Questions asked in the gap are answered now (or, with `ask`,
/// join the inbox); a turn that ended in the gap is over now.
pub(super) async fn reconcile(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    state: &mut Progress,
    session_id: &str,
) -> Step {
    let client = &lease.client;
    let mut step = Step::Continue;
    match client.pending_permissions().await {
        Ok(pending) => {
            for request in pending.into_iter().filter(|p| p.session_id == session_id) {
                if let Step::Publish = answer_permission(lease, job, record, state, request).await {
                    step = Step::Publish;
                }
            }
        }
        Err(err) => tracing::debug!(error = %err, "listing pending permission questions failed"),
    }
    let busy = match client.session_status().await {
        Ok(statuses) => statuses.contains_key(session_id),
        // Unknown: keep waiting for events; the next poll asks again.
        Err(_) => return step,
    };
    if busy {
        state.seen_busy = true;
        return step;
    }
    // Idle before the turn began looks the same as idle after it ended; the messages tell
    // which: a finished (or failed) assistant reply means the turn is over.
    if state.seen_busy || turn_answered(lease, session_id).await {
        return Step::Idle;
    }
    step
}

async fn turn_answered(lease: &Lease, session_id: &str) -> bool {
    match lease.client.messages(session_id).await {
        Ok(messages) => messages.iter().any(|m| {
            m.info.role == "assistant"
                && (m.info.finish.is_some()
                    || m.info.error.is_some()
                    || m.info.time.completed.is_some())
        }),
        Err(_) => false,
    }
}
