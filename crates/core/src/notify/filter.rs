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
    /// A step of a workflow run: its run's own events say enough.
    step_job: bool,
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
        Some(EventFacts {
            type_name: event.body.type_name().to_owned(),
            envelope,
            worker,
            workflow,
            step_job,
        })
    }

    pub fn matches(&self, target: &NotifyTarget) -> bool {
        if self.step_job || !target.events.contains(&self.type_name) {
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
