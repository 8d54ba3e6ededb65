//! `passthrough.set` / `passthrough.clear` (`kind: "op"`): the calling OpenCode chat enters or
//! leaves passthrough mode. The state is the store's (keyed by the chat's session, which
//! Orchestra's plugin adds as `callerSessionId`), so it outlives the hub; what a message in
//! passthrough does is `chat::passthrough`'s.

use orchestra_protocol::{JobStatus, OpKind, TaskStartParams, TaskStartResult, now_ms};

use super::{TaskEngine, TaskError};
use crate::jobs::JobError;

/// The words that end passthrough, said on their own (the original's list, minus its
/// docs-mode aliases).
pub const PASSTHROUGH_EXIT_WORDS: [&str; 5] = [
    "back",
    "exit passthrough",
    "exit passthrough mode",
    "stop passthrough",
    "disable passthrough",
];

impl TaskEngine {
    pub(super) fn start_passthrough_op(
        &self,
        op: OpKind,
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let session = params
            .caller_session_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| TaskError::MissingField {
                field: "callerSessionId",
                kind: "op",
                hint: "passthrough applies to the OpenCode chat that asks for it, which \
                       Orchestra's OpenCode plugin names on every task_start; run \
                       `orchestra install` and call the tool from that chat"
                    .into(),
            })?;
        let worker_id = params
            .worker
            .as_ref()
            .and_then(|w| w.worker_id.clone())
            .or_else(|| params.worker_id.clone());
        let store = self.runtime.store();
        let text = match op {
            OpKind::PassthroughSet => {
                let worker_id = worker_id.clone().ok_or_else(|| TaskError::MissingField {
                    field: "worker.workerId",
                    kind: "op",
                    hint: format!("one of: {}", self.profile_ids()),
                })?;
                self.config.profile(&worker_id)?;
                store
                    .set_passthrough(&session, &worker_id)
                    .map_err(JobError::from)?;
                format!(
                    "passthrough on: every message of this chat now goes to worker `{worker_id}` \
                     and only its answer comes back, until the user says `{}`",
                    PASSTHROUGH_EXIT_WORDS.join("`, `")
                )
            }
            OpKind::PassthroughClear => {
                if store.clear_passthrough(&session).map_err(JobError::from)? {
                    "passthrough off: messages of this chat go to the orchestrator again".to_owned()
                } else {
                    "this chat was not in passthrough".to_owned()
                }
            }
            OpKind::MemoryPut
            | OpKind::MemoryLink
            | OpKind::MemoryDone
            | OpKind::MemorySearch
            | OpKind::MemoryGet
            | OpKind::MemoryForget
            | OpKind::WorkerModelSet
            | OpKind::WorkerModelReset
            | OpKind::WorktreeDiff
            | OpKind::WorktreeMerge
            | OpKind::WorktreeDiscard => {
                return Err(TaskError::BadValue {
                    field: "op",
                    value: op.as_str().to_owned(),
                    hint: "not a passthrough op".into(),
                });
            }
        };
        let mut record = self.op_record(op, &params.task, requested_by);
        let id = record.id.clone();
        let job = self.runtime.open(record.clone())?;
        record.response_text = Some(text);
        record.finish(JobStatus::Succeeded, now_ms());
        job.finish(&record);
        Ok(Self::op_started(id, op, worker_id, JobStatus::Succeeded))
    }
}
