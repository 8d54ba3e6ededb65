//! Runs one job on one fresh OpenCode session, driven by the server's events.
//!
//! Every phase — waiting for the worker, choosing the model, creating the session, sending the
//! prompt, the model's turn — runs under the job's cancel token and its one deadline
//! (`timeoutMs`), so a cancel or a timeout is honoured wherever the job is; once a session
//! exists, stopping it aborts the session, so the model really stops.

use std::future::Future;
use std::time::{Duration, Instant};

use orchestra_protocol::{JobRecord, JobStatus, ModelFallback, now_ms};

use crate::opencode::{CreateSessionRequest, PartInput, PromptRequest};
use crate::workers::{Lease, SessionSignal, WorkerPool, agents, skills};

use super::budget::{self, BudgetGuard};
use super::check_run;
use super::fallback::{ModelChain, Models, Pick};
use super::prompt::{choose_model, model_needs, prompt_parts, system_text};
use super::shared_budget::{SharedBudget, pool_stop_text};
use super::turn::{self, Progress, Step, summarize};
use super::workspace;
use super::{JobHandle, WorkerJob};

/// A safety net for events lost while the event stream reconnects (a reconnect itself
/// reconciles at once); normal completion is seen from events long before this fires.
const STATUS_POLL: Duration = Duration::from_secs(10);

/// After the event stream came back, the session is checked once more this soon.
const RECHECK_AFTER_RECONNECT: Duration = Duration::from_millis(500);

/// How long a stopped job waits for the server to take its abort: a server that hangs (the
/// reason a cancel is often sent) must not hold the job open, nor `task_cancel` behind it.
const ABORT_WAIT: Duration = Duration::from_secs(3);

/// Why a phase of the job stopped before it finished.
enum Interrupt {
    Canceled(String),
    TimedOut,
}

/// Runs `work` unless the job is canceled or its deadline passes first.
async fn or_stop<T>(
    job: &JobHandle,
    deadline: Instant,
    work: impl Future<Output = T>,
) -> Result<T, Interrupt> {
    tokio::select! {
        value = work => Ok(value),
        () = job.cancelled().cancelled() => Err(Interrupt::Canceled(job.cancel_reason())),
        () = tokio::time::sleep_until(deadline.into()) => Err(Interrupt::TimedOut),
    }
}

enum Outcome {
    Done,
    Failed(String),
    Canceled(String),
}

pub(super) async fn run_job(
    pool: WorkerPool,
    job: JobHandle,
    mut record: JobRecord,
    mut input: WorkerJob,
) {
    let deadline = Instant::now() + input.timeout;
    let mut held = None;
    if let Some(workspace) = input.workspace.take() {
        match or_stop(&job, deadline, workspace.open(&mut record)).await {
            Ok(Ok(opened)) => {
                job.publish(&record, true);
                held = Some(opened);
            }
            Ok(Err(err)) => {
                finish(job, &mut record, JobStatus::Failed, Some(err.to_string()));
                return;
            }
            Err(Interrupt::Canceled(why)) => {
                finish(job, &mut record, JobStatus::Canceled, Some(why));
                return;
            }
            Err(Interrupt::TimedOut) => {
                let why = format!(
                    "timed out after {} ms (timeoutMs) while making the task's worktree",
                    input.timeout.as_millis()
                );
                finish(job, &mut record, JobStatus::Failed, Some(why));
                return;
            }
        }
    }
    run_leased(pool, job, record, input, deadline, held).await;
}

async fn run_leased(
    pool: WorkerPool,
    job: JobHandle,
    mut record: JobRecord,
    input: WorkerJob,
    deadline: Instant,
    held: Option<workspace::Held>,
) {
    // The server start this may wait for belongs to the pool: giving up here never stops a
    // start other tasks are waiting for.
    let acquired = or_stop(
        &job,
        deadline,
        pool.acquire(&input.profile_id, input.auto_spawn),
    )
    .await;
    let mut lease = match acquired {
        Ok(Ok(lease)) => lease,
        Ok(Err(err)) => {
            let error = close_workspace(held, &job, &mut record, err.to_string()).await;
            finish(job, &mut record, JobStatus::Failed, Some(error));
            return;
        }
        Err(Interrupt::Canceled(why)) => {
            let why = close_workspace(held, &job, &mut record, why).await;
            finish(job, &mut record, JobStatus::Canceled, Some(why));
            return;
        }
        Err(Interrupt::TimedOut) => {
            let why = format!(
                "timed out after {} ms (timeoutMs) while waiting for worker `{}` to start",
                input.timeout.as_millis(),
                input.profile_id
            );
            let why = close_workspace(held, &job, &mut record, why).await;
            finish(job, &mut record, JobStatus::Failed, Some(why));
            return;
        }
    };
    // Addressing the server in the worktree opens its event stream there: under the cancel
    // and the deadline like every phase, and a server taken away meanwhile is the reason.
    let moved = match &held {
        Some(held) => match or_stop(&job, deadline, lease.move_to(&held.session_dir)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Outcome::Failed(server_gone(&lease).unwrap_or_else(|| {
                format!(
                    "could not address worker `{}` in the task's worktree: {err}",
                    lease.profile.id
                )
            }))),
            Err(Interrupt::Canceled(why)) => Err(Outcome::Canceled(why)),
            Err(Interrupt::TimedOut) => Err(timed_out(
                &input,
                "opening the task's worktree on its worker",
            )),
        },
        None => Ok(()),
    };
    let outcome = match moved {
        Ok(()) => drive(&lease, &job, &mut record, &input, deadline).await,
        Err(outcome) => outcome,
    };
    if let Some(session_id) = &record.session_id {
        lease.conn.router.unregister(session_id);
    }
    // Questions still waiting for a person cannot be answered once the turn is over.
    job.runtime().questions().drop_job(&record.id);
    // The worker is free before the record says the job is over: whoever reads the final
    // record never sees the worker still busy with it.
    let conn = lease.conn.clone();
    let client = lease.client.clone();
    let directory = lease.take_directory();
    drop(lease);
    let outcome = match (outcome, held) {
        (outcome, None) => outcome,
        (Outcome::Done, held) => {
            match close_workspace(held, &job, &mut record, String::new()).await {
                error if error.is_empty() => Outcome::Done,
                error => Outcome::Failed(error),
            }
        }
        (Outcome::Failed(message), held) => {
            Outcome::Failed(close_workspace(held, &job, &mut record, message).await)
        }
        (Outcome::Canceled(message), held) => {
            Outcome::Canceled(close_workspace(held, &job, &mut record, message).await)
        }
    };
    match outcome {
        Outcome::Done => finish(job, &mut record, JobStatus::Succeeded, None),
        Outcome::Failed(message) => finish(job, &mut record, JobStatus::Failed, Some(message)),
        Outcome::Canceled(message) => {
            finish(job, &mut record, JobStatus::Canceled, Some(message));
        }
    }
    // The record is final and holds the answer: the session itself is no longer needed, and
    // left alone every task would stay in the user's OpenCode session list for good.
    match &record.session_id {
        Some(session_id) => {
            pool.retire_session(&conn, &client, session_id, directory)
                .await;
        }
        None => drop(directory),
    }
}

/// Commits the worker's changes in its worktree (whatever the outcome, so no work is lost);
/// returns `error` with what went wrong in the worktree added.
async fn close_workspace(
    held: Option<workspace::Held>,
    job: &JobHandle,
    record: &mut JobRecord,
    error: String,
) -> String {
    let Some(held) = held else { return error };
    match held.close(record, job.runtime().store()).await {
        Ok(()) => error,
        Err(err) if error.is_empty() => {
            format!("the worker finished, but committing its changes failed: {err}")
        }
        Err(err) => format!("{error}; committing the worker's changes also failed: {err}"),
    }
}

async fn drive(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    deadline: Instant,
) -> Outcome {
    let required = skills::union(&lease.profile.required_skills, &input.required_skills);
    match or_stop(job, deadline, skills::preflight(lease, &required)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Outcome::Failed(err.to_string()),
        Err(Interrupt::Canceled(why)) => return Outcome::Canceled(why),
        Err(Interrupt::TimedOut) => return timed_out(input, "checking requiredSkills"),
    }
    // Chosen before the session exists: a model that cannot take the task's images, or a
    // reference that matches nothing, fails here without spending a token.
    let own = match or_stop(job, deadline, choose_model(lease, input)).await {
        Ok(Ok(resolution)) => resolution,
        Ok(Err(message)) => return Outcome::Failed(message),
        Err(Interrupt::Canceled(why)) => return Outcome::Canceled(why),
        Err(Interrupt::TimedOut) => return timed_out(input, "choosing the model"),
    };
    let health = job.runtime().model_health().clone();
    let needs = model_needs(lease, input);
    let mut chain = ModelChain::new(lease, &own, &health);
    let pick = match chain
        .first(lease, own, needs, &health, &mut record.fallbacks)
        .await
    {
        Ok(pick) => pick,
        Err(message) => return Outcome::Failed(message),
    };
    let mut models = Models {
        chain,
        pick,
        health,
        needs,
        provider_failed: false,
    };
    let outcome = turns(lease, job, record, input, deadline, &mut models).await;
    models.settle(lease, matches!(outcome, Outcome::Done));
    outcome
}

/// The job's turns in one session: the task, then (with `until`) the check's feedback, until the
/// check passes; a provider failure with a fallback ready moves to a fresh session on the next
/// model and sends the same prompt again.
async fn turns(
    lease: &Lease,
    job: &JobHandle,
    record: &mut JobRecord,
    input: &WorkerJob,
    deadline: Instant,
    models: &mut Models,
) -> Outcome {
    let client = &lease.client;
    record.model = Some(models.pick.resolution.full_id());
    record.model_reason = Some(models.pick.resolution.reason.clone());
    let (mut session_id, mut messages_before) =
        match open_session(lease, job, input, deadline, input.session_id.as_deref()).await {
            Ok(opened) => opened,
            Err(outcome) => return outcome,
        };
    let mut events = lease.conn.router.register(&session_id);
    record.session_id = Some(session_id.clone());
    // Built since the task started, while the worker was leased and the session opened.
    let context = input.context.block().await;
    if context.note.is_some() {
        record.memory_note.clone_from(&context.note);
    }
    // One save for the model, the session and the memory note: all are known now.
    job.publish(record, true);

    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let guard = input
        .budget
        .filter(|b| !b.is_empty())
        .map(|b| BudgetGuard::new(b, input.prior_spend));
    let mut state = Progress::new(answers, input.permission_ask_timeout, guard);
    let mut parts = prompt_parts(input);
    let mut iteration: u32 = 1;
    loop {
        let request = PromptRequest {
            parts: parts.clone(),
            agent: lease.agent.clone(),
            model: Some(models.pick.resolution.model.clone()),
            system: system_text(lease.system_prompt(), context.text.as_deref()),
            tools: None,
        };
        match or_stop(job, deadline, client.prompt_async(&session_id, &request)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                return Outcome::Failed(server_gone(lease).unwrap_or_else(|| {
                    format!("worker `{}` refused the prompt: {err}", lease.profile.id)
                }));
            }
            Err(stop) => return stopped(lease, &session_id, stop, input, Phase::Turn).await,
        }
        // Known before the turn starts, so the first sign of trouble can switch at once. A
        // continued session stays on its model: a fresh session would lose what it holds.
        let next = match input.session_id {
            Some(_) => None,
            None => models.chain.next(lease, models.needs, &models.health).await,
        };
        let turn = TurnCtx {
            lease,
            job,
            input,
            session_id: &session_id,
            deadline,
            messages_before,
            fallback_ready: next.is_some(),
            model: models.pick.resolution.full_id(),
        };
        match turn
            .follow(
                record,
                &mut state,
                &mut events,
                &mut answered,
                &mut models.provider_failed,
            )
            .await
        {
            TurnEnd::Idle => {}
            TurnEnd::Over(outcome) => return outcome,
            TurnEnd::FallBack(message) => {
                let from = models.pick.resolution.full_id();
                models.health.model_failed(
                    &lease.profile.id,
                    &from,
                    models.pick.own,
                    Instant::now(),
                );
                let Some(resolution) = next else {
                    return Outcome::Failed(message);
                };
                tracing::info!(job = %record.id, from = %from, to = %resolution.full_id(), reason = %message, "falling back to the next model");
                record.fallbacks.push(ModelFallback {
                    from,
                    to: resolution.full_id(),
                    reason: message,
                    at: now_ms(),
                });
                record.model = Some(resolution.full_id());
                record.model_reason = Some(resolution.reason.clone());
                models.pick = Pick {
                    resolution,
                    own: false,
                };
                // The failed session is done with: its answer will never be read.
                let (fresh, before) = match open_session(lease, job, input, deadline, None).await {
                    Ok(opened) => opened,
                    Err(outcome) => return outcome,
                };
                lease.conn.router.unregister(&session_id);
                job.runtime()
                    .pool()
                    .retire_session(&lease.conn, client, &session_id, None)
                    .await;
                events.close();
                events = lease.conn.router.register(&fresh);
                record.session_id = Some(fresh.clone());
                job.publish(record, true);
                (session_id, messages_before) = (fresh, before);
                state.begin_follow_up();
                continue;
            }
        }
        let error = state.error.take();
        let outcome = match or_stop(
            job,
            deadline,
            collect_result(lease, record, &session_id, error, messages_before),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(stop) => return stopped(lease, &session_id, stop, input, Phase::Collecting).await,
        };
        let Some(until) = &input.until else {
            events.close();
            return outcome;
        };
        if !matches!(outcome, Outcome::Done) {
            return outcome;
        }
        // A worker saying it is done ends nothing: only the check does.
        let workspace = check_run::task_workspace(lease.work_dir());
        let result = match or_stop(
            job,
            deadline,
            check_run::run_check(until, &workspace, iteration),
        )
        .await
        {
            Ok(result) => result,
            Err(Interrupt::Canceled(why)) => return Outcome::Canceled(why),
            Err(Interrupt::TimedOut) => return timed_out(input, "running the check"),
        };
        let passed = result.passed;
        parts = vec![PartInput::Text {
            text: check_run::feedback_prompt(&result),
        }];
        record.checks.push(result);
        job.publish(record, true);
        if passed {
            return Outcome::Done;
        }
        if iteration >= until.max_iterations {
            return Outcome::Failed(format!(
                "the check `{}` still failed after {iteration} attempt(s) (until.maxIterations); \
                 each result is in the task's `checks`",
                until.check
            ));
        }
        if let Some(guard) = &mut state.budget {
            let spent = record.spent.unwrap_or_default();
            if let Some(stop) = guard.check(job, record, &spent) {
                return Outcome::Failed(budget::stop_task(job, record, stop));
            }
        }
        iteration += 1;
        state.begin_follow_up();
    }
}

/// What one turn of the job needs to follow the session to its end.
struct TurnCtx<'a> {
    lease: &'a Lease,
    job: &'a JobHandle,
    input: &'a WorkerJob,
    session_id: &'a str,
    deadline: Instant,
    messages_before: usize,
    /// A next model is ready: the first provider failure ends the turn at once instead of
    /// waiting out OpenCode's own retries.
    fallback_ready: bool,
    /// The model the turn runs on (`provider/model`), for the fallback's reason.
    model: String,
}

/// How following a turn ended.
enum TurnEnd {
    /// The session is idle: the turn is over and its reply can be read.
    Idle,
    /// The job is over (canceled, timed out, over budget, the server gone, failed).
    Over(Outcome),
    /// The provider failed and a fallback is ready; the session was aborted.
    FallBack(String),
}

fn timed_out(input: &WorkerJob, phase: &str) -> Outcome {
    Outcome::Failed(format!(
        "timed out after {} ms (timeoutMs) while {phase}",
        input.timeout.as_millis()
    ))
}

impl TurnCtx<'_> {
    /// Follows the session's events until the turn is idle or the job ends.
    async fn follow(
        &self,
        record: &mut JobRecord,
        state: &mut Progress,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<SessionSignal>,
        answered: &mut tokio::sync::mpsc::UnboundedReceiver<orchestra_protocol::PermissionAnswer>,
        provider_failed: &mut bool,
    ) -> TurnEnd {
        let (lease, job, input, session_id) = (self.lease, self.job, self.input, self.session_id);
        let mut poll = tokio::time::interval(STATUS_POLL);
        poll.tick().await;
        loop {
            let budget_timer = state.budget.as_ref().and_then(BudgetGuard::next_timer);
            let step = tokio::select! {
                () = job.cancelled().cancelled() => {
                    turn::flush_text(job, record, state);
                    let why = job.cancel_reason();
                    return TurnEnd::Over(stopped(lease, session_id, Interrupt::Canceled(why), input, Phase::Turn).await);
                }
                () = tokio::time::sleep_until(self.deadline.into()) => {
                    turn::flush_text(job, record, state);
                    return TurnEnd::Over(stopped(lease, session_id, Interrupt::TimedOut, input, Phase::Turn).await);
                }
                () = sleep_until_some(state.text_due) => {
                    turn::flush_text(job, record, state);
                    (Phase::Turn, Ok(Step::Publish))
                }
                () = sleep_until_some(budget_timer) => (Phase::Turn, Ok(turn::budget_timer(job, record, state))),
                () = pool_exhausted(input.shared_budget.as_ref()) => {
                    // Another job of the pool spent the last of it.
                    record.budget_stop = input.shared_budget.as_ref().and_then(SharedBudget::stop);
                    let text = record.budget_stop.as_ref().map(pool_stop_text).unwrap_or_default();
                    (Phase::Turn, Ok(Step::Fail(text)))
                }
                _ = poll.tick() => (
                    Phase::Reconciling,
                    or_stop(job, self.deadline, turn::reconcile(lease, job, record, state, session_id)).await,
                ),
                // `state` holds a sender, so this never ends while the loop runs.
                Some(answer) = answered.recv() => {
                    record.progress.permissions.push(answer);
                    record.progress.last_activity_at = Some(now_ms());
                    (Phase::Turn, Ok(Step::Publish))
                }
                signal = events.recv() => match signal {
                    None => {
                        return TurnEnd::Over(Outcome::Failed(
                            server_gone(lease).unwrap_or_else(|| "the worker's event stream closed".into()),
                        ));
                    }
                    Some(SessionSignal::ServerGone(why)) => return TurnEnd::Over(Outcome::Failed(gone_text(&why))),
                    Some(SessionSignal::Resubscribed) => {
                        tracing::info!(job = %record.id, "event stream back; reconciling the session");
                        // The first calls after a drop may meet dead pooled connections: look
                        // again shortly, not only at the next slow poll.
                        poll.reset_after(RECHECK_AFTER_RECONNECT);
                        (
                            Phase::Reconciling,
                            or_stop(job, self.deadline, turn::reconcile(lease, job, record, state, session_id)).await,
                        )
                    }
                    Some(SessionSignal::Event(event)) => {
                        lease.touch();
                        (
                            Phase::Event,
                            or_stop(job, self.deadline, turn::on_event(lease, job, record, input, state, *event)).await,
                        )
                    }
                },
            };
            // What each wake-up did (reconciling, answering a permission, following an event)
            // ran under the cancel token and the deadline too.
            let step = match step {
                (_, Ok(step)) => step,
                (phase, Err(stop)) => {
                    return TurnEnd::Over(stopped(lease, session_id, stop, input, phase).await);
                }
            };
            if !matches!(step, Step::Continue) {
                turn::flush_text(job, record, state);
            }
            match step {
                Step::Continue => {}
                Step::Publish => job.publish(record, false),
                Step::Idle if state.need_busy && !state.seen_busy => {}
                Step::Idle => return TurnEnd::Idle,
                Step::Fail(message) => {
                    abort(lease, session_id).await;
                    if record.budget_stop.is_some() {
                        keep_partial_output(lease, record, session_id, self.messages_before).await;
                        return TurnEnd::Over(Outcome::Failed(message));
                    }
                    return TurnEnd::Over(Outcome::Failed(server_gone(lease).unwrap_or(message)));
                }
                Step::ProviderFailed {
                    message,
                    retry_attempt,
                } => {
                    *provider_failed = true;
                    if self.fallback_ready {
                        abort(lease, session_id).await;
                        return TurnEnd::FallBack(format!("{} failed: {message}", self.model));
                    }
                    match retry_attempt {
                        Some(attempt) if attempt >= input.retry_limit => {
                            abort(lease, session_id).await;
                            let why = format!(
                                "the model provider keeps failing: {message} (OpenCode retried {attempt} times; \
                                 the limit is tasks.providerRetryLimit = {}). Check the provider's key, quota and URL",
                                input.retry_limit
                            );
                            return TurnEnd::Over(Outcome::Failed(
                                server_gone(lease).unwrap_or(why),
                            ));
                        }
                        Some(_) => job.publish(record, false),
                        None => state.error = Some(message),
                    }
                }
            }
        }
    }
}

/// Waits until the shared budget is exhausted, or forever when there is none.
async fn pool_exhausted(pool: Option<&SharedBudget>) {
    match pool {
        Some(pool) => pool.exhausted().cancelled().await,
        None => std::future::pending().await,
    }
}

/// Waits until `at`, or forever when there is no such time.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The session the job runs on: a fresh one pinned with the profile's permission rules, or the
/// continued task's own (which must still exist). Also returns how many messages it held
/// before this job, so the job's answer and usage count only its own.
async fn open_session(
    lease: &Lease,
    job: &JobHandle,
    input: &WorkerJob,
    deadline: Instant,
    continued: Option<&str>,
) -> Result<(String, usize), Outcome> {
    let client = &lease.client;
    if let Some(session_id) = continued {
        return match or_stop(job, deadline, client.messages(session_id)).await {
            Ok(Ok(messages)) => Ok((session_id.to_owned(), messages.len())),
            Ok(Err(err)) => Err(Outcome::Failed(format!(
                "cannot continue in session {session_id} on worker `{}`: {err}. The worker keeps \
                 only the last runtime.keepSessions sessions and loses them when it restarts; \
                 start a new task instead",
                lease.profile.id
            ))),
            Err(Interrupt::Canceled(why)) => Err(Outcome::Canceled(why)),
            Err(Interrupt::TimedOut) => Err(Outcome::Failed(format!(
                "timed out after {} ms (timeoutMs) while reading the continued session",
                input.timeout.as_millis()
            ))),
        };
    }
    let title = format!("orchestra {} ({})", short_id(job.id()), lease.profile.id);
    let request = CreateSessionRequest {
        title: Some(title),
        permission: Some(agents::session_permission_rules(&lease.profile)),
        ..CreateSessionRequest::default()
    };
    match or_stop(job, deadline, client.create_session(&request)).await {
        Ok(Ok(session)) => Ok((session.id, 0)),
        Ok(Err(err)) => Err(Outcome::Failed(server_gone(lease).unwrap_or_else(|| {
            format!(
                "could not create a session on worker `{}`: {err}",
                lease.profile.id
            )
        }))),
        Err(Interrupt::Canceled(why)) => Err(Outcome::Canceled(why)),
        Err(Interrupt::TimedOut) => Err(Outcome::Failed(format!(
            "timed out after {} ms (timeoutMs) while creating the worker's session",
            input.timeout.as_millis()
        ))),
    }
}

/// A task its budget stopped keeps what the worker wrote so far as its answer.
async fn keep_partial_output(
    lease: &Lease,
    record: &mut JobRecord,
    session_id: &str,
    messages_before: usize,
) {
    match lease.client.messages(session_id).await {
        Ok(messages) => {
            let summary = summarize(messages.get(messages_before..).unwrap_or_default());
            record.progress.files_touched =
                super::files::files_touched(&messages, lease.work_dir());
            if !summary.text.trim().is_empty() {
                record.response_text = Some(summary.text);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, job = %record.id, "could not read the partial output of a stopped task")
        }
    }
}
/// Where a job was when it was stopped after its session existed, for the error it gets.
#[derive(Clone, Copy)]
enum Phase {
    /// Sending the prompt, or the model's turn while nothing else was under way.
    Turn,
    /// Asking the server where the session is (the slow poll, or after the event stream
    /// came back).
    Reconciling,
    /// Following one of the session's events (a permission question is answered here).
    Event,
    /// Reading the finished turn's messages.
    Collecting,
}

impl Phase {
    fn while_doing(self) -> &'static str {
        match self {
            Phase::Turn => "",
            Phase::Reconciling => " while reconciling the session with its server",
            Phase::Event => " while following the session's events",
            Phase::Collecting => " while collecting the worker's reply",
        }
    }
}

/// The failure of a task whose server was taken away (a crash, or a restart by a person).
fn gone_text(why: &str) -> String {
    format!("{why} while running this task; the worker is being restarted, start the task again")
}

/// When a call to the server failed because the server was taken away meanwhile, that is the
/// reason to report, not the refused connection it caused.
fn server_gone(lease: &Lease) -> Option<String> {
    lease.conn.gone_reason().map(gone_text)
}

/// A job stopped after its session existed: the session is aborted, so the model stops.
async fn stopped(
    lease: &Lease,
    session_id: &str,
    stop: Interrupt,
    input: &WorkerJob,
    phase: Phase,
) -> Outcome {
    abort(lease, session_id).await;
    match stop {
        Interrupt::Canceled(why) => Outcome::Canceled(why),
        Interrupt::TimedOut => Outcome::Failed(format!(
            "timed out after {} ms (timeoutMs){}; the worker's model was stopped",
            input.timeout.as_millis(),
            phase.while_doing()
        )),
    }
}

async fn collect_result(
    lease: &Lease,
    record: &mut JobRecord,
    session_id: &str,
    session_error: Option<String>,
    messages_before: usize,
) -> Outcome {
    let messages = match lease.client.messages(session_id).await {
        Ok(messages) => messages,
        Err(err) => return Outcome::Failed(format!("could not read the worker's reply: {err}")),
    };
    // A continued session holds earlier tasks' messages: the answer and usage are this job's.
    let summary = summarize(messages.get(messages_before..).unwrap_or_default());
    record.progress.files_touched = super::files::files_touched(&messages, lease.work_dir());
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

async fn abort(lease: &Lease, session_id: &str) {
    // The lease's client addresses the session's own directory (a task's worktree).
    match tokio::time::timeout(ABORT_WAIT, lease.client.abort(session_id)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, session = session_id, "abort failed"),
        Err(_) => tracing::warn!(
            session = session_id,
            "the server did not answer the abort in {} s; the task ends without it",
            ABORT_WAIT.as_secs()
        ),
    }
}

fn finish(job: JobHandle, record: &mut JobRecord, status: JobStatus, error: Option<String>) {
    if error.is_some() {
        record.error = error;
    }
    record.finish(status, now_ms());
    job.finish(record);
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
