//! Git worktrees for tasks: each write-capable task edits its own worktree on branch
//! `orchestra/<taskId>`, made from the checkout's current branch, so parallel coders never
//! overwrite each other or the user's uncommitted work.
//!
//! Worktrees live in the project's private state folder (`<state>/worktrees/<taskId>`), never
//! inside the project, so nothing in the checkout changes while tasks run. Git runs as a child
//! process (`git.rs`): no shell, hooks off, killed with its caller.
//!
//! The life of one: `create` (plus copy-in of ignored files and the user's setup command) →
//! the worker edits → `finish` commits its changes on the branch, or removes worktree and
//! branch when it changed nothing → `merge` (checked first with `git merge-tree`, no side
//! effects) or `discard`. `reconcile` (on hub start) removes what no open record owns.
//! `spares` keeps checkouts ready ahead of time, so `create` rarely waits for a full one.

mod create;
mod git;
mod merge;
mod reconcile;
mod spares;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orchestra_protocol::{ErrorKind, WorktreeInfo, WorktreeState};

pub use create::Base;
pub use merge::{MergeOutcome, MergeWhere, WorktreeDiff};
pub use reconcile::ReconcileReport;

use git::{Git, as_orchestra};

/// Prefix of every branch a task owns.
pub const BRANCH_PREFIX: &str = "orchestra/";

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(
        "`{dir}` is not inside a git repository, so the task cannot get a worktree; run `git init` and commit once, or start the task with workspace: \"checkout\""
    )]
    NotARepo { dir: PathBuf },
    #[error(
        "the git repository at `{dir}` has no commit yet, so there is nothing to make a worktree from; commit once (`git commit --allow-empty -m init`), or start the task with workspace: \"checkout\""
    )]
    NoCommit { dir: PathBuf },
    #[error(
        "`{dir}` is a bare git repository (no checkout to branch from); open a checkout of it instead, or start the task with workspace: \"checkout\""
    )]
    Bare { dir: PathBuf },
    #[error(
        "HEAD is detached in `{dir}`, so there is no branch to merge the task back into; check out a branch (`git switch <branch>`), or start the task with workspace: \"checkout\""
    )]
    DetachedHead { dir: PathBuf },
    #[error(
        "could not run git: {source}; install git or start the task with workspace: \"checkout\""
    )]
    GitMissing { source: std::io::Error },
    #[error("`{command}` failed in `{dir}`: {stderr}")]
    Git {
        command: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error(
        "the worktree of task `{task_id}` is {state} already: its worktree and branch are gone; start a new task"
    )]
    Gone {
        task_id: String,
        state: &'static str,
    },
    #[error(
        "worktree.setup `{command}` failed ({why}); fix the command in your own config, or remove `worktree.setup`"
    )]
    Setup { command: String, why: String },
    #[error("could not prepare the worktree folder `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

impl WorktreeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WorktreeError::NotARepo { .. }
            | WorktreeError::NoCommit { .. }
            | WorktreeError::Bare { .. }
            | WorktreeError::DetachedHead { .. } => ErrorKind::BadRequest,
            WorktreeError::Gone { .. } | WorktreeError::Refused(_) => ErrorKind::Conflict,
            WorktreeError::GitMissing { .. }
            | WorktreeError::Git { .. }
            | WorktreeError::Setup { .. } => ErrorKind::Upstream,
            WorktreeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// What the user asked for in config (`worktree.copy` may come from the project's config,
/// `worktree.setup` only from the user's own).
pub use crate::config::WorktreeConfig as WorktreeSettings;

/// The worktrees of one project.
#[derive(Debug, Clone)]
pub struct Worktrees {
    project_dir: PathBuf,
    /// Where the worktrees are made: `<state>/worktrees`.
    root: PathBuf,
    settings: WorktreeSettings,
    /// One change of the repository's worktrees and refs at a time: git's lock files make a
    /// second concurrent `worktree add` or merge fail instead of wait.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Worktrees checked out ahead of time (`spares`).
    spares: Arc<spares::SparePool>,
}

impl Worktrees {
    pub fn new(project_dir: &Path, root: PathBuf, settings: WorktreeSettings) -> Worktrees {
        Worktrees {
            project_dir: project_dir.to_path_buf(),
            root,
            settings,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            spares: Arc::default(),
        }
    }

    pub fn settings(&self) -> &WorktreeSettings {
        &self.settings
    }

    pub fn project_dir(&self) -> &Path {
        &self.project_dir
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn checkout(&self) -> Git {
        Git::new(&self.project_dir)
    }

    /// Where the project sits inside its repository (empty at the top), for a worktree's
    /// session directory.
    pub async fn base_prefix(&self) -> Result<String, WorktreeError> {
        let prefix = self.checkout().run(&["rev-parse", "--show-prefix"]).await?;
        Ok(prefix.trim().trim_end_matches('/').to_owned())
    }

    /// The branch a task owns.
    pub fn branch_of(task_id: &str) -> String {
        format!("{BRANCH_PREFIX}{task_id}")
    }

    /// Commits what the worker changed on the task's branch and records the diffstat; a
    /// worktree that changed nothing (and whose branch has no commit of its own) is removed
    /// with its branch, and its state becomes `discarded`.
    pub async fn finish(&self, info: &mut WorktreeInfo, label: &str) -> Result<(), WorktreeError> {
        self.commit(info, label).await?;
        let unchanged = info.head_sha.as_deref() == Some(info.base_sha.as_str()) && info.files == 0;
        if unchanged {
            self.remove(info).await?;
            info.state = WorktreeState::Discarded;
        }
        Ok(())
    }

    /// Commits what the worker changed on the branch and records the diffstat; the worktree
    /// stays whatever changed (a workflow step, a follow-up: more work follows).
    pub async fn commit(&self, info: &mut WorktreeInfo, label: &str) -> Result<(), WorktreeError> {
        let tree = Git::new(Path::new(&info.path));
        // What was copied in (ignored files, the checkout's uncommitted OpenCode config) is
        // not the worker's change.
        tree.run(&["add", "-A"]).await?;
        if !info.copied.is_empty() {
            let mut unstage: Vec<&str> = vec!["rm", "--cached", "-q", "--ignore-unmatch", "--"];
            unstage.extend(info.copied.iter().map(String::as_str));
            tree.run(&unstage).await?;
        }
        let staged = tree.finish(&["diff", "--cached", "--quiet"]).await?.code != Some(0);
        let merging = tree
            .finish(&["rev-parse", "-q", "--verify", "MERGE_HEAD"])
            .await?
            .code
            == Some(0);
        if staged || merging {
            let message = format!("orchestra task {}: {}", info.task_id, one_line(label));
            tree.run(&as_orchestra(&[
                "commit",
                "--no-verify",
                "--author=Open Orchestra <orchestra@localhost>",
                "-q",
                "-m",
                &message,
            ]))
            .await?;
        }
        let head = tree.run(&["rev-parse", "HEAD"]).await?.trim().to_owned();
        info.head_sha = Some(head);
        self.stat(info).await
    }

    /// Fills `files`, `insertions`, `deletions` from `baseSha..headSha`.
    async fn stat(&self, info: &mut WorktreeInfo) -> Result<(), WorktreeError> {
        let head = info
            .head_sha
            .clone()
            .unwrap_or_else(|| info.base_sha.clone());
        let numstat = self
            .checkout()
            .run(&["diff", "--numstat", "-z", &info.base_sha, &head])
            .await?;
        let (mut files, mut insertions, mut deletions) = (0u32, 0u32, 0u32);
        for entry in numstat.split('\0').filter(|e| !e.is_empty()) {
            let mut fields = entry.split('\t');
            let (Some(added), Some(removed)) = (fields.next(), fields.next()) else {
                // With -z a rename's two paths follow as their own entries.
                continue;
            };
            files += 1;
            insertions += added.parse::<u32>().unwrap_or(0);
            deletions += removed.parse::<u32>().unwrap_or(0);
        }
        info.files = files;
        info.insertions = insertions;
        info.deletions = deletions;
        Ok(())
    }

    /// Removes the worktree folder and the task's branch (whatever is in them).
    async fn remove(&self, info: &WorktreeInfo) -> Result<(), WorktreeError> {
        let _one = self.lock.lock().await;
        self.remove_locked(info).await
    }

    async fn remove_locked(&self, info: &WorktreeInfo) -> Result<(), WorktreeError> {
        if Path::new(&info.path).exists() {
            self.checkout()
                .run(&["worktree", "remove", "--force", "--force", &info.path])
                .await?;
        }
        self.forget_locked(&info.branch).await
    }

    /// Removes a worktree folder in whatever state a crash left it: `git worktree remove`,
    /// or, for a folder git does not know (a half-made one), deleting it when it is one of
    /// ours (directly under `root`), so nothing else is ever deleted. Called under `lock`.
    async fn remove_folder_locked(&self, path: &Path) -> Result<(), WorktreeError> {
        let path_text = path.to_string_lossy().into_owned();
        if path.exists()
            && self
                .checkout()
                .finish(&["worktree", "remove", "--force", "--force", &path_text])
                .await?
                .code
                != Some(0)
            && path.parent() == Some(self.root.as_path())
        {
            std::fs::remove_dir_all(path).map_err(|source| WorktreeError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    }

    /// Drops git's records of worktrees that are gone, and `branch` if it exists. Called
    /// under `lock`.
    async fn forget_locked(&self, branch: &str) -> Result<(), WorktreeError> {
        let checkout = self.checkout();
        checkout.run(&["worktree", "prune"]).await?;
        let branch_ref = format!("refs/heads/{branch}");
        if checkout
            .finish(&["rev-parse", "-q", "--verify", &branch_ref])
            .await?
            .code
            == Some(0)
        {
            checkout.run(&["branch", "-D", branch]).await?;
        }
        Ok(())
    }

    /// Throws the task's work away: worktree and branch are removed.
    pub async fn discard(&self, info: &mut WorktreeInfo) -> Result<(), WorktreeError> {
        if !info.state.exists() {
            return Err(WorktreeError::Gone {
                task_id: info.task_id.clone(),
                state: info.state.as_str(),
            });
        }
        self.remove(info).await?;
        info.state = WorktreeState::Discarded;
        info.conflicts.clear();
        Ok(())
    }
}

/// The first line of a task's text, bounded, for a commit message.
fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("task");
    let mut out: String = line.trim().chars().take(72).collect();
    if line.trim().chars().count() > 72 {
        out.push('…');
    }
    out
}
