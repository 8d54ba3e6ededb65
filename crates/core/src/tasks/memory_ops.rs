//! `kind: "op"` with `memory.put`, `memory.link`, `memory.done`, `memory.search`,
//! `memory.get`, `memory.forget` over the original's `memory` payload. Like every task, an op
//! is a job record the caller awaits (`task_await`); the payload is checked before the job is
//! recorded, so a malformed one is refused at once. `memory.done` also completes the pending
//! memory task it names (see `crate::memory`).
//!
//! Workers reach the same ops through the hub's worker MCP endpoint, which offers nothing
//! else: [`TaskEngine::start_for_worker`] refuses every other kind of task and answers with the
//! op's result once it is done.

use std::time::Duration;

use orchestra_memory::MemoryOpResult;
use orchestra_protocol::memory::{MemoryOp, MemoryProvenance};
use orchestra_protocol::{JobStatus, OpKind, TaskKind, TaskStartParams, TaskStartResult, now_ms};
use serde::Serialize;
use serde_json::Value;

use super::{TaskEngine, TaskError};
use crate::memory::HubMemoryError;

/// How long a worker's op call waits for its answer (memory ops take milliseconds; a search
/// right after many writes may take a second while the index catches up).
const WORKER_OP_WAIT: Duration = Duration::from_secs(30);

/// Who asks through the worker MCP endpoint (recorded as `requestedBy` and as the records'
/// producer).
pub const WORKER_REQUESTER: &str = "memory-worker";

/// What a worker's op call answers: the op's result, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerOpAnswer {
    pub task_id: String,
    pub op: OpKind,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TaskEngine {
    /// Records a memory op as a job and runs it in the background.
    pub(super) fn start_memory_ops(
        &self,
        (op, memory_op): (OpKind, MemoryOp),
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let memory = self
            .memory
            .clone()
            .ok_or_else(|| HubMemoryError::Disabled {
                what: format!("op `{}`", op.as_str()),
            })?;
        let payload = params.memory.ok_or_else(|| TaskError::MissingField {
            field: "memory",
            kind: "op",
            hint: format!(
                "`{}` takes its arguments in `memory` (the original's payload: key, value, tags, fromKey, toKey, relation, taskId, summary, …)",
                op.as_str()
            ),
        })?;
        orchestra_memory::check_op(memory_op, &payload).map_err(HubMemoryError::from)?;
        let label = if params.task.trim().is_empty() {
            op.as_str().to_owned()
        } else {
            params.task
        };
        let producer = if requested_by.as_deref() == Some(WORKER_REQUESTER) {
            // What a worker may write is narrower (`orchestra_memory::check_worker_op`).
            orchestra_memory::check_worker_op(memory_op, &payload).map_err(HubMemoryError::from)?;
            orchestra_memory::WORKER_PRODUCER
        } else {
            "tool"
        };
        let mut record = self.op_record(op, &label, requested_by);
        let id = record.id.clone();
        let job = self.runtime.open(record.clone())?;
        let origin = MemoryProvenance {
            producer: Some(producer.to_owned()),
            ..MemoryProvenance::default()
        };
        let op_id = id.clone();
        self.runtime.spawn(id.clone(), async move {
            let ran = memory
                .run_op(memory_op, payload, origin, Some(op_id))
                .await
                .and_then(|result| match &result {
                    MemoryOpResult::Done(done) => {
                        memory.complete_task(done)?;
                        Ok(result)
                    }
                    MemoryOpResult::Put(_)
                    | MemoryOpResult::Link(_)
                    | MemoryOpResult::Search(_)
                    | MemoryOpResult::Get(_)
                    | MemoryOpResult::Forget(_) => Ok(result),
                });
            match ran {
                Ok(result) => {
                    record.response_text = Some(
                        serde_json::to_string(&result)
                            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
                    );
                    record.finish(JobStatus::Succeeded, now_ms());
                }
                Err(err) => {
                    record.error = Some(err.to_string());
                    record.finish(JobStatus::Failed, now_ms());
                }
            }
            job.finish(&record);
        });
        Ok(Self::op_started(id, op, None, JobStatus::Running))
    }

    /// `task_start` as a worker may call it (the worker MCP endpoint): memory ops only —
    /// a worker never starts workers, workflows or model changes — answered with the op's
    /// result once it is done.
    pub async fn start_for_worker(
        &self,
        params: TaskStartParams,
    ) -> Result<WorkerOpAnswer, TaskError> {
        let op = match (params.kind, params.op) {
            (TaskKind::Op, Some(op)) if op.memory_op().is_some() => op,
            (kind, op) => {
                return Err(TaskError::WorkerRestricted {
                    asked: match op {
                        Some(op) => format!("kind \"{}\" with op `{}`", kind.as_str(), op.as_str()),
                        None => format!("kind \"{}\"", kind.as_str()),
                    },
                });
            }
        };
        let started = self
            .start(params, Some(WORKER_REQUESTER.to_owned()))
            .await?;
        let deadline = tokio::time::Instant::now() + WORKER_OP_WAIT;
        let record = self
            .runtime
            .await_until(&started.task_id, deadline)
            .await?
            .ok_or_else(|| crate::jobs::JobError::UnknownTask {
                id: started.task_id.clone(),
            })?;
        let result = record
            .response_text
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        let error = match record.status {
            JobStatus::Running => Some(format!(
                "still running after {} s; collect it with task_await {{\"taskId\": \"{}\"}}",
                WORKER_OP_WAIT.as_secs(),
                record.id
            )),
            JobStatus::Succeeded => None,
            JobStatus::Failed | JobStatus::Canceled => record.error.clone(),
        };
        Ok(WorkerOpAnswer {
            task_id: record.id,
            op,
            status: record.status,
            result,
            error,
        })
    }
}
