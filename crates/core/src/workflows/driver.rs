//! Runs a workflow's steps as worker jobs, gates pauses, and writes the run at every step
//! boundary and the workflow job at the end.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use orchestra_protocol::{
    BudgetStop, EventBody, JobRecord, JobReport, JobStatus, TaskKind, WorkflowRun,
    WorkflowRunStatus, WorkflowStepEvent, WorkflowStepResult, WorkflowStepStatus, now_ms,
};

use crate::config::{
    STEP_OUTPUT_PREFIX, WorkflowDefinition, WorkflowExecution, WorkflowIntervene, WorkflowStep,
};
use crate::jobs::{
    JobContext, JobHandle, SharedBudget, TokenBudget, WorkerJob, attachments, check_run,
};

use super::limits::budget_tokens;
use super::{Workflows, carry, run_budget, run_event};

/// How long a canceled workflow waits for its steps' sessions to be aborted.
const STEP_CANCEL_WAIT: Duration = Duration::from_secs(10);

/// How a stretch of the run ended.
enum End {
    Success,
    /// Resumable; the job ends with `job_status`.
    Paused {
        reason: String,
        job_status: JobStatus,
    },
    Error(String),
}

/// Working time: what earlier stretches used plus this one so far.
struct Clock {
    started: Instant,
    before: u64,
}

impl Clock {
    fn active_ms(&self) -> u64 {
        self.before + u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

pub(super) async fn drive(
    flows: Workflows,
    mut run: WorkflowRun,
    definition: WorkflowDefinition,
    mut record: JobRecord,
    job: JobHandle,
    workspace: super::worktree_run::RunWorkspace,
) {
    let tree = match workspace
        .open(flows.config(), &definition, &mut record)
        .await
    {
        Ok(tree) => tree,
        Err(why) => {
            let clock = Clock {
                started: Instant::now(),
                before: run.active_ms,
            };
            let why = format!("the run's worktree could not be made: {why}");
            finish(
                &flows,
                run,
                &definition,
                record,
                job,
                End::Error(why),
                &clock,
            );
            return;
        }
    };
    let execution: WorkflowExecution = parse_ui(&run.ui.execution);
    let intervene: WorkflowIntervene = parse_ui(&run.ui.intervene);
    let clock = Clock {
        started: Instant::now(),
        before: run.active_ms,
    };
    let total = definition.steps.len();
    let preflight = if run.current_step_index == 0 {
        super::skills::preflight(flows.runtime.pool(), &definition, run.auto_spawn).await
    } else {
        None
    };
    // One pool for every step of this stretch, counting what earlier stretches spent.
    let pool = run
        .budget
        .map(|budget| SharedBudget::new(budget, run.spent.unwrap_or_default()));
    let end = loop {
        if let Some(why) = &preflight {
            break End::Error(why.clone());
        }
        let index = run.current_step_index;
        let Some(step) = definition.steps.get(index) else {
            break End::Success;
        };
        if let Some(why) = over_budget(&run, &clock) {
            break End::Error(why);
        }
        // Time may have run out between steps: nothing new starts.
        if let Some(pool) = &pool
            && let Some(stop) = pool.tick(&job, &record)
        {
            run.spent = Some(pool.total());
            break budget_paused(&job, &record, &mut run, stop, &step.id);
        }
        record.progress.last_output = Some(format!(
            "step {}/{total} `{}` running on {}",
            index + 1,
            step.id,
            workers_of(step)
        ));
        record.progress.last_activity_at = Some(now_ms());
        job.publish(&record, true);

        let shared = Shared {
            tree: tree.as_ref(),
            pool: pool.as_ref(),
        };
        let stepping = run_step(&flows, &job, &mut run, &definition, step, &clock, shared);
        let ran = run_budget::with_pool_clock(pool.as_ref(), &job, &record, stepping).await;
        if let Some(pool) = &pool {
            run.spent = Some(pool.total());
        }
        let members = run_members(&run, step);
        let failed: Vec<&WorkflowStepResult> = members
            .iter()
            .filter(|r| r.status != WorkflowStepStatus::Success)
            .copied()
            .collect();
        let warned = members.iter().any(|r| r.warning.is_some());
        let error = failed.first().map(|r| {
            format!(
                "step `{}` failed: {}",
                r.id,
                r.error.as_deref().unwrap_or("")
            )
        });
        save(&flows, &mut run, &clock);

        // A canceled workflow job (task_cancel or hub shutdown) pauses the run; the
        // interrupted step runs again on resume.
        if job.cancelled().is_cancelled() || ran.is_err() {
            let why = job.cancel_reason();
            break End::Paused {
                reason: format!(
                    "canceled ({why}) during step `{}`; resume to run it again",
                    step.id
                ),
                job_status: JobStatus::Canceled,
            };
        }
        // The run's budget is spent: nothing new starts; a raised budget resumes it.
        if let Some(stop) = pool.as_ref().and_then(SharedBudget::stop) {
            break budget_paused(&job, &record, &mut run, stop, &step.id);
        }
        let last = index + 1 == total;
        if (error.is_some() || !last)
            && let Some(why) = over_budget(&run, &clock)
        {
            break End::Error(why);
        }
        if let Some(error) = error {
            match intervene {
                WorkflowIntervene::Never => break End::Error(error),
                WorkflowIntervene::OnError
                | WorkflowIntervene::OnWarning
                | WorkflowIntervene::Always => {
                    break End::Paused {
                        reason: format!(
                            "{error}; fix the cause, then resume and the step runs again"
                        ),
                        job_status: JobStatus::Failed,
                    };
                }
            }
        }
        run.current_step_index += 1;
        if last {
            break End::Success;
        }
        let pause_why = if execution == WorkflowExecution::Step {
            Some("execution is `step`")
        } else if intervene == WorkflowIntervene::Always {
            Some("intervene is `always`")
        } else if intervene == WorkflowIntervene::OnWarning && warned {
            Some("intervene is `on-warning` and the step warned")
        } else {
            None
        };
        if let Some(why) = pause_why {
            break End::Paused {
                reason: format!(
                    "paused after step `{}` ({why}); resume to run step `{}`",
                    step.id,
                    definition.steps[index + 1].id
                ),
                job_status: JobStatus::Succeeded,
            };
        }
    };
    if let Some(tree) = tree {
        tree.close(&mut record, flows.runtime().store()).await;
    }
    finish(&flows, run, &definition, record, job, end, &clock);
}

/// The run's budget is spent: it pauses, and a raised budget resumes it.
fn budget_paused(
    job: &JobHandle,
    record: &JobRecord,
    run: &mut WorkflowRun,
    stop: BudgetStop,
    step_id: &str,
) -> End {
    run.budget_stop = Some(stop);
    End::Paused {
        reason: run_budget::exceeded(job, record, run, stop, step_id),
        job_status: JobStatus::Failed,
    }
}

/// What every step of a stretch of the run shares: its worktree and its budget pool.
#[derive(Clone, Copy)]
struct Shared<'a> {
    tree: Option<&'a super::worktree_run::RunWorktree>,
    pool: Option<&'a SharedBudget>,
}

/// Starts the step's workers (every member of a group at once; on a retry only the members
/// that did not succeed) and waits for all of them. `Err` when the workflow job was canceled.
async fn run_step(
    flows: &Workflows,
    job: &JobHandle,
    run: &mut WorkflowRun,
    definition: &WorkflowDefinition,
    step: &WorkflowStep,
    clock: &Clock,
    shared: Shared<'_>,
) -> Result<(), ()> {
    let runtime = job.runtime();
    let remaining = run
        .limits
        .max_run_ms
        .saturating_sub(clock.active_ms())
        .max(1);
    let first = run.current_step_index == 0;
    let mut started: Vec<(String, String)> = Vec::new();
    for member in step.members() {
        if result(run, &member.id).is_some_and(|r| r.status == WorkflowStepStatus::Success) {
            continue;
        }
        let timeout = member
            .timeout_ms
            .unwrap_or(run.limits.per_step_timeout_ms)
            .min(run.limits.per_step_timeout_ms)
            .min(remaining);
        let launched = start_member(flows, run, definition, member, first, timeout, shared).await;
        let Some(slot) = result_mut(run, &member.id) else {
            continue;
        };
        *slot = WorkflowStepResult {
            status: WorkflowStepStatus::Running,
            started_at: Some(now_ms()),
            attempts: slot.attempts + 1,
            ..WorkflowStepResult {
                id: slot.id.clone(),
                title: slot.title.clone(),
                worker_id: slot.worker_id.clone(),
                group: slot.group.clone(),
                ..WorkflowStepResult::default()
            }
        };
        match launched {
            Ok(task_id) => {
                slot.task_id = Some(task_id.clone());
                started.push((member.id.clone(), task_id));
            }
            Err(err) => {
                slot.status = WorkflowStepStatus::Error;
                slot.error = Some(err);
                stamp_finish(slot);
            }
        }
        step_event(runtime, run, &member.id);
    }
    save(flows, run, clock);

    let waits = join_all(started.iter().map(|(_, task)| runtime.wait_final(task)));
    let records = tokio::select! {
        records = waits => records,
        () = job.cancelled().cancelled() => {
            for (_, task) in &started {
                runtime.cancel(task, "the workflow was canceled");
            }
            let deadline = tokio::time::Instant::now() + STEP_CANCEL_WAIT;
            for (_, task) in &started {
                if let Err(err) = runtime.await_until(task, deadline).await {
                    tracing::warn!(error = %err, "waiting for a canceled workflow step failed");
                }
            }
            for (id, _) in &started {
                if let Some(slot) = result_mut(run, id) {
                    slot.status = WorkflowStepStatus::Error;
                    slot.error = Some("canceled with the workflow".into());
                    stamp_finish(slot);
                }
                step_event(runtime, run, id);
            }
            return Err(());
        }
    };
    for ((id, _), outcome) in started.iter().zip(records) {
        if let Ok(job) = &outcome {
            run.usage.add(&job.usage);
        }
        let Some(slot) = result_mut(run, id) else {
            continue;
        };
        match outcome {
            Ok(job) => {
                slot.model = job.model;
                slot.usage = job.usage;
                match job.response_text {
                    Some(text) if job.status == JobStatus::Succeeded && !text.trim().is_empty() => {
                        slot.status = WorkflowStepStatus::Success;
                        slot.response = Some(text);
                    }
                    _ => {
                        slot.status = WorkflowStepStatus::Error;
                        slot.error = Some(job.error.unwrap_or_else(|| {
                            format!("the worker job ended {}", job.status.as_str())
                        }));
                    }
                }
            }
            Err(err) => {
                slot.status = WorkflowStepStatus::Error;
                slot.error = Some(err.to_string());
            }
        }
        stamp_finish(slot);
    }
    // Announced after the carry is added, so each event holds the step's carry size.
    add_carry(run, step);
    for (id, _) in &started {
        step_event(runtime, run, id);
    }
    Ok(())
}

/// Records and starts one member's worker job; the error text says why it could not start.
/// Attachments go to the first step only, as in the original.
async fn start_member(
    flows: &Workflows,
    run: &WorkflowRun,
    definition: &WorkflowDefinition,
    member: &WorkflowStep,
    first: bool,
    timeout: u64,
    shared: Shared<'_>,
) -> Result<String, String> {
    let Shared { tree, pool } = shared;
    let config = flows.config();
    config
        .profile(&member.worker_id)
        .map_err(|err| err.to_string())?;
    let prepared = if first {
        attachments::prepare(
            &run.attachments,
            flows.project_dir(),
            (&config.tasks).into(),
        )
        .await
        .map_err(|err| err.to_string())?
    } else {
        Vec::new()
    };
    let until = member
        .until
        .as_ref()
        .map(|until| check_run::resolve_until(config, until))
        .transpose()
        .map_err(|err| format!("step `{}`: {err}", member.id))?;
    let task = render(&member.prompt, run, definition);
    let mut record =
        flows
            .runtime
            .new_record(member.worker_id.clone(), task.clone(), TaskKind::Worker);
    // A label for people; code finds the run through `run_id`.
    record.requested_by = Some(format!("workflow {} (step {})", run.workflow_id, member.id));
    record.run_id = Some(run.run_id.clone());
    // The block follows the run's task, not the step's prompt (which grows with the carry),
    // so every step of a run sees the same block while memory is unchanged.
    let context = match &flows.memory {
        Some(memory) => memory.block_for_worker(&run.task).await,
        None => None,
    };
    let spent = budget_tokens(&run.usage);
    let job = WorkerJob {
        profile_id: member.worker_id.clone(),
        task,
        from: None,
        model: member.model.clone(),
        model_policy: config.tasks.default_model_policy,
        attachments: prepared,
        auto_spawn: run.auto_spawn,
        timeout: Duration::from_millis(timeout),
        retry_limit: config.tasks.provider_retry_limit,
        permission_ask_timeout: Duration::from_millis(config.tasks.permission_ask_timeout_ms),
        context: JobContext::text(context),
        // What is left of the run's budget: a step that would spend past it is stopped
        // there, not only after it ends.
        token_budget: Some(TokenBudget {
            tokens: run.limits.max_run_tokens.saturating_sub(spent).max(1),
            setting: "the run's maxRunTokens".to_owned(),
        }),
        required_skills: member.required_skills.clone(),
        workspace: tree.map(super::worktree_run::RunWorktree::for_step),
        budget: config
            .profile(&member.worker_id)
            .ok()
            .and_then(|p| p.budget),
        prior_spend: orchestra_protocol::BudgetSpend::default(),
        session_id: None,
        until,
        shared_budget: pool.cloned(),
    };
    flows
        .runtime
        .start_worker(record, job)
        .map_err(|err| err.to_string())
}

/// Publishes one member's result as it is now.
fn step_event(runtime: &crate::jobs::JobRuntime, run: &WorkflowRun, member_id: &str) {
    let Some((index, step)) = run
        .steps
        .iter()
        .enumerate()
        .find(|(_, r)| r.id == member_id)
    else {
        return;
    };
    runtime
        .bus()
        .publish(EventBody::WorkflowStep(WorkflowStepEvent {
            run_id: run.run_id.clone(),
            job_id: run.job_id.clone(),
            workflow_id: run.workflow_id.clone(),
            index,
            step: step.clone(),
        }));
}

/// On success of every member, appends the carrying members' handoffs (in order) to the
/// carry; trimming and missing headings become warnings on the member.
fn add_carry(run: &mut WorkflowRun, step: &WorkflowStep) {
    let members = step.members();
    let all_ok = members
        .iter()
        .all(|m| result(run, &m.id).is_some_and(|r| r.status == WorkflowStepStatus::Success));
    if !all_ok {
        // The carry changes only when the step succeeded.
        return;
    }
    let max = usize::try_from(run.limits.max_carry_chars).unwrap_or(usize::MAX);
    for member in members.into_iter().filter(|m| m.carry) {
        let response = result(run, &member.id)
            .and_then(|r| r.response.clone())
            .unwrap_or_default();
        let carried = carry::append(&run.carry, &member.title, &response, max);
        run.carry = carried.carry;
        let mut warnings = Vec::new();
        if carried.trimmed {
            tracing::info!(
                event = "orchestra.workflow.carry.trimmed",
                run = %run.run_id,
                step = %member.id,
                max,
                "carry trimmed to maxCarryChars"
            );
            warnings.push(format!("the carry was trimmed to maxCarryChars ({max})"));
        }
        if !carry::has_handoff(&response) {
            warnings.push(
                "the reply had no handoff headings (## Summary, ## Next, …); it was carried whole as the summary"
                    .to_owned(),
            );
        }
        let carry_chars = u64::try_from(run.carry.chars().count()).unwrap_or(u64::MAX);
        if let Some(slot) = result_mut(run, &member.id) {
            slot.carry_chars = Some(carry_chars);
            if !warnings.is_empty() {
                slot.warning = Some(warnings.join("; "));
            }
        }
    }
}

/// Fills the template: `{task}`, `{carry}` and `{steps.<id>}`, in one pass so that text
/// coming from a step is never expanded again.
fn render(template: &str, run: &WorkflowRun, definition: &WorkflowDefinition) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let replaced = if tail.starts_with("{task}") {
            Some(("{task}".len(), run.task.clone()))
        } else if tail.starts_with("{carry}") {
            Some(("{carry}".len(), run.carry.clone()))
        } else if tail.starts_with(STEP_OUTPUT_PREFIX) {
            tail.find('}').and_then(|end| {
                step_output(run, definition, &tail[STEP_OUTPUT_PREFIX.len()..end])
                    .map(|text| (end + 1, text))
            })
        } else {
            None
        };
        match replaced {
            Some((len, text)) => {
                out.push_str(&text);
                rest = &tail[len..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A step's reply, or a group's members' replies under their titles.
fn step_output(run: &WorkflowRun, definition: &WorkflowDefinition, id: &str) -> Option<String> {
    if let Some(group) = definition
        .steps
        .iter()
        .find(|s| s.id == id && !s.parallel.is_empty())
    {
        let parts: Vec<String> = group
            .parallel
            .iter()
            .map(|m| {
                let text = result(run, &m.id)
                    .and_then(|r| r.response.clone())
                    .unwrap_or_default();
                format!("### {}\n{text}", m.title)
            })
            .collect();
        return Some(parts.join("\n\n"));
    }
    result(run, id).map(|r| r.response.clone().unwrap_or_default())
}

fn result<'a>(run: &'a WorkflowRun, id: &str) -> Option<&'a WorkflowStepResult> {
    run.steps.iter().find(|r| r.id == id)
}

fn result_mut<'a>(run: &'a mut WorkflowRun, id: &str) -> Option<&'a mut WorkflowStepResult> {
    run.steps.iter_mut().find(|r| r.id == id)
}

/// The results of a top-level step: itself, or its group's members.
fn run_members<'a>(run: &'a WorkflowRun, step: &WorkflowStep) -> Vec<&'a WorkflowStepResult> {
    step.members()
        .into_iter()
        .filter_map(|m| result(run, &m.id))
        .collect()
}

fn workers_of(step: &WorkflowStep) -> String {
    if step.parallel.is_empty() {
        step.worker_id.clone()
    } else {
        step.parallel
            .iter()
            .map(|m| m.worker_id.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn stamp_finish(slot: &mut WorkflowStepResult) {
    let now = now_ms();
    slot.finished_at = Some(now);
    slot.duration_ms = slot.started_at.map(|s| (now - s).max(0));
}

fn over_budget(run: &WorkflowRun, clock: &Clock) -> Option<String> {
    let tokens = budget_tokens(&run.usage);
    if tokens > run.limits.max_run_tokens {
        return Some(format!(
            "stopped: the run used {tokens} tokens, more than its maxRunTokens budget of {}; raise security.workflows.maxRunTokens (or the workflow's limits) to allow more",
            run.limits.max_run_tokens
        ));
    }
    let active = clock.active_ms();
    if active >= run.limits.max_run_ms {
        return Some(format!(
            "stopped: the run worked for {active} ms, reaching its maxRunMs budget of {} ms; raise security.workflows.maxRunMs (or the workflow's limits) to allow more",
            run.limits.max_run_ms
        ));
    }
    None
}

/// Writes the run while this hub still owns it; a failed write is logged, because the job
/// record still tells the outcome.
fn save(flows: &Workflows, run: &mut WorkflowRun, clock: &Clock) {
    run.active_ms = clock.active_ms();
    run.updated_at = now_ms();
    match flows.runtime.store().save_run_owned(run) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            run = %run.run_id,
            "the store refused a run write: the run was paused or taken over by another hub"
        ),
        Err(err) => {
            tracing::error!(run = %run.run_id, error = %err, "saving the workflow run failed");
        }
    }
}

fn finish(
    flows: &Workflows,
    mut run: WorkflowRun,
    definition: &WorkflowDefinition,
    mut record: JobRecord,
    job: JobHandle,
    end: End,
    clock: &Clock,
) {
    let now = now_ms();
    let last_output = run
        .steps
        .iter()
        .rev()
        .find_map(|r| r.response.clone().filter(|t| !t.trim().is_empty()));
    let resume_hint = format!(
        "resume with task_start({{kind: \"workflow\", continueRunId: \"{}\", task: \"continue\"}})",
        run.run_id
    );
    let (job_status, response, error) = match end {
        End::Success => {
            run.status = WorkflowRunStatus::Success;
            run.finished_at = Some(now);
            (JobStatus::Succeeded, last_output, None)
        }
        End::Paused { reason, job_status } => {
            run.status = WorkflowRunStatus::Paused;
            let note = format!(
                "workflow `{}` paused: {reason}; {resume_hint}",
                run.workflow_id
            );
            run.reason = Some(reason);
            match job_status {
                JobStatus::Succeeded => {
                    let text = match last_output {
                        Some(text) => format!("{text}\n\n---\n{note}"),
                        None => note,
                    };
                    (job_status, Some(text), None)
                }
                JobStatus::Running | JobStatus::Failed | JobStatus::Canceled => {
                    (job_status, last_output, Some(note))
                }
            }
        }
        End::Error(reason) => {
            run.status = WorkflowRunStatus::Error;
            run.finished_at = Some(now);
            run.reason = Some(reason.clone());
            (JobStatus::Failed, last_output, Some(reason))
        }
    };
    save(flows, &mut run, clock);
    flows.runtime.bus().publish(run_event(&run));
    record.report = Some(report(&run, definition));
    record.usage = run.usage;
    record.model = run.steps.iter().rev().find_map(|r| r.model.clone());
    record.response_text = response;
    record.error = error;
    record.finish(job_status, now_ms());
    job.finish(&record);
}

/// The original's report: `summary` is `<name> (<id>)`, `details` one readable line per step
/// (for a person or a model; the run itself is `task_list({view: "workflow", runId})`).
fn report(run: &WorkflowRun, definition: &WorkflowDefinition) -> JobReport {
    let mut details = format!(
        "Run {} of workflow {}: {}.",
        run.run_id,
        run.workflow_id,
        run.status.as_str()
    );
    for step in &run.steps {
        details.push_str(&format!(
            "\n- {} ({}): {}",
            step.id,
            step.worker_id,
            step.status.as_str()
        ));
        if let Some(task) = &step.task_id {
            details.push_str(&format!(", task {task}"));
        }
        if let Some(ms) = step.duration_ms {
            details.push_str(&format!(", {ms} ms"));
        }
        if let Some(model) = &step.model {
            details.push_str(&format!(", {model}"));
        }
    }
    let issues = run
        .steps
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("{}: {e}", r.id))
                .or_else(|| r.warning.as_ref().map(|w| format!("{}: {w}", r.id)))
        })
        .collect();
    JobReport {
        summary: Some(format!("{} ({})", definition.name, definition.id)),
        details: Some(details),
        issues,
        notes: run.reason.clone(),
    }
}

fn parse_ui<T: serde::de::DeserializeOwned + Default>(name: &str) -> T {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).unwrap_or_default()
}
