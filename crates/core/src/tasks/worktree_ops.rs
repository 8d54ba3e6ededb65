//! Worktree tasks in the facade: which workspace a worker task gets (`workspace`, the
//! profile's, or the default: a worktree for a worker that may edit, in a git repository with
//! a commit), follow-ups in an existing task's worktree (`worktree: { taskId }`), and the
//! `worktree.diff`, `worktree.merge` and `worktree.discard` ops, recorded as jobs like every op.

use orchestra_protocol::{
    EventBody, JobRecord, JobStatus, MergeConflict, OpKind, TaskStartParams, TaskStartResult,
    WorkspaceMode, WorktreeInfo, WorktreePayload, WorktreeState, now_ms,
};

use super::{TaskEngine, TaskError};
use crate::config::Profile;
use crate::jobs::JobWorkspace;
use crate::worktree::{WorktreeError, Worktrees};

impl From<WorktreeError> for TaskError {
    fn from(err: WorktreeError) -> Self {
        TaskError::Worktree(Box::new(err))
    }
}

impl TaskEngine {
    /// The engine, keeping its task worktrees under `root` (the hub's private state folder).
    pub fn with_worktrees_at(mut self, root: std::path::PathBuf) -> TaskEngine {
        self.worktrees = Worktrees::new(&self.project_dir, root, self.config.worktree.clone());
        self
    }

    /// Brings the project's task worktrees in line with the store (on hub start, before any
    /// task runs): a task a dead hub left mid-turn gets its changes committed (or its
    /// untouched worktree removed); worktrees and `orchestra/*` branches that no open record
    /// owns are removed. Open ones stay.
    pub async fn reconcile_worktrees(&self) -> Result<crate::worktree::ReconcileReport, TaskError> {
        let mut owned = std::collections::BTreeMap::new();
        for job in self.store().worktree_jobs()? {
            let Some(mut info) = job.worktree.clone() else {
                continue;
            };
            if job.status.is_final()
                && info.task_id == job.id
                && info.state.exists()
                && info.head_sha.is_none()
            {
                match self.worktrees.finish(&mut info, &job.message).await {
                    Ok(()) => {
                        self.store().set_job_worktree(&job.id, &info)?;
                    }
                    Err(err) => {
                        tracing::warn!(task = %job.id, error = %err, "committing an interrupted task's changes failed");
                    }
                }
            }
            // A task's own record speaks for its worktree; a follow-up's copy only if the
            // owner's record is gone.
            if info.task_id == job.id || !owned.contains_key(&info.task_id) {
                owned.insert(info.task_id.clone(), info);
            }
        }
        // Running tasks (of another hub on this store) may be making theirs right now.
        let running = self.store().list_jobs(&orchestra_store::JobFilter {
            status: Some(JobStatus::Running),
            limit: u32::MAX,
            ..orchestra_store::JobFilter::default()
        })?;
        for job in running {
            owned.entry(job.id.clone()).or_insert_with(|| {
                WorktreeInfo::open(&job.id, String::new(), Worktrees::branch_of(&job.id))
            });
        }
        if self.worktrees.base().await.is_err() && !self.worktrees.root().exists() {
            // Not a repository and no worktree was ever made: nothing to reconcile.
            return Ok(crate::worktree::ReconcileReport::default());
        }
        Ok(self.worktrees.reconcile(&owned).await?)
    }

    /// The project's worktrees.
    pub fn worktrees(&self) -> &Worktrees {
        &self.worktrees
    }

    /// Where a worker task on `profile` runs: `None` is the checkout.
    pub(super) async fn workspace_for(
        &self,
        params: &TaskStartParams,
        profile: &Profile,
    ) -> Result<Option<JobWorkspace>, TaskError> {
        if let Some(target) = &params.worktree {
            if params.workspace == Some(WorkspaceMode::Checkout) {
                return Err(TaskError::InvalidField {
                    field: "workspace",
                    problem: "`worktree: { taskId }` runs the task in that task's worktree; leave out workspace: \"checkout\"".into(),
                });
            }
            let (owner, info) = self.worktree_of(&target.task_id)?;
            if let Some(busy) = self.busy_in(&owner) {
                return Err(WorktreeError::Refused(format!(
                    "task `{busy}` is still running in that worktree; await it first"
                ))
                .into());
            }
            if !info.state.exists() {
                return Err(WorktreeError::Gone {
                    task_id: info.task_id.clone(),
                    state: info.state.as_str(),
                }
                .into());
            }
            return Ok(Some(JobWorkspace::Reuse {
                worktrees: self.worktrees.clone(),
                info,
            }));
        }
        let asked = params.workspace.or(profile.workspace);
        match asked {
            Some(WorkspaceMode::Checkout) => Ok(None),
            Some(WorkspaceMode::Worktree) => {
                let base = self.worktrees.base().await?;
                Ok(Some(JobWorkspace::Create {
                    worktrees: self.worktrees.clone(),
                    base,
                }))
            }
            // The default: a worktree where one can be made for a worker that may edit.
            None if profile.read_only() => Ok(None),
            None => match self.worktrees.base().await {
                Ok(base) => Ok(Some(JobWorkspace::Create {
                    worktrees: self.worktrees.clone(),
                    base,
                })),
                Err(err) => {
                    tracing::debug!(reason = %err, "the task runs in the checkout");
                    Ok(None)
                }
            },
        }
    }

    /// A task running in `owner`'s worktree now: the owner itself or a follow-up.
    fn busy_in(&self, owner: &JobRecord) -> Option<String> {
        if owner.status == JobStatus::Running {
            Some(owner.id.clone())
        } else {
            self.runtime.running_in_worktree(&owner.id)
        }
    }

    /// The record owning the worktree `task_id` names (the task itself, or the owner of the
    /// worktree a follow-up ran in), with that worktree.
    fn worktree_of(&self, task_id: &str) -> Result<(JobRecord, WorktreeInfo), TaskError> {
        let record =
            self.runtime
                .peek(task_id)?
                .ok_or_else(|| crate::jobs::JobError::UnknownTask {
                    id: task_id.to_owned(),
                })?;
        let info = record.worktree.clone().ok_or_else(|| TaskError::InvalidField {
            field: "worktree.taskId",
            problem: format!(
                "task `{task_id}` ran in the checkout, not in a worktree; there is nothing to diff, merge or discard"
            ),
        })?;
        if info.task_id == record.id {
            return Ok((record, info));
        }
        let owner = self.runtime.peek(&info.task_id)?.ok_or_else(|| {
            crate::jobs::JobError::UnknownTask {
                id: info.task_id.clone(),
            }
        })?;
        let info = owner.worktree.clone().unwrap_or(info);
        Ok((owner, info))
    }

    /// `worktree.diff`, `worktree.merge`, `worktree.discard`.
    pub(super) fn start_worktree_op(
        &self,
        op: OpKind,
        params: TaskStartParams,
        requested_by: Option<String>,
    ) -> Result<TaskStartResult, TaskError> {
        let target = params.worktree.ok_or_else(|| TaskError::MissingField {
            field: "worktree",
            kind: "op",
            hint: format!(
                "`{}` takes `worktree: {{ \"taskId\": \"…\" }}`: the task whose worktree to act on",
                op.as_str()
            ),
        })?;
        let (owner, mut info) = self.worktree_of(&target.task_id)?;
        if let Some(busy) = self.busy_in(&owner) {
            return Err(WorktreeError::Refused(format!(
                "task `{busy}` is still running in that worktree; its changes are committed when it ends, so await it first"
            ))
            .into());
        }
        let label = if params.task.trim().is_empty() {
            format!("{} {}", op.as_str(), owner.id)
        } else {
            params.task
        };
        let mut record = self.op_record(op, &label, requested_by);
        let id = record.id.clone();
        let job = self.runtime.open(record.clone())?;
        let worktrees = self.worktrees.clone();
        let store = self.store().clone();
        let owner_worker = owner.worker_id.clone();
        self.runtime.spawn(id.clone(), async move {
            let ran: Result<String, WorktreeError> = match op {
                OpKind::WorktreeDiff => worktrees
                    .diff(&info)
                    .await
                    .map(|diff| serde_json::to_string(&diff).unwrap_or_default()),
                OpKind::WorktreeMerge => worktrees.merge(&mut info).await.map(|merged| {
                    if info.state == WorktreeState::Conflict {
                        job.emit(EventBody::MergeConflict(MergeConflict {
                            task_id: info.task_id.clone(),
                            op_task_id: record.id.clone(),
                            worker_id: owner_worker.clone(),
                            branch: info.branch.clone(),
                            base_ref: info.base_ref.clone(),
                            files: info.conflicts.clone(),
                        }));
                    }
                    serde_json::to_string(&merged).unwrap_or_default()
                }),
                OpKind::WorktreeDiscard => worktrees.discard(&mut info).await.map(|()| {
                    format!(
                        "{{\"taskId\":\"{}\",\"state\":\"discarded\",\"message\":\"the worktree and branch {} were removed\"}}",
                        info.task_id, info.branch
                    )
                }),
                OpKind::MemoryPut
                | OpKind::MemoryLink
                | OpKind::MemoryDone
                | OpKind::MemorySearch
                | OpKind::MemoryGet
                | OpKind::MemoryForget
                | OpKind::WorkerModelSet
                | OpKind::WorkerModelReset
                | OpKind::PassthroughSet
                | OpKind::PassthroughClear => Ok(String::new()),
            };
            // A refused merge changes the state too (conflict): record whatever it is now.
            if let Err(err) = store.set_job_worktree(&info.task_id, &info) {
                tracing::warn!(error = %err, task = %info.task_id, "recording the worktree's state failed");
            }
            record.worktree = Some(info);
            match ran {
                Ok(text) => {
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
        Ok(Self::op_started(id, op, None, JobStatus::Running))
    }
}

/// A continued task (`continueTaskId`) runs where the task it continues ran: in that task's
/// worktree while it is still there, else in the checkout. A fresh worktree would hide from the
/// session the files it already changed. What the caller chose itself stands.
pub(super) fn continued_workspace(
    mut params: TaskStartParams,
    continues: Option<&JobRecord>,
) -> TaskStartParams {
    let Some(record) = continues else {
        return params;
    };
    if params.worktree.is_some() || params.workspace.is_some() {
        return params;
    }
    match &record.worktree {
        Some(info) if info.state.exists() => {
            params.worktree = Some(WorktreePayload {
                task_id: record.id.clone(),
            });
        }
        Some(_) | None => params.workspace = Some(WorkspaceMode::Checkout),
    }
    params
}
