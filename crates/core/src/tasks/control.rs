//! What people do to running work besides the five tools — answer a worker's permission
//! question, restart a worker's server, pause, resume or end a workflow run — and the read
//! models the panel shows: a task's events, the hub's log, the configuration in force.
//!
//! The HTTP API calls these and nothing else, so the panel holds no logic of its own.

use std::time::Duration;

use orchestra_protocol::{
    ConfigFileView, ConfigKeyView, ConfigView, EventBody, HubEvent, LogLine, LogsPage, LogsQuery,
    PermissionQuestion, ProfileView, QuestionReply, TaskKind, TaskStartParams, TaskStartResult,
    WorkerSnapshot, WorkflowRun, WorkflowStepView, WorkflowView,
};
use serde_json::{Map, Value};

use super::{TaskEngine, TaskError};
use crate::config::{Isolation, PermissionReply, WorkflowStep};
use crate::jobs::questions::AnsweredBy;
use crate::opencode::PermissionReplyKind;
use crate::workflows::limits;

/// How long a read of the log or a task's events waits for the newest events to reach the store.
const FLUSH_BEFORE_READ: Duration = Duration::from_millis(500);
const LOG_TYPE: &str = "orchestra.log";
const DEFAULT_LOG_LINES: u32 = 500;
const MAX_LOG_LINES: u32 = 5000;
/// Events read per store query while filtering the log.
const LOG_PAGE: u32 = 1000;
/// A filtered log read looks at no more than this many lines, so a filter that matches
/// nothing answers quickly instead of reading the whole store.
const LOG_SCAN_CAP: usize = 50_000;
const MAX_JOB_EVENTS: u32 = 5000;
/// The default least severe level shown.
const INFO: u8 = 2;

impl TaskEngine {
    /// Permission questions waiting for a person, oldest first.
    pub fn pending_questions(&self) -> Vec<PermissionQuestion> {
        self.runtime.questions().pending()
    }

    /// A person's answer to a waiting question; it goes to OpenCode and into the job's progress.
    pub async fn answer_question(
        &self,
        request_id: &str,
        reply: QuestionReply,
    ) -> Result<PermissionQuestion, TaskError> {
        let reply = match reply {
            QuestionReply::Once => PermissionReplyKind::Once,
            QuestionReply::Always => PermissionReplyKind::Always,
            QuestionReply::Reject => PermissionReplyKind::Reject,
        };
        Ok(self
            .runtime
            .questions()
            .answer(request_id, reply, AnsweredBy::Person)
            .await?)
    }

    /// Restarts the server of a worker (every worker on it, in `shared` isolation); the tasks
    /// running there fail with a message that says so. Returns the worker once its new server
    /// is ready.
    pub async fn restart_worker(&self, worker_id: &str) -> Result<WorkerSnapshot, TaskError> {
        let pool = self.pool();
        pool.restart(worker_id).await?;
        Ok(pool.snapshot(worker_id)?)
    }

    /// Pauses a running workflow run (its workflow job is canceled; the running step runs
    /// again on resume).
    pub async fn pause_run(&self, run_id: &str) -> Result<WorkflowRun, TaskError> {
        Ok(self
            .workflows
            .pause(
                run_id,
                "paused by a person (panel or POST /api/v1/runs/{id}/pause)",
            )
            .await?)
    }

    /// Resumes a paused run, as `task_start({kind: "workflow", continueRunId})` does.
    pub async fn resume_run(
        &self,
        run_id: &str,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        self.start(
            TaskStartParams {
                kind: TaskKind::Workflow,
                task: "continue".into(),
                continue_run_id: Some(run_id.to_owned()),
                ..TaskStartParams::default()
            },
            requested_by,
        )
        .await
    }

    /// Ends a run for good (a running one is stopped first); it can no longer be resumed.
    pub async fn end_run(&self, run_id: &str) -> Result<WorkflowRun, TaskError> {
        Ok(self
            .workflows
            .end(
                run_id,
                "canceled by a person (panel or POST /api/v1/runs/{id}/cancel)",
            )
            .await?)
    }

    /// The events about one task after `after`, oldest first: what a live peek replays before
    /// it follows the stream.
    pub async fn job_events(
        &self,
        job_id: &str,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Vec<HubEvent>, TaskError> {
        if self.runtime.peek(job_id)?.is_none() {
            return Err(crate::jobs::JobError::UnknownTask {
                id: job_id.to_owned(),
            }
            .into());
        }
        self.bus().flush(FLUSH_BEFORE_READ).await;
        let limit = limit.unwrap_or(MAX_JOB_EVENTS).clamp(1, MAX_JOB_EVENTS);
        Ok(self.store().job_events_after(job_id, after, limit)?)
    }

    /// Lines of the hub's log (its own, its workers' OpenCode output, job outcomes), filtered.
    pub async fn logs(&self, query: &LogsQuery) -> Result<LogsPage, TaskError> {
        let min_level = match query.level.as_deref() {
            None => INFO,
            Some(level) => level_rank(level).ok_or_else(|| TaskError::BadValue {
                field: "level",
                value: level.to_owned(),
                hint: "one of: error, warn, info, debug".into(),
            })?,
        };
        let filter = LineFilter {
            min_level,
            worker: query.worker.as_deref(),
            job: query.job.as_deref(),
            text: query.text.as_deref().map(str::to_lowercase),
        };
        let limit = query
            .limit
            .unwrap_or(DEFAULT_LOG_LINES)
            .clamp(1, MAX_LOG_LINES) as usize;
        self.bus().flush(FLUSH_BEFORE_READ).await;
        let last_event_id = self.bus().last_id();
        let store = self.store();
        let mut lines = Vec::new();
        let mut scanned = 0usize;
        let mut more = false;
        match query.after {
            Some(mut cursor) => loop {
                let page = store.events_of_type_after(LOG_TYPE, cursor, LOG_PAGE)?;
                let full = page.len() == LOG_PAGE as usize;
                scanned += page.len();
                for event in page {
                    cursor = event.id;
                    if let Some(line) = filter.admit(event) {
                        if lines.len() == limit {
                            more = true;
                            break;
                        }
                        lines.push(line);
                    }
                }
                if more || !full || scanned >= LOG_SCAN_CAP {
                    break;
                }
            },
            None => {
                let mut cursor = query.before;
                loop {
                    let page = store.events_of_type_before(LOG_TYPE, cursor, LOG_PAGE)?;
                    let full = page.len() == LOG_PAGE as usize;
                    scanned += page.len();
                    for event in page {
                        cursor = Some(event.id);
                        if let Some(line) = filter.admit(event) {
                            if lines.len() == limit {
                                more = true;
                                break;
                            }
                            lines.push(line);
                        }
                    }
                    if more || !full || scanned >= LOG_SCAN_CAP {
                        more |= full;
                        break;
                    }
                }
                lines.reverse();
            }
        }
        Ok(LogsPage {
            lines,
            last_event_id,
            more,
        })
    }

    /// The configuration in force, read-only: files, which file set each key, profiles with
    /// the model their next task would get and why, workflows with their limits.
    pub async fn config_view(&self) -> ConfigView {
        let config = self.config();
        let pool = self.pool();
        let (plans, models_note) = match pool.any_conn().await {
            Some(conn) => match pool.read_catalog(&conn.client).await {
                Ok(catalog) => (pool.model_plans(&catalog), None),
                Err(err) => (
                    Vec::new(),
                    Some(format!("reading OpenCode's models failed: {err}")),
                ),
            },
            None => (
                Vec::new(),
                Some(
                    "no worker server runs yet, so which model each profile would get is not known; start a task or restart a worker"
                        .to_owned(),
                ),
            ),
        };
        let profiles = config
            .profiles
            .values()
            .map(|p| {
                let plan = plans.iter().find(|plan| plan.profile == p.id);
                ProfileView {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    purpose: p.purpose.clone(),
                    model_ref: pool.model_ref(p),
                    model: plan.and_then(|plan| plan.model.clone()),
                    model_reason: plan.map(|plan| plan.reason.clone()),
                    read_only: p.read_only(),
                    supports_vision: p.supports_vision,
                    supports_web: p.supports_web,
                    permission: p
                        .permission
                        .iter()
                        .map(|(k, v)| (k.clone(), enum_word(v)))
                        .collect(),
                    on_permission_ask: match p.on_permission_ask {
                        PermissionReply::Reject => "reject",
                        PermissionReply::Once => "once",
                        PermissionReply::Always => "always",
                        PermissionReply::Ask => "ask",
                    }
                    .to_owned(),
                    // As the pool places it: attach wins, then the profile's own isolation.
                    isolation: match (
                        config.runtime.isolation,
                        p.isolation.unwrap_or(config.runtime.isolation),
                    ) {
                        (Isolation::Attach, _) => "attach",
                        (_, Isolation::Process) => "process",
                        (_, Isolation::Shared | Isolation::Attach) => "shared",
                    }
                    .to_owned(),
                    temperature: p.temperature,
                    builtin: p.builtin,
                }
            })
            .collect();
        let catalog = self.workflows.catalog();
        let workflows = catalog
            .entries
            .iter()
            .map(|entry| {
                let d = &entry.definition;
                let (limits, problem) = match limits::effective(config, d) {
                    Ok(limits) => (Some(limits), None),
                    Err(err) => (None, Some(err.to_string())),
                };
                WorkflowView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    description: d.description.clone(),
                    source: entry.source.label(),
                    steps: d.steps.iter().map(step_view).collect(),
                    limits,
                    problem,
                }
            })
            .collect();
        let caps = &config.security.workflows;
        let provenance = &self.provenance;
        ConfigView {
            project_dir: self.project_dir.display().to_string(),
            files: provenance
                .files
                .iter()
                .map(|(path, origin)| ConfigFileView {
                    path: path.display().to_string(),
                    origin: origin.as_str().to_owned(),
                })
                .collect(),
            keys: provenance
                .keys
                .iter()
                .map(|k| ConfigKeyView {
                    key: k.key.clone(),
                    file: k.file.display().to_string(),
                    origin: k.origin.as_str().to_owned(),
                    value: k.value.clone(),
                })
                .collect(),
            profiles,
            models_note,
            provider_pin: pool.provider_pin().map(str::to_owned),
            workflows,
            workflow_caps: *caps,
            settings: settings(config),
        }
    }
}

/// Which log lines a reader asked for.
struct LineFilter<'a> {
    min_level: u8,
    worker: Option<&'a str>,
    job: Option<&'a str>,
    text: Option<String>,
}

impl LineFilter<'_> {
    fn admit(&self, event: HubEvent) -> Option<LogLine> {
        let EventBody::Log(log) = event.body else {
            return None;
        };
        let rank = level_rank(&log.level).unwrap_or(0);
        if rank < self.min_level {
            return None;
        }
        if self
            .worker
            .is_some_and(|w| log.worker_id.as_deref() != Some(w))
            || self.job.is_some_and(|j| log.job_id.as_deref() != Some(j))
        {
            return None;
        }
        if let Some(text) = &self.text
            && !log.message.to_lowercase().contains(text.as_str())
        {
            return None;
        }
        Some(LogLine {
            id: event.id,
            at: event.timestamp,
            log,
        })
    }
}

/// Severity as a number (higher is more severe); `None` for a word that is no level.
fn level_rank(level: &str) -> Option<u8> {
    match level {
        "debug" | "trace" => Some(1),
        "info" => Some(INFO),
        "warn" | "warning" => Some(3),
        "error" => Some(4),
        _ => None,
    }
}

fn step_view(step: &WorkflowStep) -> WorkflowStepView {
    WorkflowStepView {
        id: step.id.clone(),
        title: step.title.clone(),
        worker_id: if step.parallel.is_empty() {
            step.worker_id.clone()
        } else {
            String::new()
        },
        parallel: step.parallel.iter().map(step_view).collect(),
    }
}

/// A config enum as it is spelled in the file (`allow`, `on-error`, …).
fn enum_word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(word)) => word,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The settings outside profiles and workflow definitions, with the file format's names.
fn settings(config: &crate::config::Config) -> Value {
    let sections = serde_json::json!({
        "autoSpawn": config.auto_spawn,
        "startupTimeout": config.startup_timeout_ms,
        "healthCheckInterval": config.health_check_interval_ms,
        "spawn": config.spawn,
        "ui": config.ui,
        "tasks": config.tasks,
        "runtime": config.runtime,
        "hub": config.hub,
        "workflows": {"enabled": config.workflows.enabled, "ui": config.workflows.ui},
        "security": config.security,
        "memory": config.memory,
    });
    camel_keys(sections)
}

/// The resolved config serializes with Rust's field names; the file uses camelCase.
fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (camel(&key), camel_keys(value)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_names_convert() {
        assert!(level_rank("error") > level_rank("warn"));
        assert!(level_rank("warn") > level_rank("info"));
        assert_eq!(level_rank("loud"), None);
        assert_eq!(camel("default_timeout_ms"), "defaultTimeoutMs");
        assert_eq!(camel("tasks"), "tasks");
    }
}
