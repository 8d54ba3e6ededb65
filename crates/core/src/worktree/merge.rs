//! Reviewing and merging a task's branch. A merge is checked first with
//! `git merge-tree --write-tree`, which writes only objects: a conflict changes nothing (no
//! merge in progress, no file touched) and names the files. A clean merge becomes one merge
//! commit made with `commit-tree`; the branch `baseRef` then moves to it — through
//! `merge --ff-only` in the user's checkout when it is on that branch (git updates only the
//! merged files and refuses to overwrite the user's changes), else with `update-ref`, leaving
//! the checkout alone.

use std::path::Path;

use orchestra_protocol::{WorktreeInfo, WorktreeState};
use serde::Serialize;

use super::git::{Git, as_orchestra};
use super::{WorktreeError, Worktrees};

/// How much patch text a diff answer carries.
const PATCH_CHARS: usize = 200_000;

/// One changed file of a task's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStat {
    pub path: String,
    /// `None` for a binary file.
    pub insertions: Option<u32>,
    pub deletions: Option<u32>,
}

/// What a task's branch changes against its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeDiff {
    pub task_id: String,
    pub branch: String,
    pub base_ref: String,
    pub files: Vec<FileStat>,
    /// The unified diff, cut at 200 000 characters (`truncated`).
    pub patch: String,
    pub truncated: bool,
}

/// Where a clean merge landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeWhere {
    /// In the user's checkout, which is on `baseRef`: its files were updated.
    Checkout,
    /// Only the branch `baseRef` moved; the checkout (on another branch) was not touched.
    Branch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeOutcome {
    pub task_id: String,
    pub state: WorktreeState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<MergeWhere>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// What happened, for the person or the main agent.
    pub message: String,
}

impl Worktrees {
    /// The branch's changes against the commit it was made from.
    pub async fn diff(&self, info: &WorktreeInfo) -> Result<WorktreeDiff, WorktreeError> {
        alive(info)?;
        let git = self.checkout();
        let head = info.head_sha.as_deref().unwrap_or(&info.branch);
        let numstat = git
            .run(&[
                "diff",
                "--numstat",
                "-z",
                "--no-renames",
                &info.base_sha,
                head,
            ])
            .await?;
        let files = numstat
            .split('\0')
            .filter(|e| !e.is_empty())
            .filter_map(|entry| {
                let mut fields = entry.splitn(3, '\t');
                let added = fields.next()?;
                let removed = fields.next()?;
                let path = fields.next()?;
                Some(FileStat {
                    path: path.to_owned(),
                    insertions: added.parse().ok(),
                    deletions: removed.parse().ok(),
                })
            })
            .collect();
        let patch = git
            .run(&["diff", "--no-color", "--no-ext-diff", &info.base_sha, head])
            .await?;
        let truncated = patch.chars().count() > PATCH_CHARS;
        Ok(WorktreeDiff {
            task_id: info.task_id.clone(),
            branch: info.branch.clone(),
            base_ref: info.base_ref.clone(),
            files,
            patch: if truncated {
                patch.chars().take(PATCH_CHARS).collect()
            } else {
                patch
            },
            truncated,
        })
    }

    /// Merges the task's branch into `baseRef` when that merges cleanly; on a conflict changes
    /// nothing and sets the state `conflict` with the files.
    pub async fn merge(&self, info: &mut WorktreeInfo) -> Result<MergeOutcome, WorktreeError> {
        alive(info)?;
        let one = self.lock.lock().await;
        let git = self.checkout();
        let base_ref = format!("refs/heads/{}", info.base_ref);
        let tip = git
            .finish(&[
                "rev-parse",
                "-q",
                "--verify",
                &format!("{base_ref}^{{commit}}"),
            ])
            .await?;
        if tip.code != Some(0) {
            return Err(WorktreeError::Refused(format!(
                "branch `{}` (the task's base) no longer exists; recreate it, or review the work on `{}` and merge it by hand",
                info.base_ref, info.branch
            )));
        }
        let tip = tip.stdout.trim().to_owned();
        let head = git
            .run(&[
                "rev-parse",
                &format!("refs/heads/{}^{{commit}}", info.branch),
            ])
            .await?
            .trim()
            .to_owned();
        let check = git
            .finish(&[
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                &tip,
                &head,
            ])
            .await?;
        let mut lines = check.stdout.lines();
        let tree = lines.next().unwrap_or_default().trim().to_owned();
        match check.code {
            Some(0) => {}
            Some(1) => {
                let mut conflicts: Vec<String> =
                    lines.map(str::to_owned).filter(|l| !l.is_empty()).collect();
                conflicts.dedup();
                info.state = WorktreeState::Conflict;
                info.conflicts = conflicts.clone();
                return Ok(MergeOutcome {
                    task_id: info.task_id.clone(),
                    state: info.state,
                    merged_into: None,
                    commit: None,
                    message: format!(
                        "not merged: `{}` conflicts with `{}` in {}; nothing was changed. Start a follow-up task with worktree: {{ taskId: \"{}\" }} to resolve it (the worktree gets `{}` merged in, with conflict markers), then merge again.",
                        info.branch,
                        info.base_ref,
                        conflicts.join(", "),
                        info.task_id,
                        info.base_ref
                    ),
                    conflicts,
                });
            }
            _ => {
                return Err(WorktreeError::Git {
                    command: "git merge-tree --write-tree".into(),
                    dir: self.project_dir.clone(),
                    stderr: check.stderr.trim().to_owned(),
                });
            }
        }
        let message = format!("Merge {} (orchestra task {})", info.branch, info.task_id);
        let commit = git
            .run(&as_orchestra(&[
                "commit-tree",
                &tree,
                "-p",
                &tip,
                "-p",
                &head,
                "-m",
                &message,
            ]))
            .await?
            .trim()
            .to_owned();
        let merged_into = if self.checked_out_here(&base_ref).await? {
            let moved = git.finish(&["merge", "--ff-only", "-q", &commit]).await?;
            if moved.code != Some(0) {
                let dirty = self.dirty_overlap(&tip, &tree).await.unwrap_or_default();
                return Err(WorktreeError::Refused(format!(
                    "not merged: your checkout is on `{}` and has uncommitted changes in {} that the merge would overwrite; nothing was changed. Commit or stash them, then merge again.",
                    info.base_ref,
                    if dirty.is_empty() {
                        moved.stderr.trim().to_owned()
                    } else {
                        dirty.join(", ")
                    }
                )));
            }
            MergeWhere::Checkout
        } else {
            if let Some(other) = self.checked_out_elsewhere(&base_ref).await? {
                return Err(WorktreeError::Refused(format!(
                    "not merged: `{}` is checked out in `{other}`; merging there would leave that checkout out of step. Switch it to another branch, or merge from there.",
                    info.base_ref
                )));
            }
            git.run(&["update-ref", "-m", &message, &base_ref, &commit, &tip])
                .await?;
            MergeWhere::Branch
        };
        self.remove_locked(info).await?;
        drop(one);
        info.state = WorktreeState::Merged;
        info.conflicts.clear();
        let said = match merged_into {
            MergeWhere::Checkout => format!(
                "merged `{}` into `{}` in your checkout (commit {})",
                info.branch,
                info.base_ref,
                short(&commit)
            ),
            MergeWhere::Branch => format!(
                "merged `{}` into branch `{}` (commit {}) without touching your checkout, which is on another branch",
                info.branch,
                info.base_ref,
                short(&commit)
            ),
        };
        Ok(MergeOutcome {
            task_id: info.task_id.clone(),
            state: info.state,
            merged_into: Some(merged_into),
            commit: Some(commit),
            conflicts: Vec::new(),
            message: format!("{said}; the task's worktree and branch were removed"),
        })
    }

    /// Prepares a follow-up in a `conflict` worktree: merges `baseRef` into the branch there,
    /// leaving conflict markers for the worker to resolve; the follow-up's finish commits it.
    pub async fn start_resolving(&self, info: &WorktreeInfo) -> Result<(), WorktreeError> {
        let tree = Git::new(Path::new(&info.path));
        let merged = tree
            .finish(&as_orchestra(&[
                "merge",
                "--no-ff",
                "--no-commit",
                &info.base_ref,
            ]))
            .await?;
        // Exit 1 is the conflict the worker is asked to resolve.
        match merged.code {
            Some(0 | 1) => Ok(()),
            _ => Err(WorktreeError::Git {
                command: format!("git merge --no-commit {}", info.base_ref),
                dir: tree.dir().to_path_buf(),
                stderr: merged.stderr.trim().to_owned(),
            }),
        }
    }

    /// True when the user's checkout is on `branch_ref`.
    async fn checked_out_here(&self, branch_ref: &str) -> Result<bool, WorktreeError> {
        let head = self
            .checkout()
            .finish(&["symbolic-ref", "-q", "HEAD"])
            .await?;
        Ok(head.code == Some(0) && head.stdout.trim() == branch_ref)
    }

    /// Another worktree (not ours, not the checkout) that has `branch_ref` checked out.
    async fn checked_out_elsewhere(
        &self,
        branch_ref: &str,
    ) -> Result<Option<String>, WorktreeError> {
        let list = self
            .checkout()
            .run(&["worktree", "list", "--porcelain"])
            .await?;
        let mut path = None;
        for line in list.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(p.to_owned());
            } else if line.strip_prefix("branch ") == Some(branch_ref) {
                return Ok(path);
            }
        }
        Ok(None)
    }

    /// Files the merge changes that the user has uncommitted changes in.
    async fn dirty_overlap(&self, tip: &str, tree: &str) -> Result<Vec<String>, WorktreeError> {
        let git = self.checkout();
        let changed = git.run(&["diff", "--name-only", "-z", tip, tree]).await?;
        let status = git
            .run(&["status", "--porcelain", "-z", "--untracked-files=all"])
            .await?;
        let dirty: Vec<&str> = status
            .split('\0')
            .filter_map(|entry| entry.get(3..))
            .collect();
        Ok(changed
            .split('\0')
            .filter(|path| !path.is_empty() && dirty.contains(path))
            .map(str::to_owned)
            .collect())
    }
}

fn alive(info: &WorktreeInfo) -> Result<(), WorktreeError> {
    if info.state.exists() {
        Ok(())
    } else {
        Err(WorktreeError::Gone {
            task_id: info.task_id.clone(),
            state: info.state.as_str(),
        })
    }
}

fn short(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}
