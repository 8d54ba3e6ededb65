//! The hub's side of Orchestra's OpenCode plugin: what each chat hook does. The plugin (a few
//! dozen lines of JavaScript, `crates/cli/src/install/opencode-plugin-v1.js`) forwards
//! OpenCode's hook arguments to the hub's `/api/v1/hooks/*` routes and applies the answers; every
//! decision is made here.
//!
//! - `chat.message` with an image, for a model that does not read images: the vision workflow
//!   describes it and the description replaces the image before the main model sees it
//!   (`workflows.triggers.visionOnImage`, `ui.visionTimeoutMs`; [`vision`]).
//! - `experimental.chat.system.transform`: one line naming the session's tasks still running
//!   after the memory block (`memory.autoInject`, queried with the session's first message).
//! - `tool.execute.before` on `orchestra_task_start`: the calling session is recorded on the
//!   job (`callerSessionId`); `tool.execute.after` on `task_await`/`task_peek`: results the
//!   session has seen are not delivered again.
//! - OpenCode's `session.status` / `session.idle` events: when an idle session has finished
//!   results it has not seen, they are delivered into it as a user message without a reply
//!   (`ui.wakeupInjection`), through the plugin's delivery stream; an idle notification fires
//!   (`notifications.idle`: an `orchestra.notification` event and `notify-send`).
//! - `experimental.session.compacting`: pinned memory and the running tasks are kept in the
//!   summary.
//! - `chat.message` in a session in passthrough (`passthrough.set`): the message goes to the
//!   worker and its answer replaces it; `back` leaves ([`passthrough`]).
//!
//! State lives in memory only (a restarted hub has failed the old hub's running tasks anyway),
//! except passthrough, which is the store's.

mod memory_block;
mod notify;
mod passthrough;
pub mod render;
mod sessions;
mod vision;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use orchestra_protocol::hooks::{
    Delivery, SessionEventHook, ToolAfterHook, ToolBeforeHook, ToolBeforeReply,
};
use orchestra_protocol::{EventBody, HubEvent, NotificationReason, SessionNotification, now_ms};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::Subscription;
use crate::tasks::TaskEngine;

use memory_block::MemoryBlocks;
pub use passthrough::{PassthroughJob, PassthroughTurn};
pub use sessions::RunningTask;
use sessions::Sessions;
pub use vision::VisionJob;

/// The tool names OpenCode gives our MCP tools (`orchestra install` names the server
/// `orchestra`).
const TASK_START_TOOL: &str = "orchestra_task_start";
const RESULT_TOOLS: [&str; 2] = ["orchestra_task_await", "orchestra_task_peek"];

/// The chat hooks of one hub. Cheap to share (`Arc`). The hub starts them and stops them
/// ([`ChatHooks::stop`]); the HTTP server only calls them.
pub struct ChatHooks {
    engine: Arc<TaskEngine>,
    blocks: MemoryBlocks,
    state: Mutex<State>,
    /// The event follower, pending idle notifications and memory-block builds: every task the
    /// hooks start, waited for by [`ChatHooks::stop`].
    tasks: TaskTracker,
    /// Ends the follower and the notifications still waiting for their delay.
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    sessions: Sessions,
    /// The delivery stream of each connected plugin instance, with a number that tells a
    /// stream from the one that replaced it.
    streams: HashMap<String, (u64, mpsc::UnboundedSender<Delivery>)>,
    next_stream: u64,
}

/// One plugin instance's deliveries; unregisters itself when dropped. Unbounded: a delivery is
/// one message per idle session with finished results, sent from under the state lock, which
/// must not wait on a slow plugin.
pub struct DeliveryStream {
    rx: mpsc::UnboundedReceiver<Delivery>,
    hooks: Weak<ChatHooks>,
    instance: String,
    number: u64,
}

impl DeliveryStream {
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

impl Drop for DeliveryStream {
    fn drop(&mut self) {
        if let Some(hooks) = self.hooks.upgrade() {
            let mut state = hooks.lock();
            if state
                .streams
                .get(&self.instance)
                .is_some_and(|(number, _)| *number == self.number)
            {
                state.streams.remove(&self.instance);
            }
        }
    }
}

impl ChatHooks {
    /// The hooks of `engine`'s hub, following its event stream until `stop`.
    pub fn start(engine: Arc<TaskEngine>, stop: CancellationToken) -> Arc<ChatHooks> {
        let subscription = engine.bus().subscribe(None);
        let tasks = TaskTracker::new();
        let hooks = Arc::new(ChatHooks {
            engine,
            blocks: MemoryBlocks::new(tasks.clone()),
            state: Mutex::new(State::default()),
            tasks: tasks.clone(),
            stop: stop.clone(),
        });
        tasks.spawn(follow(Arc::downgrade(&hooks), subscription, stop));
        hooks
    }

    /// Stops following the hub's events, drops the notifications still waiting, and waits up
    /// to `within` for the hooks' tasks to end (a memory block being built runs to its end on
    /// the blocking pool). False when some did not end in time.
    pub async fn stop(&self, within: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The system prompt's lines for a session: its tasks still running.
    pub fn system_lines(&self, session_id: &str, instance: Option<&str>) -> Vec<String> {
        self.lock().sessions.claim(session_id, instance);
        render::running_line(&self.running(session_id), now_ms())
            .into_iter()
            .collect()
    }

    /// The memory block for `query` (`memory.autoInject`), if the hub has memory and the block
    /// is ready in time; the request goes on without it otherwise. An empty query gives the
    /// block for no particular task: the pinned records and the project summary.
    pub async fn memory_block(&self, query: &str) -> Option<String> {
        let memory = self.engine.memory().ok()?;
        self.blocks.get(memory, query).await
    }

    /// The query of the session's memory block: its first message.
    pub fn memory_query(&self, session_id: &str) -> Option<String> {
        self.lock().sessions.first_text(session_id)
    }

    /// What a compaction of the session must keep: its tasks still running.
    pub fn compaction_lines(&self, session_id: &str) -> Vec<String> {
        render::compaction_line(&self.running(session_id), now_ms())
            .into_iter()
            .collect()
    }

    /// The tasks a session started that still run, in the order of their ids: those the hooks
    /// have seen start, and those the hub runs whose `JobStarted` the hooks have not handled yet
    /// (the next step of a turn can ask before the bus's follower got its turn on a busy
    /// machine, and a task its own caller does not see as running gets answered as done).
    pub fn running(&self, session_id: &str) -> Vec<RunningTask> {
        let live = self.engine.runtime().live_for_caller(session_id);
        let mut running = self.lock().sessions.running(session_id);
        for record in live {
            if !running.iter().any(|task| task.id == record.id) {
                running.push(RunningTask {
                    id: record.id,
                    worker_id: record.worker_id,
                    started_at: record.started_at,
                });
            }
        }
        running.sort_by(|a, b| a.id.cmp(&b.id));
        running
    }

    /// `tool.execute.before`: `task_start` gets the calling session; `task_await` and
    /// `task_peek` are asked back for their output.
    pub fn tool_before(&self, instance: Option<&str>, hook: &ToolBeforeHook) -> ToolBeforeReply {
        let mut reply = ToolBeforeReply::default();
        if hook.tool == TASK_START_TOOL {
            let mut state = self.lock();
            state.sessions.claim(&hook.session_id, instance);
            // A tool runs inside a turn.
            state.sessions.set_idle(&hook.session_id, false);
            reply.args.insert(
                "callerSessionId".to_owned(),
                Value::String(hook.session_id.clone()),
            );
        } else if RESULT_TOOLS.contains(&hook.tool.as_str()) {
            reply.after = true;
        }
        reply
    }

    /// `tool.execute.after` of `task_await` / `task_peek`: final results in the answer are the
    /// session's now and are not delivered again.
    pub fn tool_after(&self, hook: &ToolAfterHook) {
        let ids = final_task_ids(&hook.output);
        if !ids.is_empty() {
            self.lock().sessions.mark_seen(&hook.session_id, &ids);
        }
    }

    /// An OpenCode event about a session, forwarded by the plugin.
    pub fn session_event(self: &Arc<Self>, instance: Option<&str>, hook: &SessionEventHook) {
        let props = &hook.properties;
        let session_of = |value: &Value| value.as_str().map(str::to_owned);
        match hook.kind.as_str() {
            "session.status" | "session.idle" => {
                let Some(session_id) = session_of(&props["sessionID"]) else {
                    return;
                };
                let idle =
                    hook.kind == "session.idle" || props["status"]["type"].as_str() == Some("idle");
                let announce = {
                    let mut state = self.lock();
                    state.sessions.claim(&session_id, instance);
                    state.sessions.set_idle(&session_id, idle);
                    if idle {
                        state.sessions.take_unannounced(&session_id)
                    } else {
                        Vec::new()
                    }
                };
                if idle {
                    self.flush(&session_id);
                    if !announce.is_empty() {
                        self.notify_later(session_id, NotificationReason::Finished, announce);
                    }
                }
            }
            "session.deleted" => {
                if let Some(session_id) =
                    session_of(&props["info"]["id"]).or_else(|| session_of(&props["sessionID"]))
                {
                    self.lock().sessions.forget(&session_id);
                }
            }
            other => tracing::debug!(event = other, "a plugin event the hub does not use"),
        }
    }

    /// How many plugin instances have their delivery stream open.
    pub fn connected_plugins(&self) -> usize {
        self.lock().streams.len()
    }

    /// Registers a plugin instance's delivery stream and sends it what waits for its sessions.
    pub fn connect(self: &Arc<Self>, instance: &str) -> DeliveryStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let (number, owned) = {
            let mut state = self.lock();
            state.next_stream += 1;
            let number = state.next_stream;
            state.streams.insert(instance.to_owned(), (number, tx));
            (number, state.sessions.owned_by(instance))
        };
        for session_id in owned {
            self.flush(&session_id);
        }
        DeliveryStream {
            rx,
            hooks: Arc::downgrade(self),
            instance: instance.to_owned(),
            number,
        }
    }

    /// Delivers a session's finished results if it is idle and its instance is connected.
    fn flush(&self, session_id: &str) {
        if !self.engine.config().ui.wakeup_injection {
            return;
        }
        let mut state = self.lock();
        let Some(ready) = state.sessions.take_deliverable(session_id) else {
            return;
        };
        let delivery = Delivery {
            session_id: ready.session_id.clone(),
            text: render::delivery(&ready.records),
            task_ids: ready.records.iter().map(|r| r.id.clone()).collect(),
        };
        let sent = state
            .streams
            .get(&ready.instance)
            .is_some_and(|(_, tx)| tx.send(delivery).is_ok());
        if sent {
            tracing::info!(
                session = session_id,
                tasks = ready.records.len(),
                "results delivered into the session"
            );
        } else {
            state.sessions.put_back(ready);
        }
    }

    fn on_event(self: &Arc<Self>, event: &HubEvent) {
        match &event.body {
            EventBody::JobStarted { job } => {
                if let Some(session_id) = &job.caller_session_id {
                    self.lock().sessions.started(
                        session_id,
                        RunningTask {
                            id: job.id.clone(),
                            worker_id: job.worker_id.clone(),
                            started_at: job.started_at,
                        },
                    );
                }
            }
            EventBody::JobFinished { job } => {
                let finished = self.lock().sessions.finished(job);
                if let Some(finished) = finished
                    && finished.idle
                    && finished.news
                {
                    self.flush(&finished.session_id);
                    self.notify_later(
                        finished.session_id,
                        NotificationReason::Finished,
                        vec![job.id.clone()],
                    );
                }
            }
            EventBody::PermissionAsked(question) => {
                let owner = {
                    let state = self.lock();
                    state
                        .sessions
                        .owner_of(&question.job_id)
                        .filter(|s| state.sessions.is_idle(s))
                        .map(str::to_owned)
                };
                if let Some(session_id) = owner {
                    self.notify_later(
                        session_id,
                        NotificationReason::Input,
                        vec![question.job_id.clone()],
                    );
                }
            }
            EventBody::JobUpdated(_)
            | EventBody::JobDelta { .. }
            | EventBody::JobTool(_)
            | EventBody::PermissionAnswered(_)
            | EventBody::WorkerStatus { .. }
            | EventBody::WorkflowStep(_)
            | EventBody::WorkflowRun(_)
            | EventBody::Log(_)
            | EventBody::Notification(_)
            | EventBody::BudgetWarning(_)
            | EventBody::BudgetExceeded(_)
            | EventBody::MergeConflict(_) => {}
            EventBody::MemoryWritten(_) => self.blocks.invalidate(),
        }
    }

    /// `notifications.idle`: after `delayMs`, if the session is still idle, an
    /// `orchestra.notification` event and a desktop notification.
    fn notify_later(
        self: &Arc<Self>,
        session_id: String,
        reason: NotificationReason,
        job_ids: Vec<String>,
    ) {
        let settings = self.engine.config().notifications.idle.clone();
        if !settings.enabled {
            return;
        }
        let hooks = Arc::downgrade(self);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(settings.delay_ms)) => {}
            }
            let Some(hooks) = hooks.upgrade() else { return };
            if !hooks.lock().sessions.is_idle(&session_id) {
                return;
            }
            let what = match reason {
                NotificationReason::Finished if job_ids.len() == 1 => {
                    format!("task {} finished", job_ids.join(""))
                }
                NotificationReason::Finished => {
                    format!("{} tasks finished", job_ids.len())
                }
                NotificationReason::Input => format!(
                    "task {} needs an answer to a permission question",
                    job_ids.join(", ")
                ),
            };
            let message = format!("{}: {what}", settings.message);
            hooks
                .engine
                .bus()
                .publish(EventBody::Notification(SessionNotification {
                    session_id,
                    reason,
                    title: settings.title.clone(),
                    message: message.clone(),
                    job_ids,
                }));
            notify::desktop(&settings.title, &message).await;
        });
    }
}

/// Follows the hub's events for the hooks until `stop` or until the hooks are gone.
async fn follow(hooks: Weak<ChatHooks>, mut subscription: Subscription, stop: CancellationToken) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = subscription.next() => event,
        };
        let (Some(event), Some(hooks)) = (event, hooks.upgrade()) else {
            return;
        };
        hooks.on_event(&event);
    }
}

/// Ids of the final records in a `task_await` / `task_peek` answer as OpenCode hands it to
/// `tool.execute.after`: `{content: [{type: "text", text: "<record or list as JSON>"}]}`.
fn final_task_ids(output: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let texts = output["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "text")
        .filter_map(|item| item["text"].as_str());
    for text in texts {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let records = match &value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![&value],
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Vec::new(),
        };
        for record in records {
            let is_final = record["status"]
                .as_str()
                .and_then(orchestra_protocol::JobStatus::parse)
                .is_some_and(orchestra_protocol::JobStatus::is_final);
            if let (true, Some(id)) = (is_final, record["id"].as_str()) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn final_ids_come_from_records_and_lists_in_the_tool_output() {
        let one = json!({"id": "a", "status": "succeeded"}).to_string();
        let many = json!([
            {"id": "b", "status": "running"},
            {"id": "c", "status": "failed"},
            {"id": "d", "status": "unknown", "error": "no task"},
        ])
        .to_string();
        let output = json!({"content": [
            {"type": "text", "text": one},
            {"type": "text", "text": many},
            {"type": "text", "text": "not json"},
            {"type": "image", "data": "x"},
        ]});
        assert_eq!(final_task_ids(&output), vec!["a", "c"]);
        assert!(final_task_ids(&json!("odd")).is_empty());
    }
}
