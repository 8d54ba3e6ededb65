//! `kind: "op"`: routes the memory ops to `memory_ops`; `worker.model.set` /
//! `worker.model.reset` change which model a worker runs on. Like every task, an op is a job record the caller awaits; resolving may start the
//! worker's server, because the catalog comes from OpenCode.

use super::{TaskEngine, TaskError};
use orchestra_protocol::memory::MemoryOp;
use orchestra_protocol::{
    JobStatus, ModelPolicy, OpKind, TaskKind, TaskStartParams, TaskStartResult, now_ms,
};

const OPS: &str = "memory.put, memory.link, memory.done, memory.search, memory.get, memory.forget, worker.model.set, worker.model.reset, passthrough.set, passthrough.clear, worktree.diff, worktree.merge, worktree.discard";

enum ModelOp {
    Set { model: String, policy: ModelPolicy },
    Reset,
}

impl TaskEngine {
    /// A new op's job record: labelled with `task`, or with the op's name when that is empty.
    pub(super) fn op_record(
        &self,
        op: OpKind,
        task: &str,
        requested_by: Option<String>,
    ) -> orchestra_protocol::JobRecord {
        let label = if task.trim().is_empty() {
            op.as_str().to_owned()
        } else {
            task.to_owned()
        };
        let mut record =
            self.runtime
                .new_record(format!("op:{}", op.as_str()), label, TaskKind::Op);
        record.requested_by = requested_by;
        record
    }

    /// What `task_start` answers for an op: its record's id, and `task_await` next.
    pub(super) fn op_started(
        id: String,
        op: OpKind,
        worker_id: Option<String>,
        status: JobStatus,
    ) -> TaskStartResult {
        TaskStartResult {
            task_id: id,
            kind: TaskKind::Op,
            worker_id,
            workflow_id: None,
            continue_run_id: None,
            op: Some(op),
            route_reason: None,
            status,
            next: "task_await".into(),
        }
    }

    pub(super) fn start_op(
        &self,
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let op = params.op.ok_or_else(|| TaskError::MissingField {
            field: "op",
            kind: "op",
            hint: format!("one of: {OPS}"),
        })?;
        let payload = params.worker.clone().unwrap_or_default();
        let memory_op = |memory_op| (op, memory_op);
        let model_op = match op {
            OpKind::MemoryPut => {
                return self.start_memory_ops(memory_op(MemoryOp::Put), params, requested_by);
            }
            OpKind::MemoryLink => {
                return self.start_memory_ops(memory_op(MemoryOp::Link), params, requested_by);
            }
            OpKind::MemoryDone => {
                return self.start_memory_ops(memory_op(MemoryOp::Done), params, requested_by);
            }
            OpKind::MemorySearch => {
                return self.start_memory_ops(memory_op(MemoryOp::Search), params, requested_by);
            }
            OpKind::MemoryGet => {
                return self.start_memory_ops(memory_op(MemoryOp::Get), params, requested_by);
            }
            OpKind::MemoryForget => {
                return self.start_memory_ops(memory_op(MemoryOp::Forget), params, requested_by);
            }
            OpKind::WorkerModelSet => ModelOp::Set {
                model: payload
                    .model
                    .clone()
                    .or_else(|| params.model.clone())
                    .ok_or_else(|| TaskError::MissingField {
                        field: "worker.model",
                        kind: "op",
                        hint: "give a tag (auto:fast, auto:vision, …) or `provider/model`".into(),
                    })?,
                policy: payload
                    .model_policy
                    .or(params.model_policy)
                    .unwrap_or(ModelPolicy::Sticky),
            },
            OpKind::WorkerModelReset => ModelOp::Reset,
            OpKind::PassthroughSet | OpKind::PassthroughClear => {
                return self.start_passthrough_op(op, params, requested_by);
            }
            OpKind::WorktreeDiff | OpKind::WorktreeMerge | OpKind::WorktreeDiscard => {
                return self.start_worktree_op(op, params, requested_by);
            }
        };
        let worker_id = payload
            .worker_id
            .clone()
            .or_else(|| params.worker_id.clone())
            .ok_or_else(|| TaskError::MissingField {
                field: "worker.workerId",
                kind: "op",
                hint: format!("one of: {}", self.profile_ids()),
            })?;
        self.config.profile(&worker_id)?;

        let mut record = self.op_record(op, &params.task, requested_by);
        let id = record.id.clone();
        let job = self.runtime.open(record.clone())?;
        let pool = self.pool().clone();
        let worker = worker_id.clone();
        let respawn = payload.respawn;
        self.runtime.spawn(id.clone(), async move {
            let work = async {
                match &model_op {
                    ModelOp::Set { model, policy } => pool.set_model(&worker, model, *policy).await,
                    ModelOp::Reset => pool.reset_model(&worker).await,
                }
            };
            // An op may start the worker's server to read its catalog; a cancel stops waiting.
            let result = tokio::select! {
                result = work => result,
                () = job.cancelled().cancelled() => {
                    record.error = Some(job.cancel_reason());
                    record.finish(JobStatus::Canceled, now_ms());
                    job.finish(&record);
                    return;
                }
            };
            match result {
                Ok(resolution) => {
                    let mut text = format!(
                        "worker `{worker}` now runs on {} ({})",
                        resolution.full_id(),
                        resolution.reason
                    );
                    if let ModelOp::Set { policy, .. } = &model_op {
                        text.push_str(match policy {
                            ModelPolicy::Sticky => "; sticky: kept across server restarts",
                            ModelPolicy::Dynamic => "; dynamic: until the worker's server restarts",
                        });
                    }
                    if respawn {
                        text.push_str("; no respawn needed: the model is sent with every prompt");
                    }
                    record.model = Some(resolution.full_id());
                    record.model_reason = Some(resolution.reason);
                    record.response_text = Some(text);
                    record.finish(JobStatus::Succeeded, now_ms());
                }
                Err(err) => {
                    record.error = Some(err.to_string());
                    record.finish(JobStatus::Failed, now_ms());
                }
            }
            job.finish(&record);
        });
        Ok(Self::op_started(
            id,
            op,
            Some(worker_id),
            JobStatus::Running,
        ))
    }
}
