//! Crash-proofing: when a hub starts, the project's task worktrees and `orchestra/*` branches
//! are compared with the records that own them. Open ones stay; the rest (merged, discarded,
//! or owned by no record: a hub killed between `worktree add` and its first save) go. Spares
//! an earlier hub left are kept when clean and within `worktree.spares`, removed otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orchestra_protocol::WorktreeInfo;
use serde::Serialize;

use super::spares::{SPARE_PREFIX, is_spare};
use super::{BRANCH_PREFIX, WorktreeError, Worktrees};

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Task ids whose worktree or branch stays (open or conflict).
    pub kept: Vec<String>,
    /// Task ids whose worktree and branch were removed.
    pub removed: Vec<String>,
    /// Spare worktrees an earlier hub left that were kept (clean, within `worktree.spares`).
    pub spares_kept: usize,
    /// Spare worktrees removed (beyond `worktree.spares`, half-made, or not clean).
    pub spares_removed: usize,
}

impl Worktrees {
    /// Removes every task worktree and `orchestra/*` branch that `owned` (task id → its
    /// record's worktree) does not list as open or conflict.
    pub async fn reconcile(
        &self,
        owned: &BTreeMap<String, WorktreeInfo>,
    ) -> Result<ReconcileReport, WorktreeError> {
        let _one = self.lock.lock().await;
        let git = self.checkout();
        git.run(&["worktree", "prune"]).await?;
        let mut found: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
        // Spares, and whether git lists them (a half-made one may not be).
        let mut spares: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let list = git.run(&["worktree", "list", "--porcelain"]).await?;
        for line in list.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                let path = PathBuf::from(path);
                if is_spare(&self.root, &path) {
                    spares.insert(path, true);
                } else if let Some(id) = task_of(&self.root, &path) {
                    found.insert(id, Some(path));
                }
            }
        }
        let branches = git
            .run(&[
                "for-each-ref",
                "--format=%(refname:short)",
                &format!("refs/heads/{BRANCH_PREFIX}"),
            ])
            .await?;
        for branch in branches.lines() {
            if let Some(id) = branch.strip_prefix(BRANCH_PREFIX) {
                found.entry(id.to_owned()).or_insert(None);
            }
        }
        // Folders a crash left that git no longer lists: only ones named like a task id, so
        // nothing else that may sit in the folder is ever deleted.
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if uuid::Uuid::parse_str(&name).is_ok() {
                    found.entry(name).or_insert_with(|| Some(entry.path()));
                } else if name
                    .strip_prefix(SPARE_PREFIX)
                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
                {
                    spares.entry(entry.path()).or_insert(false);
                }
            }
        }
        let mut report = ReconcileReport::default();
        for (path, registered) in spares {
            if self.adopt_spare_locked(&path, registered).await {
                report.spares_kept += 1;
            } else {
                self.remove_folder_locked(&path).await?;
                report.spares_removed += 1;
            }
        }
        if report.spares_removed > 0 {
            git.run(&["worktree", "prune"]).await?;
        }
        for (id, path) in found {
            let keep = owned.get(&id).is_some_and(|info| info.state.exists());
            if keep {
                report.kept.push(id);
                continue;
            }
            let path = path.unwrap_or_else(|| self.root.join(&id));
            self.remove_folder_locked(&path).await?;
            self.forget_locked(&Self::branch_of(&id)).await?;
            report.removed.push(id);
        }
        if report.spares_kept > 0 {
            // The project uses worktrees: top the spares up now rather than at its next task.
            self.refill();
        }
        Ok(report)
    }
}

/// The task id of a worktree folder directly under `root`.
fn task_of(root: &Path, path: &Path) -> Option<String> {
    (path.parent()? == root)
        .then(|| path.file_name())?
        .map(|n| n.to_string_lossy().into_owned())
}
