//! A workflow run's worktree: one worktree and branch `orchestra/<run job id>` that every
//! step of the run works in, so boomerang's implement and fix steps build on each other. It
//! is made when the run's driver starts (when the run asks for one, or by default when a
//! step's worker may edit (and its profile does not say `checkout`) and the project is a git
//! repository with a commit), each step commits its changes there, and at the end a run that
//! changed nothing leaves nothing. A resumed run goes on in the worktree its earlier part
//! left open, so the steps after the pause build on the steps before it.

use orchestra_protocol::{JobRecord, WorkspaceMode, WorktreeInfo, WorktreeState};

use super::WorkflowRequest;
use crate::config::{Config, WorkflowDefinition};
use crate::jobs::JobWorkspace;
use crate::worktree::Worktrees;

/// What a run asked for.
#[derive(Clone)]
pub(super) struct RunWorkspace {
    mode: Option<WorkspaceMode>,
    worktrees: Option<Worktrees>,
    /// A resumed run's worktree from before its pause, still open.
    carried: Option<WorktreeInfo>,
}

/// The worktree a running run holds.
pub(super) struct RunWorktree {
    worktrees: Worktrees,
    pub info: WorktreeInfo,
    /// Made by this part of the run (removed at the end when nothing changed); a carried-over
    /// one is only committed to, and its owner's record (the run's first job) updated.
    own: bool,
}

impl RunWorkspace {
    pub fn of(request: &WorkflowRequest) -> RunWorkspace {
        RunWorkspace {
            mode: request.workspace,
            worktrees: request.worktrees.clone(),
            carried: None,
        }
    }

    /// A resumed run goes on in `earlier`'s worktree (the run's job before the pause) while it
    /// is open and still on disk.
    pub fn carry_from(mut self, earlier: Option<&JobRecord>) -> RunWorkspace {
        self.carried = earlier.and_then(|job| job.worktree.clone()).filter(|info| {
            matches!(info.state, WorktreeState::Open) && std::path::Path::new(&info.path).is_dir()
        });
        self
    }

    /// Makes the run's worktree when it gets one; an explicit `worktree` that cannot be made
    /// is the run's error.
    pub async fn open(
        self,
        config: &Config,
        definition: &WorkflowDefinition,
        record: &mut JobRecord,
    ) -> Result<Option<RunWorktree>, String> {
        let Some(worktrees) = self.worktrees else {
            return Ok(None);
        };
        if let Some(info) = self.carried {
            record.worktree = Some(info.clone());
            return Ok(Some(RunWorktree {
                worktrees,
                info,
                own: false,
            }));
        }
        let writes = definition.steps.iter().any(|step| {
            step.members().iter().any(|m| {
                config
                    .profile(&m.worker_id)
                    .is_ok_and(|p| !p.read_only() && p.workspace != Some(WorkspaceMode::Checkout))
            })
        });
        let base = match self.mode {
            Some(WorkspaceMode::Checkout) => return Ok(None),
            Some(WorkspaceMode::Worktree) => worktrees.base().await.map_err(|e| e.to_string())?,
            None if !writes => return Ok(None),
            None => match worktrees.base().await {
                Ok(base) => base,
                Err(_) => return Ok(None),
            },
        };
        let info = worktrees
            .create(&record.id, &base)
            .await
            .map_err(|e| e.to_string())?;
        record.worktree = Some(info.clone());
        Ok(Some(RunWorktree {
            worktrees,
            info,
            own: true,
        }))
    }
}

impl RunWorktree {
    /// A step works in the run's worktree.
    pub fn for_step(&self) -> JobWorkspace {
        JobWorkspace::Reuse {
            worktrees: self.worktrees.clone(),
            info: self.info.clone(),
        }
    }

    /// At the run's end: the diffstat of every step's commits, and a run that changed nothing
    /// leaves no worktree and no branch. A carried-over worktree stays, and the record of the
    /// job that made it learns the new diffstat.
    pub async fn close(mut self, record: &mut JobRecord, store: &orchestra_store::Store) {
        let label = record.message.clone();
        let closed = if self.own {
            self.worktrees.finish(&mut self.info, &label).await
        } else {
            self.worktrees.commit(&mut self.info, &label).await
        };
        if let Err(err) = closed {
            tracing::warn!(run_job = %record.id, error = %err, "closing the run's worktree failed");
        }
        if self.info.task_id != record.id
            && let Err(err) = store.set_job_worktree(&self.info.task_id, &self.info)
        {
            tracing::warn!(error = %err, task = %self.info.task_id, "recording the run's worktree on the job that made it failed");
        }
        record.worktree = Some(self.info);
    }
}
