//! What the hub's events mean for the window: how many tasks run, which permission questions
//! wait for a person, the task that changed last (its id shows in the status bar whatever the
//! page shows), and which events deserve a desktop notification.
//!
//! A question waits for a person only when the hub says when it will give up on it
//! (`expiresAt`, a profile with `onPermissionAsk: "ask"`); any other question was answered by
//! the profile's rule in the same breath, so it raises nothing.

use std::collections::{HashMap, HashSet};

use orchestra_protocol::{EventBody, HubEvent, JobRecord, JobStatus};

/// How much of a task's error a notification shows.
const ERROR_CHARS: usize = 240;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub running: usize,
    /// Permission questions waiting for a person.
    pub waiting: usize,
    /// The task that started or finished last.
    pub latest: Option<Latest>,
}

/// A task as the status bar names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub id: String,
    pub worker: String,
    pub status: JobStatus,
}

impl Latest {
    fn of(job: &JobRecord) -> Latest {
        Latest {
            id: job.id.clone(),
            worker: job.worker_id.clone(),
            status: job.status,
        }
    }

    /// `task 1a2b… on coder: running`
    pub fn describe(&self) -> String {
        format!(
            "task {} on {}: {}",
            self.id,
            self.worker,
            self.status.as_str()
        )
    }
}

impl Counts {
    /// `2 running · 1 needs input`, or empty when nothing runs or waits.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.running > 0 {
            parts.push(format!("{} running", self.running));
        }
        if self.waiting > 0 {
            parts.push(format!(
                "{} need{} input",
                self.waiting,
                if self.waiting == 1 { "s" } else { "" }
            ));
        }
        parts.join(" · ")
    }
}

/// A desktop notification to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub summary: String,
    pub body: String,
    /// Shown until dismissed (a person is needed), rather than for a few seconds.
    pub urgent: bool,
}

/// The window's running view of the hub, from a health snapshot and the events after it.
#[derive(Debug, Default)]
pub struct Tally {
    /// Jobs that ran at the snapshot; their ids are not known, only how many.
    running_before: usize,
    /// Jobs started since the snapshot and not finished.
    started: HashSet<String>,
    /// Questions waiting for a person: request id → job id.
    waiting: HashMap<String, String>,
    latest: Option<Latest>,
}

impl Tally {
    /// A tally whose snapshot (`GET /api/v1/health`) saw `running` jobs; apply the events after
    /// the snapshot's `lastEventId`.
    pub fn new(running: usize) -> Tally {
        Tally {
            running_before: running,
            ..Tally::default()
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            running: self.running_before + self.started.len(),
            waiting: self.waiting.len(),
            latest: self.latest.clone(),
        }
    }

    /// Takes one event into account; returns the notification it deserves, if any.
    pub fn apply(&mut self, event: &HubEvent) -> Option<Alert> {
        match &event.body {
            EventBody::JobStarted { job } => {
                self.started.insert(job.id.clone());
                self.latest = Some(Latest::of(job));
                None
            }
            EventBody::JobFinished { job } => {
                if !self.started.remove(&job.id) {
                    self.running_before = self.running_before.saturating_sub(1);
                }
                self.waiting.retain(|_, waiting_job| *waiting_job != job.id);
                self.latest = Some(Latest::of(job));
                finished_alert(job)
            }
            EventBody::PermissionAsked(question) => {
                let expires_at = question.expires_at?;
                self.waiting
                    .insert(question.request_id.clone(), question.job_id.clone());
                let patterns = if question.patterns.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", question.patterns.join(", "))
                };
                let wait_s = (expires_at - event.timestamp).max(0) / 1000;
                Some(Alert {
                    summary: format!("Worker {} needs your answer", question.worker_id),
                    body: format!(
                        "Task {} asks for permission `{}`{patterns}. Answer it in the panel's \
                         inbox; it is rejected in {wait_s} s otherwise.",
                        question.job_id, question.permission
                    ),
                    urgent: true,
                })
            }
            EventBody::PermissionAnswered(reply) => {
                self.waiting.remove(&reply.request_id);
                None
            }
            EventBody::JobUpdated(_)
            | EventBody::JobDelta { .. }
            | EventBody::JobTool(_)
            | EventBody::WorkerStatus { .. }
            | EventBody::WorkflowStep(_)
            | EventBody::WorkflowRun(_)
            | EventBody::MemoryWritten(_)
            | EventBody::Log(_) => None,
            // A merge the op refused: the op itself succeeded, so nothing else alerts.
            EventBody::MergeConflict(conflict) => Some(Alert {
                summary: format!("Merge conflict: {}", conflict.branch),
                body: format!(
                    "Task {} conflicts with {} in {}; nothing was merged. Start a follow-up task \
                     in its worktree to resolve it.",
                    conflict.task_id,
                    conflict.base_ref,
                    conflict.files.join(", ")
                ),
                urgent: false,
            }),
            // A chat session's own idle notice (the OpenCode plugin shows it); the window
            // already alerts on the failures and questions behind it. A budget hit fails its
            // task (or its run's task), which alerts.
            EventBody::Notification(_)
            | EventBody::BudgetWarning(_)
            | EventBody::BudgetExceeded(_) => None,
        }
    }
}

fn finished_alert(job: &JobRecord) -> Option<Alert> {
    match job.status {
        JobStatus::Failed => {}
        JobStatus::Running | JobStatus::Succeeded | JobStatus::Canceled => return None,
    }
    let error = job.error.as_deref().unwrap_or("no reason recorded");
    let mut error: String = error.chars().take(ERROR_CHARS).collect();
    if job
        .error
        .as_ref()
        .is_some_and(|e| e.chars().count() > ERROR_CHARS)
    {
        error.push('…');
    }
    Some(Alert {
        summary: format!("Task failed on {}", job.worker_id),
        body: format!("Task {}: {error}", job.id),
        urgent: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use orchestra_protocol::{PermissionQuestion, PermissionReplyEvent};
    use serde_json::json;

    fn event(body: EventBody) -> HubEvent {
        HubEvent {
            version: 1,
            id: 1,
            timestamp: 1_000,
            body,
        }
    }

    fn job(id: &str, status: &str, error: Option<&str>) -> Box<JobRecord> {
        Box::new(
            serde_json::from_value(json!({
                "id": id, "workerId": "coder", "message": "m", "status": status,
                "startedAt": 1, "kind": "worker", "error": error,
            }))
            .unwrap(),
        )
    }

    fn question(request: &str, expires_at: Option<i64>) -> EventBody {
        EventBody::PermissionAsked(PermissionQuestion {
            job_id: "j1".into(),
            worker_id: "coder".into(),
            request_id: request.into(),
            session_id: "s".into(),
            permission: "external_directory".into(),
            patterns: vec!["/etc/*".into()],
            asked_at: 1_000,
            expires_at,
        })
    }

    #[test]
    fn a_refused_merge_alerts_with_its_files() {
        let mut tally = Tally::new(0);
        let alert = tally
            .apply(&event(EventBody::MergeConflict(
                orchestra_protocol::MergeConflict {
                    task_id: "t1".into(),
                    op_task_id: "op1".into(),
                    worker_id: "coder".into(),
                    branch: "orchestra/t1".into(),
                    base_ref: "main".into(),
                    files: vec!["a.txt".into(), "b.txt".into()],
                },
            )))
            .unwrap();
        assert_eq!(alert.summary, "Merge conflict: orchestra/t1");
        assert!(alert.body.contains("a.txt, b.txt"), "{}", alert.body);
    }

    #[test]
    fn counts_follow_the_snapshot_and_the_events_after_it() {
        let mut tally = Tally::new(2);
        assert_eq!(tally.counts().describe(), "2 running");
        tally.apply(&event(EventBody::JobStarted {
            job: job("new", "running", None),
        }));
        assert_eq!(tally.counts().running, 3);
        assert_eq!(
            tally.counts().latest.map(|l| l.describe()).as_deref(),
            Some("task new on coder: running")
        );
        // One of the two that ran before the snapshot, then the new one.
        for id in ["old", "new"] {
            let alert = tally.apply(&event(EventBody::JobFinished {
                job: job(id, "succeeded", None),
            }));
            assert_eq!(alert, None);
        }
        let counts = tally.counts();
        assert_eq!((counts.running, counts.waiting), (1, 0));
        assert_eq!(
            counts.latest.map(|l| l.describe()).as_deref(),
            Some("task new on coder: succeeded")
        );
        // More finishes than were known never go below zero.
        for id in ["a", "b"] {
            tally.apply(&event(EventBody::JobFinished {
                job: job(id, "canceled", None),
            }));
        }
        assert_eq!(tally.counts().describe(), "");
    }

    #[test]
    fn a_failed_task_raises_its_error() {
        let mut tally = Tally::new(1);
        let alert = tally
            .apply(&event(EventBody::JobFinished {
                job: job("j9", "failed", Some("fake failure 400")),
            }))
            .unwrap();
        assert_eq!(alert.summary, "Task failed on coder");
        assert!(alert.body.contains("j9") && alert.body.contains("fake failure 400"));
        let long = "x".repeat(1000);
        let alert = tally
            .apply(&event(EventBody::JobFinished {
                job: job("j10", "failed", Some(&long)),
            }))
            .unwrap();
        assert!(alert.body.chars().count() < 300 && alert.body.ends_with('…'));
    }

    #[test]
    fn only_a_question_that_waits_for_a_person_raises_and_counts() {
        let mut tally = Tally::new(1);
        // Answered by the profile's rule at once: nothing to tell anyone.
        assert_eq!(tally.apply(&event(question("r0", None))), None);
        assert_eq!(tally.counts().waiting, 0);
        let alert = tally.apply(&event(question("r1", Some(61_000)))).unwrap();
        assert!(alert.urgent);
        assert!(
            alert.body.contains("external_directory") && alert.body.contains("60 s"),
            "{}",
            alert.body
        );
        tally.apply(&event(question("r2", Some(61_000))));
        assert_eq!(tally.counts().describe(), "1 running · 2 need input");
        tally.apply(&event(EventBody::PermissionAnswered(
            PermissionReplyEvent {
                job_id: "j1".into(),
                request_id: "r1".into(),
                reply: "once".into(),
                by: "person".into(),
            },
        )));
        assert_eq!(tally.counts().waiting, 1);
        // The job's end takes its open questions with it.
        tally.apply(&event(EventBody::JobFinished {
            job: job("j1", "succeeded", None),
        }));
        assert_eq!(tally.counts().describe(), "");
    }
}
