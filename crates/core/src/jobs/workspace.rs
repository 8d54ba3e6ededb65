//! A worker job's worktree (`workspace: "worktree"`): made before the worker starts (or an
//! existing task's, for a follow-up), the session created in it, and the worker's changes
//! committed on the task's branch when the turn ends, whatever its outcome.

use std::path::PathBuf;

use orchestra_protocol::{JobRecord, WorktreeInfo, WorktreeState};

use crate::worktree::{Base, WorktreeError, Worktrees};

/// Where a worker job works when not in the project directory.
pub enum JobWorkspace {
    /// A new worktree and branch `orchestra/<taskId>` from `base`.
    Create { worktrees: Worktrees, base: Base },
    /// The existing worktree of another task (a follow-up) or of the job's workflow run: its
    /// owner's record is updated, and the worktree stays even when nothing changed.
    Reuse {
        worktrees: Worktrees,
        info: WorktreeInfo,
    },
}

/// The worktree a running job holds.
pub(super) struct Held {
    worktrees: Worktrees,
    /// Made for this job: removed at the end when the job changed nothing.
    own: bool,
    pub info: WorktreeInfo,
    /// The directory the session is created in (the project's place inside the worktree).
    pub session_dir: PathBuf,
}

impl JobWorkspace {
    /// The worktree a follow-up runs in (`None` for one still to be made).
    pub fn existing(&self) -> Option<WorktreeInfo> {
        match self {
            JobWorkspace::Create { .. } => None,
            JobWorkspace::Reuse { info, .. } => Some(info.clone()),
        }
    }

    /// Makes (or prepares) the worktree; the record names it at once.
    pub(super) async fn open(self, record: &mut JobRecord) -> Result<Held, WorktreeError> {
        let own = matches!(self, JobWorkspace::Create { .. });
        let (worktrees, info, prefix) = match self {
            JobWorkspace::Create { worktrees, base } => {
                let info = worktrees.create(&record.id, &base).await?;
                (worktrees, info, base.prefix)
            }
            JobWorkspace::Reuse { worktrees, info } => {
                if info.state == WorktreeState::Conflict {
                    worktrees.start_resolving(&info).await?;
                }
                let prefix = worktrees.base_prefix().await?;
                (worktrees, info, prefix)
            }
        };
        record.worktree = Some(info.clone());
        let session_dir = if prefix.is_empty() {
            PathBuf::from(&info.path)
        } else {
            PathBuf::from(&info.path).join(prefix)
        };
        Ok(Held {
            worktrees,
            own,
            info,
            session_dir,
        })
    }
}

impl Held {
    /// Commits the worker's changes (or removes an untouched worktree) and records the result
    /// on the job and, for a follow-up, on the task that owns the worktree.
    pub(super) async fn close(
        mut self,
        record: &mut JobRecord,
        store: &orchestra_store::Store,
    ) -> Result<(), WorktreeError> {
        let label = record.message.clone();
        let finished = if self.own {
            self.worktrees.finish(&mut self.info, &label).await
        } else {
            self.worktrees.commit(&mut self.info, &label).await
        };
        if finished.is_ok() && self.info.state == WorktreeState::Conflict {
            // A follow-up ran in a conflicting worktree: its commit is the resolution.
            self.info.state = WorktreeState::Open;
            self.info.conflicts.clear();
        }
        record.worktree = Some(self.info.clone());
        if self.info.task_id != record.id
            && let Err(err) = store.set_job_worktree(&self.info.task_id, &self.info)
        {
            tracing::warn!(error = %err, task = %self.info.task_id, "recording a follow-up's worktree on its owner failed");
        }
        finished
    }
}

impl super::JobRuntime {
    /// A job running in this hub inside the worktree `owner` owns (the owner itself or a
    /// follow-up), if any: a merge or discard must wait for it.
    pub fn running_in_worktree(&self, owner: &str) -> Option<String> {
        self.lock().values().find_map(|job| {
            let record = job.record.borrow();
            record
                .worktree
                .as_ref()
                .is_some_and(|w| w.task_id == owner)
                .then(|| record.id.clone())
        })
    }
}
