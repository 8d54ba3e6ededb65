//! Which events reach which target: by type name, then by the target's `profiles` and
//! `workflows`. Read from the event's JSON, so event types added later (budget warnings,
//! merge conflicts) are filtered the same way without a change here.

use orchestra_protocol::HubEvent;
use serde_json::Value;

use crate::config::NotifyTarget;

/// The facts a filter looks at, read once per event.
pub(super) struct EventFacts {
    pub type_name: String,
    pub envelope: Value,
    worker: Option<String>,
    workflow: Option<String>,
    /// A step of a workflow run (its run's own events say enough; also a step its own budget
    /// stopped), or a permission question a profile rule answered at once (no one is waiting
    /// for a person).
    nothing_to_tell: bool,
}

impl EventFacts {
    pub fn of(event: &HubEvent) -> Option<EventFacts> {
        let envelope = serde_json::to_value(event).ok()?;
        let data = envelope.get("data").cloned().unwrap_or(Value::Null);
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let job = data.get("job");
        let worker =
            text(job.and_then(|j| j.get("workerId"))).or_else(|| text(data.get("workerId")));
        let workflow = text(data.get("workflowId")).or_else(|| {
            worker
                .as_deref()
                .and_then(|w| w.strip_prefix("workflow:"))
                .map(str::to_owned)
        });
        let step_job = job.is_some_and(|j| {
            j.get("runId").is_some_and(|r| !r.is_null())
                && j.get("kind").and_then(Value::as_str) != Some("workflow")
        });
        let answered_by_rule = matches!(event.body, orchestra_protocol::EventBody::PermissionAsked(ref q) if q.expires_at.is_none());
        // A step's own budget stopped it: the run's end (or pause) is what a person hears of.
        let step_budget = matches!(event.body, orchestra_protocol::EventBody::BudgetExceeded(ref e) if e.scope == orchestra_protocol::BudgetScope::Task && e.run_id.is_some());
        Some(EventFacts {
            type_name: event.body.type_name().to_owned(),
            envelope,
            worker,
            workflow,
            nothing_to_tell: step_job || answered_by_rule || step_budget,
        })
    }

    pub fn matches(&self, target: &NotifyTarget) -> bool {
        if self.nothing_to_tell || !target.events.contains(&self.type_name) {
            return false;
        }
        let listed = |list: &[String], value: &Option<String>| {
            list.is_empty() || value.as_ref().is_some_and(|v| list.contains(v))
        };
        listed(&target.profiles, &self.worker) && listed(&target.workflows, &self.workflow)
    }

    /// A title and a line for a desktop notification.
    pub fn summary(&self) -> (String, String) {
        let data = self.envelope.get("data").unwrap_or(&Value::Null);
        let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_owned();
        let worker = self.worker.clone().unwrap_or_default();
        match self.type_name.as_str() {
            "orchestra.job.finished" => {
                let job = data.get("job").unwrap_or(&Value::Null);
                let status = text(job.get("status"));
                let detail = [
                    job.get("error"),
                    job.get("responseText"),
                    job.get("message"),
                ]
                .into_iter()
                .map(&text)
                .find(|t| !t.trim().is_empty())
                .unwrap_or_default();
                (format!("Task {status}: {worker}"), shorten(&detail))
            }
            "orchestra.permission.asked" => (
                format!("{worker} needs an answer"),
                shorten(&format!("permission {}", text(data.get("permission")))),
            ),
            "orchestra.budget.exceeded" => (
                format!("Budget reached: {worker}"),
                shorten(&format!(
                    "budget.{} used {} of {}",
                    text(data.get("dimension")),
                    data.get("used").unwrap_or(&Value::Null),
                    data.get("cap").unwrap_or(&Value::Null)
                )),
            ),
            "orchestra.merge.conflict" => (
                format!("Merge conflict: {}", text(data.get("branch"))),
                shorten(&format!(
                    "conflicts in {}",
                    data.get("files")
                        .and_then(Value::as_array)
                        .map(|files| files
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                )),
            ),
            other => (other.to_owned(), shorten(&data.to_string())),
        }
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use orchestra_protocol::{
        BudgetDimension, BudgetExceeded, BudgetScope, EVENT_VERSION, EventBody, HubEvent,
        JobRecord, PermissionQuestion, TaskKind,
    };

    use super::EventFacts;
    use crate::config::{DEFAULT_NOTIFY_EVENTS, NotifyKind, NotifyTarget};

    fn target(profiles: &[&str]) -> NotifyTarget {
        NotifyTarget {
            kind: NotifyKind::Desktop,
            events: DEFAULT_NOTIFY_EVENTS.map(String::from).to_vec(),
            profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
            workflows: Vec::new(),
            url: None,
            command: None,
            timeout_ms: 1000,
        }
    }

    fn event(body: EventBody) -> EventFacts {
        EventFacts::of(&HubEvent {
            version: EVENT_VERSION,
            id: 1,
            timestamp: 0,
            body,
        })
        .unwrap()
    }

    fn question(expires_at: Option<i64>) -> EventBody {
        EventBody::PermissionAsked(PermissionQuestion {
            job_id: "j".into(),
            worker_id: "coder".into(),
            request_id: "r".into(),
            session_id: "s".into(),
            permission: "bash".into(),
            patterns: Vec::new(),
            asked_at: 0,
            expires_at,
        })
    }

    #[test]
    fn only_questions_waiting_for_a_person_and_tasks_not_steps_are_told() {
        assert!(event(question(Some(5))).matches(&target(&[])));
        assert!(
            !event(question(None)).matches(&target(&[])),
            "answered by the profile's rule"
        );
        assert!(!event(question(Some(5))).matches(&target(&["docs"])));
        let job = JobRecord::start(
            "j".into(),
            "coder".into(),
            "m".into(),
            TaskKind::Worker,
            "h",
        );
        let finished = |job: JobRecord| EventBody::JobFinished { job: Box::new(job) };
        assert!(event(finished(job.clone())).matches(&target(&["coder"])));
        let mut step = job;
        step.run_id = Some("run".into());
        assert!(
            !event(finished(step)).matches(&target(&[])),
            "a workflow step"
        );
    }

    #[test]
    fn a_budget_hit_is_told_for_a_task_or_a_run_not_for_a_step() {
        let exceeded = |scope, run_id: Option<&str>| {
            EventBody::BudgetExceeded(BudgetExceeded {
                task_id: "j".into(),
                run_id: run_id.map(str::to_owned),
                worker_id: "coder".into(),
                workflow_id: None,
                scope,
                dimension: BudgetDimension::MaxTurns,
                used: 3.0,
                cap: 3.0,
            })
        };
        assert!(event(exceeded(BudgetScope::Task, None)).matches(&target(&["coder"])));
        assert!(event(exceeded(BudgetScope::Run, Some("run"))).matches(&target(&[])));
        assert!(!event(exceeded(BudgetScope::Task, Some("run"))).matches(&target(&[])));
        let (title, line) = event(exceeded(BudgetScope::Task, None)).summary();
        assert_eq!(title, "Budget reached: coder");
        assert!(line.contains("budget.maxTurns used 3"), "{line}");
    }
}
