//! The needs-input inbox: permission questions of workers whose profile says
//! `onPermissionAsk: "ask"`, waiting for a person.
//!
//! A question joins the inbox when the runner sees it (live, or while reconciling a session
//! after its event stream was cut) and leaves it exactly once: answered by a person
//! ([`QuestionInbox::answer`]), rejected after `tasks.permissionAskTimeoutMs`, answered in
//! OpenCode itself, or dropped when its task ends. Each way out publishes
//! `orchestra.permission.answered` with who answered, and an answer that reached OpenCode is
//! handed to the job's runner, which records it in the job's progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestra_protocol::{
    ErrorKind, EventBody, PermissionAnswer, PermissionQuestion, PermissionReplyEvent, now_ms,
};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::events::EventBus;
use crate::opencode::{OpenCodeClient, OpenCodeError, PermissionReplyKind};

/// How often the timeout tries to deliver its `reject` when OpenCode did not take it.
const TIMEOUT_REPLY_ATTEMPTS: u32 = 3;
const TIMEOUT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long the reject of an ended task's question may take before it is given up.
const ENDED_REPLY_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QuestionError {
    #[error(
        "no permission question `{id}` is waiting; it was answered, timed out, or its task ended (GET /api/v1/questions lists the waiting ones)"
    )]
    Unknown { id: String },
    #[error(
        "OpenCode did not take the answer to question `{id}`: {source}; the question is still waiting, try again"
    )]
    Reply {
        id: String,
        #[source]
        source: OpenCodeError,
    },
}

impl QuestionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            QuestionError::Unknown { .. } => ErrorKind::NotFound,
            QuestionError::Reply { .. } => ErrorKind::Upstream,
        }
    }
}

/// Who took a question out of the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// The panel or an API caller.
    Person,
    /// Nobody answered within `tasks.permissionAskTimeoutMs`.
    Timeout,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Person => "person",
            AnsweredBy::Timeout => "timeout",
        }
    }
}

/// What a runner needs to hear about the questions it put in the inbox.
pub(crate) type AnswerSender = mpsc::UnboundedSender<PermissionAnswer>;

struct Pending {
    question: PermissionQuestion,
    client: OpenCodeClient,
    runner: AnswerSender,
    /// Ends the question's timeout task when the question leaves the inbox for good.
    _timer: DropGuard,
}

/// Cheap to clone; every clone shares the waiting questions.
#[derive(Clone)]
pub struct QuestionInbox {
    waiting: Arc<Mutex<HashMap<String, Pending>>>,
    bus: EventBus,
    /// The job runtime's tracker: a question's timeout task is waited for with the jobs.
    timers: TaskTracker,
}

impl QuestionInbox {
    pub(crate) fn new(bus: EventBus, timers: TaskTracker) -> QuestionInbox {
        QuestionInbox {
            waiting: Arc::new(Mutex::new(HashMap::new())),
            bus,
            timers,
        }
    }

    /// The questions waiting now, oldest first.
    pub fn pending(&self) -> Vec<PermissionQuestion> {
        let mut out: Vec<PermissionQuestion> =
            self.lock().values().map(|p| p.question.clone()).collect();
        out.sort_by(|a, b| {
            a.asked_at
                .cmp(&b.asked_at)
                .then(a.request_id.cmp(&b.request_id))
        });
        out
    }

    /// Puts a question in the inbox (already announced with `orchestra.permission.asked`) and
    /// starts its timeout.
    pub(crate) fn ask(
        &self,
        question: PermissionQuestion,
        client: OpenCodeClient,
        runner: AnswerSender,
        timeout: Duration,
    ) {
        let id = question.request_id.clone();
        let answered = CancellationToken::new();
        self.lock().insert(
            id.clone(),
            Pending {
                question,
                client,
                runner,
                _timer: answered.clone().drop_guard(),
            },
        );
        let inbox = self.clone();
        self.timers.spawn(async move {
            tokio::select! {
                () = answered.cancelled() => return,
                () = tokio::time::sleep(timeout) => {}
            }
            for attempt in 1..=TIMEOUT_REPLY_ATTEMPTS {
                match inbox
                    .answer(&id, PermissionReplyKind::Reject, AnsweredBy::Timeout)
                    .await
                {
                    Ok(_) | Err(QuestionError::Unknown { .. }) => return,
                    Err(err) if attempt < TIMEOUT_REPLY_ATTEMPTS => {
                        tracing::warn!(error = %err, attempt, "rejecting an unanswered permission question failed; trying again");
                        tokio::select! {
                            () = answered.cancelled() => return,
                            () = tokio::time::sleep(TIMEOUT_RETRY_AFTER) => {}
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "rejecting an unanswered permission question failed; dropping it from the inbox");
                        drop(inbox.close(&id, "reject", "ended"));
                    }
                }
            }
        });
    }

    /// Sends `reply` to OpenCode for a waiting question; only the first answer counts.
    pub async fn answer(
        &self,
        request_id: &str,
        reply: PermissionReplyKind,
        by: AnsweredBy,
    ) -> Result<PermissionQuestion, QuestionError> {
        let pending = self
            .lock()
            .remove(request_id)
            .ok_or_else(|| QuestionError::Unknown {
                id: request_id.to_owned(),
            })?;
        let word = reply_word(reply);
        let message = match by {
            AnsweredBy::Person => format!("answered `{word}` by a person (Open Orchestra)"),
            AnsweredBy::Timeout => {
                "rejected by Open Orchestra: nobody answered within tasks.permissionAskTimeoutMs"
                    .to_owned()
            }
        };
        if let Err(source) = pending
            .client
            .reply_permission(request_id, reply, Some(&message))
            .await
        {
            // Still unanswered: it stays in the inbox for the next try.
            self.lock().insert(request_id.to_owned(), pending);
            return Err(QuestionError::Reply {
                id: request_id.to_owned(),
                source,
            });
        }
        tracing::info!(job = %pending.question.job_id, permission = %pending.question.permission, reply = word, by = by.as_str(), "permission question answered");
        self.settle(&pending, word, by.as_str());
        Ok(pending.question)
    }

    /// OpenCode reports the question answered (by someone else, e.g. in its own UI).
    pub(crate) fn answered_elsewhere(&self, request_id: &str, reply: &str) {
        let pending = self.lock().remove(request_id);
        if let Some(pending) = pending {
            self.settle(&pending, reply, "opencode");
        }
    }

    /// A job ended: its questions can no longer be answered here. OpenCode (1.18) keeps a
    /// question waiting even after its session was aborted, so each is rejected there too — in
    /// the background and bounded, as the server may be the reason the job ended.
    pub(crate) fn drop_job(&self, job_id: &str) {
        let ids: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, p)| p.question.job_id == job_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(pending) = self.close(&id, "reject", "ended") else {
                continue;
            };
            let client = pending.client.clone();
            self.timers.spawn(async move {
                let reply = client.reply_permission(
                    &id,
                    PermissionReplyKind::Reject,
                    Some("rejected by Open Orchestra: the task that asked has ended"),
                );
                match tokio::time::timeout(ENDED_REPLY_WAIT, reply).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "rejecting an ended task's question in OpenCode failed");
                    }
                    Err(_) => {
                        tracing::debug!("rejecting an ended task's question in OpenCode took too long");
                    }
                }
            });
        }
    }

    /// Takes a question out of the inbox and announces how it left; returns it (its timeout
    /// ends when it is dropped).
    fn close(&self, request_id: &str, reply: &str, by: &str) -> Option<Pending> {
        let pending = self.lock().remove(request_id)?;
        self.bus
            .publish(EventBody::PermissionAnswered(PermissionReplyEvent {
                job_id: pending.question.job_id.clone(),
                request_id: request_id.to_owned(),
                reply: reply.to_owned(),
                by: by.to_owned(),
            }));
        Some(pending)
    }

    /// Announces the answer and hands it to the runner for the job's progress.
    fn settle(&self, pending: &Pending, reply: &str, by: &str) {
        let question = &pending.question;
        self.bus
            .publish(EventBody::PermissionAnswered(PermissionReplyEvent {
                job_id: question.job_id.clone(),
                request_id: question.request_id.clone(),
                reply: reply.to_owned(),
                by: by.to_owned(),
            }));
        // A runner that is gone has finished its job; the event above still tells the answer.
        let _ = pending.runner.send(PermissionAnswer {
            permission: question.permission.clone(),
            patterns: question.patterns.clone(),
            reply: reply.to_owned(),
            at: now_ms(),
            by: by.to_owned(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub fn reply_word(reply: PermissionReplyKind) -> &'static str {
    match reply {
        PermissionReplyKind::Reject => "reject",
        PermissionReplyKind::Once => "once",
        PermissionReplyKind::Always => "always",
    }
}
